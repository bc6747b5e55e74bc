"""Transactions: collect the writes of a block into one TransactWriteItems.

Writes inside `with dynorm.transaction():` are sent together on exit; `transaction_get`
reads several items atomically.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._codec import item_size, value_size
from ._config import get_connection
from ._constants import PK, SK, TRANSACT_ITEMS_LIMIT, TRANSACT_SIZE_LIMIT
from .exceptions import DynormError, QueryError, TransactionCanceledError
from .query.placeholders import check_expressions

if TYPE_CHECKING:
    from ._persistence import WriteOp
    from .models import Model

__all__ = ["Transaction", "current_transaction", "transaction", "transaction_get"]

_MAX_CONFLICT_ATTEMPTS = 4
_KINDS = {
    "PutItem": "Put",
    "UpdateItem": "Update",
    "DeleteItem": "Delete",
    "ConditionCheck": "ConditionCheck",
}


_current: ContextVar[Transaction | None] = ContextVar("dynorm_transaction", default=None)


def current_transaction() -> Transaction | None:
    """Return the innermost active transaction, if any."""
    return _current.get()


def _actions(op: WriteOp) -> list[dict[str, Any]]:
    if op.operation == "TransactWriteItems":
        return [dict(a) for a in op.params["TransactItems"]]
    body = {k: v for k, v in op.params.items() if k != "ReturnValues"}
    return [{_KINDS[op.operation]: body}]


def _action_size(body: Mapping[str, Any]) -> int:
    """An upper estimate of what one action adds to the 4 MB transaction payload."""
    size = item_size(body.get("Item") or body.get("Key") or {})
    size += sum(value_size(v) for v in body.get("ExpressionAttributeValues", {}).values())
    return size + sum(len(k) for k in body if k.endswith("Expression"))


class Transaction:
    """The writes of one `transaction()` block; `check()` adds a ConditionCheck."""

    def __init__(self) -> None:
        self.ops: list[WriteOp] = []
        self.token = uuid.uuid4().hex

    def add(self, op: WriteOp) -> None:
        """Collect one write (called by save/delete/update inside the block)."""
        self.ops.append(op)

    def check(self, obj: Model, **conditions: Any) -> None:
        """Require conditions on a stored item (`tx.check(c, version=c.version)`).

        The lookups are those of `filter()`; the transaction is cancelled if they are false.
        """
        from ._persistence import condition_check_op

        self.ops.append(condition_check_op(obj, conditions))

    def _request(self, table: str) -> tuple[dict[str, Any], list[int]]:
        items: list[dict[str, Any]] = []
        owner: list[int] = []
        for index, op in enumerate(self.ops):
            for action in _actions(op):
                ((kind, body),) = action.items()
                check_expressions(body, op.model.__name__)
                items.append({kind: {**body, "TableName": table}})
                owner.append(index)
        if len(items) > TRANSACT_ITEMS_LIMIT:
            raise QueryError(
                f"Cannot commit a transaction of {len(items)} actions: DynamoDB allows "
                f"{TRANSACT_ITEMS_LIMIT}. Split the work into smaller transactions.",
                code="bad-query",
            )
        size = sum(_action_size(body) for a in items for body in a.values())
        if size > TRANSACT_SIZE_LIMIT:
            raise QueryError(
                f"Cannot commit a transaction of {size} bytes: DynamoDB allows 4 MB in one "
                "TransactWriteItems. Split the work into smaller transactions.",
                code="bad-query",
            )
        keys = [
            (kind, body["Item"][PK]["S"], body["Item"][SK]["S"])
            if "Item" in body
            else (kind, body["Key"][PK]["S"], body["Key"][SK]["S"])
            for a in items
            for kind, body in a.items()
        ]
        if len({k[1:] for k in keys}) != len(keys):
            raise QueryError(
                "Cannot commit a transaction that touches the same item twice; DynamoDB "
                "refuses it. Combine those changes into one write.",
                code="bad-query",
            )
        return {"TransactItems": items, "ClientRequestToken": self.token}, owner

    def commit(self) -> None:
        """Send the collected writes as one TransactWriteItems and update the instances."""
        if not self.ops:
            return
        conn = get_connection()
        params, owner = self._request(conn.table_name)
        for attempt in range(1, _MAX_CONFLICT_ATTEMPTS + 1):
            try:
                conn.send("TransactWriteItems", params)
                break
            except TransactionCanceledError as exc:
                per_op: list[str | None] = [None] * len(self.ops)
                for index, reason in zip(owner, exc.reasons):
                    if reason is not None and per_op[index] is None:
                        per_op[index] = reason
                conflict_only = all(r in (None, "TransactionConflict") for r in per_op)
                if conflict_only and attempt < _MAX_CONFLICT_ATTEMPTS:
                    from ._batch import backoff

                    time.sleep(backoff(attempt))
                    params["ClientRequestToken"] = uuid.uuid4().hex
                    continue
                failed = [
                    f"#{i} {self.ops[i].model.__name__} {self.ops[i].operation}: {r}"
                    for i, r in enumerate(per_op)
                    if r is not None
                ]
                raise TransactionCanceledError(
                    "DynamoDB cancelled the transaction; nothing was written. Failed: "
                    f"{'; '.join(failed)}. `.reasons` lines up with the operations in the "
                    "order written.",
                    reasons=per_op,
                    aws_code=exc.aws_code,
                    response=exc.response,
                ) from exc
        for op in self.ops:
            op.on_success({})


@contextmanager
def transaction() -> Iterator[Transaction]:
    """Collect the writes of a block and send them as one TransactWriteItems on exit.

    Saves, creates, deletes, updates and `tx.check(...)` inside the block are sent together
    (at most 100 actions and 4 MB, checked before sending). If the block raises, nothing is
    sent. Instance state (version, timestamps) changes only after the commit. A nested
    `transaction()` joins the outer one.

    Raises:
        TransactionCanceledError: DynamoDB cancelled it; `.reasons` has one entry per
            operation in the order written.
    """
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    tx = Transaction()
    token = _current.set(tx)
    try:
        yield tx
    finally:
        _current.reset(token)
    tx.commit()


def transaction_get(
    keys: Sequence[tuple[type[Model], Mapping[str, Any]] | Model],
) -> list[Model | None]:
    """Read up to 100 items atomically (TransactGetItems); None where an item is missing.

    Pass `(Model, key fields)` pairs or model instances (their stored item is read):
    `dynorm.transaction_get([(Customer, {"id": cid}), (Order, {"customer_id": cid, "id": oid})])`
    """
    from .models import Model as _Model

    pairs: list[tuple[type[Model], Mapping[str, Any]]] = []
    for entry in keys:
        if isinstance(entry, _Model):
            pairs.append((type(entry), {f: entry.__dict__[f] for f in entry._meta.key_fields}))
        elif (
            isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], type)
            and issubclass(entry[0], _Model)
            and isinstance(entry[1], Mapping)
        ):
            pairs.append(entry)
        else:
            raise QueryError(
                "Cannot transaction_get that: pass (Model, {key fields}) pairs or model instances.",
                code="bad-query",
            )
    from .query.lookups import _coerce

    if len(keys) > TRANSACT_ITEMS_LIMIT:
        raise QueryError(
            f"Cannot read {len(keys)} items in one transaction; DynamoDB allows 100.",
            code="bad-query",
        )
    conn = get_connection()
    items = []
    for model, key in pairs:
        meta = model._meta
        missing = sorted(f for f in meta.key_fields if f not in key)
        if missing:
            raise QueryError(
                f"Cannot transaction_get {meta.model_name}: the key lacks {', '.join(missing)}.",
                code="bad-query",
            )
        pk, sk = meta.primary_key({f: _coerce(meta, f, key[f]) for f in meta.key_fields})
        items.append({"Get": {"TableName": conn.table_name, "Key": {PK: {"S": pk}, SK: {"S": sk}}}})
    if not items:
        return []
    try:
        response = conn.send("TransactGetItems", {"TransactItems": items})
    except DynormError:
        raise
    out: list[Model | None] = []
    for (model, _), got in zip(pairs, response.get("Responses", [])):
        item = got.get("Item")
        ok = item is not None and item.get("_type", {}).get("S") == model._meta.type_name
        out.append(model.from_item(item) if ok and item is not None else None)
    return out
