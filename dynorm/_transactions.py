"""Transactions: collect the writes of a block into one TransactWriteItems.

Writes inside `with dynorm.transaction():` are sent together on exit; `transaction_get`
reads several items atomically.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

from pydantic import BaseModel

from . import _bridge
from ._batch import backoff, batch_get
from ._capture import captured
from ._companions import explain, is_companion_write
from ._config import TableChoice, binding, connection_for, table_name_for
from ._connection import logger
from ._constants import TRANSACT_ITEMS_LIMIT, TRANSACT_SIZE_LIMIT
from ._counters import merge_counts
from ._exactly_once import (
    CCF,
    bind,
    carrying,
    disproves,
    earlier_attempt,
    forget,
    instance_table,
    live_attempts,
    refused_items,
    remember,
    settle,
    tracking,
    written_to,
)
from ._instance_writes import condition_check_op, take
from ._item_size import item_size, value_size
from ._options import Options
from ._transaction_context import active, current_transaction
from ._write_op import WriteOp
from .exceptions import (
    ConfigurationError,
    DynormError,
    QueryError,
    TransactionCanceledError,
    WriteOutcomeUnknownError,
)
from .query._compile_write import transact_actions
from .query.lookups import _coerce
from .query.placeholders import check_expressions

if TYPE_CHECKING:
    from ._connection import Connection
    from .models import Model

__all__ = ["Transaction", "current_transaction", "transaction", "transaction_get"]

_MAX_CONFLICT_ATTEMPTS = 4

_M = TypeVar("_M", bound="Model")
_A = TypeVar("_A", bound="Model")
_B = TypeVar("_B", bound="Model")
_C = TypeVar("_C", bound="Model")
_D = TypeVar("_D", bound="Model")
#: One key of `transaction_get`: a (model class, key fields) pair, or a model instance.
_Key: TypeAlias = "tuple[type[_M], Mapping[str, Any]] | _M"


def _is_model(obj: object) -> bool:
    """Whether `obj` is a dynorm model instance (a pydantic model with dynorm `_meta`)."""
    return isinstance(obj, BaseModel) and isinstance(getattr(type(obj), "_meta", None), Options)


def _is_model_class(obj: object) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and isinstance(getattr(obj, "_meta", None), Options)
    )


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
        self.id = self.token  # names this block's writes when their outcome is unknown
        #: `on_commit` callbacks (post signals among them), run once the commit succeeded.
        self.callbacks: list[Callable[[], object]] = []

    def on_commit(self, func: Callable[[], object]) -> None:
        """Call `func()` once this transaction was committed (never if it fails or raises)."""
        self.callbacks.append(func)

    def run_on_commit(self) -> None:
        """Run the `on_commit` callbacks, in the order added (after a sync commit).

        Raises:
            ConfigurationError: A callback returned an awaitable (an async receiver or
                callback): a sync `transaction()` cannot await it.
        """
        callbacks, self.callbacks = self.callbacks, []
        for func in callbacks:
            result = func()
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise ConfigurationError(
                    "Cannot run an async on_commit callback (or async signal receiver) after "
                    "a sync transaction(): it would never be awaited. Use the async API's "
                    "transaction, or a plain function.",
                    code="config",
                )

    async def arun_on_commit(self) -> None:
        """Run the `on_commit` callbacks, awaiting those that return an awaitable."""
        callbacks, self.callbacks = self.callbacks, []
        for func in callbacks:
            result = func()
            if inspect.isawaitable(result):
                await result

    def add(self, op: WriteOp) -> None:
        """Collect one write (called by save/delete/update inside the block).

        Its table is chosen now (a `using()` block may end before the commit).
        """
        if op.table is None:
            op.table = written_to(op)
        self.ops.append(op)

    def check(self, obj: Model, **conditions: Any) -> None:
        """Require conditions on a stored item (`tx.check(c, version=c.version)`).

        The lookups are those of `filter()`; the transaction is cancelled if they are false.
        """
        op = condition_check_op(obj, conditions)
        op.table = instance_table(obj)
        self.add(op)

    def _connection(self) -> Connection:
        """The one client every action's table is reached through."""
        conns = [connection_for(op.model, op.table) for op in self.ops]
        if not all(c.same_client(conns[0]) for c in conns):
            raise QueryError(
                "Cannot commit a transaction over tables reached through different clients "
                "(another endpoint, region or client): DynamoDB transactions span tables of "
                "one account and region only. Split the transaction.",
                code="bad-query",
            )
        return conns[0]

    def _request(self) -> tuple[dict[str, Any], list[int]]:
        items: list[dict[str, Any]] = []
        owner: list[int] = []
        for index, op in enumerate(self.ops):
            table = table_name_for(op.model, op.table)
            for action in transact_actions(op.request):
                ((kind, body),) = action.items()
                check_expressions(body, op.model.__name__)
                items.append({kind: {**body, "TableName": table}})
                owner.append(index)
        merge_counts(items, owner)  # counted writes of one shard: one action
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
        layouts = [self.ops[op].model._meta.layout for op in owner]
        keys = [  # (kind, table, pk, sk): one key in two tables is two items
            (kind, body["TableName"], *layout.key_of(body.get("Item") or body["Key"]))
            for a, layout in zip(items, layouts)
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
        """Send the collected writes as one TransactWriteItems and update the instances.

        botocore's retries reuse the ClientRequestToken, so DynamoDB applies the request
        once. When every attempt failed without an answer, each instance remembers its
        write, and the caller's retry of the same block is settled from the stored items
        (see "Lost responses: what to retry" on the errors page).
        """
        if not self.ops:
            return
        conn = self._connection()
        params, owner = self._request()
        if captured():  # dynorm.capture(): recorded by the connection; no instance changes
            conn.send("TransactWriteItems", params)
            return
        with tracking(conn) as box:
            for attempt in range(1, _MAX_CONFLICT_ATTEMPTS + 1):
                try:
                    conn.send("TransactWriteItems", params)
                    break
                except TransactionCanceledError as exc:
                    if self._settle_earlier(exc, owner):
                        return
                    per_op = self._per_op(exc, owner)
                    conflict_only = all(r in (None, "TransactionConflict") for r in per_op)
                    if conflict_only and attempt < _MAX_CONFLICT_ATTEMPTS:
                        _bridge.sleep(backoff(attempt), time.sleep)
                        params["ClientRequestToken"] = uuid.uuid4().hex
                        continue
                    typed = self._companion_error(exc, owner)
                    if typed is not None:
                        raise typed from exc
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
                except DynormError:
                    if box.uncertain:
                        writes = self._writes()
                        for op in writes:
                            if op.instance is not None:
                                remember(op.instance, op, self.id, len(writes))
                    raise
        for op in self.ops:
            op.on_success({})
            if op.instance is not None:
                forget(op.instance)
                bind(op.instance, written_to(op))
        self._reload(conn)

    def _companion_error(self, exc: TransactionCanceledError, owner: list[int]) -> Exception | None:
        """The typed error of a refused companion (a taken unique value), if that is why."""
        own: dict[int, list[str | None]] = {}
        for index, reason in zip(owner, exc.reasons):
            own.setdefault(index, []).append(reason)
        for index, reasons in own.items():
            op = self.ops[index]
            if is_companion_write(op) and CCF not in reasons[: op.extra["companions"]]:
                found = explain(op, reasons, exc)
                if found is not None:
                    return found
        return None

    def _writes(self) -> list[WriteOp]:
        return [op for op in self.ops if op.operation != "ConditionCheck"]

    def _per_op(self, exc: TransactionCanceledError, owner: list[int]) -> list[str | None]:
        per_op: list[str | None] = [None] * len(self.ops)
        for index, reason in zip(owner, exc.reasons):
            if reason is not None and per_op[index] is None:
                per_op[index] = reason
        return per_op

    def _settle_earlier(self, exc: TransactionCanceledError, owner: list[int]) -> bool:
        """Settle the block's earlier writes of unknown outcome from a cancellation.

        Returns True when this block is the retry of an earlier transaction that was applied.

        A transaction is all or nothing, so one stored token of an earlier transaction
        proves all of it was applied: each of its instances takes its result. If this block
        repeats it exactly (the same calls on instances unchanged since, and nothing else),
        the retry succeeded. Otherwise nothing of this block was written: raise
        `TransactionCanceledError` saying why (the instances now hold the stored state, so
        running the block again applies its changes on top). An instance whose earlier
        write is neither recognised nor disproved (its item was changed by someone else)
        raises `WriteOutcomeUnknownError`.
        """
        reasons = (exc.response or {}).get("CancellationReasons", [])
        if not any(op.instance is not None and live_attempts(op.instance) for op in self.ops):
            return False
        first: dict[int, dict[str, Any]] = {}
        for index, reason in zip(owner, reasons):
            first.setdefault(index, reason)
        groups: set[str] = set()
        for index, op in enumerate(self.ops):
            if op.instance is None or op.operation == "ConditionCheck":
                continue
            reason = first.get(index, {})
            gone = reason.get("Code") == CCF and not reason.get("Item")
            found = earlier_attempt(live_attempts(op.instance), exc, gone, op.model._meta.layout)
            if found is not None:
                groups.add(found[0].group)
        if not groups:
            unknown = [
                op
                for index, op in enumerate(self.ops)
                if op.instance is not None
                and op.operation != "ConditionCheck"
                and live_attempts(op.instance)
                and first.get(index, {}).get("Code") == CCF
                and not disproves(
                    first[index].get("Item"), op.instance.version, op.instance._meta.layout
                )
            ]
            if unknown:
                op = unknown[0]
                assert op.instance is not None
                name = op.instance._meta.model_name
                raise WriteOutcomeUnknownError(
                    f"Cannot tell whether an earlier transaction of this {name} was applied: "
                    "its outcome was unknown (every response was lost), and the stored item "
                    "now holds another writer's change. Nothing of this block was written. "
                    "Reload the objects with refresh_from_db() and check before running the "
                    "block again.",
                    model=name,
                    expected_version=op.instance.version,
                    aws_code=exc.aws_code,
                    response=exc.response,
                ) from exc
            return False
        items = refused_items(exc)
        writes = self._writes()
        exact = len(groups) == 1 and all(
            op.instance is not None
            and any(
                a.group in groups and a.size == len(writes) and a.same(op.call, op.instance)
                for a in live_attempts(op.instance)
            )
            for op in writes
        )
        for op in self.ops:
            if op.instance is None:
                continue
            for a in live_attempts(op.instance):
                if a.group in groups:
                    settle(op.instance, a, carrying(items, a.token, op.model._meta.layout))
                    break
        logger.info("an earlier transaction whose outcome was unknown had been applied")
        if exact:
            return True
        raise TransactionCanceledError(
            "DynamoDB cancelled the transaction; nothing of this block was written. An earlier "
            "transaction (or write) of these objects, whose outcome was unknown, had been "
            "applied: the objects now hold what it stored. Run the block again if its changes "
            "are still wanted; they then apply on top.",
            reasons=self._per_op(exc, owner),
            aws_code=exc.aws_code,
            response=exc.response,
        ) from exc

    def _reload(self, conn: Any) -> None:
        """Re-read the items that `update()` calls with `F` expressions changed.

        DynamoDB returns no values from a transaction; the instances hold what dynorm
        computed from their values, which a consistent read now replaces with the stored
        item. A failed read is logged, not raised: the transaction was committed.
        """
        stale = [op for op in self.ops if op.extra.get("refresh") and op.instance is not None]
        if not stale:
            return
        by_table: dict[str, list[WriteOp]] = {}
        for op in stale:  # each from its own table
            by_table.setdefault(table_name_for(op.model, op.table), []).append(op)
        for name, ops in by_table.items():
            layout = ops[0].model._meta.layout
            keys = [op.model._meta.layout.key_of(op.params["Key"]) for op in ops]
            try:
                found = batch_get(
                    conn.for_table(name), keys, "transaction", consistent=True, layout=layout
                )
            except DynormError as exc:
                logger.warning(
                    "re-reading the objects updated in a transaction failed (%s); they "
                    "hold the values computed locally, call refresh_from_db() to be sure",
                    type(exc).__name__,
                )
                continue
            for op, key in zip(ops, keys):
                item = found.get(key)
                instance = op.instance
                assert instance is not None
                if item is None or not layout.is_type(item, instance._meta.type_name):
                    continue
                take(instance, item)


@contextmanager
def _transaction() -> Iterator[Transaction]:
    """Collect the writes of a block and send them as one TransactWriteItems on exit.

    Saves, creates, deletes, updates and `tx.check(...)` inside the block are sent together
    (at most 100 actions and 4 MB, checked before sending). If the block raises, nothing is
    sent. Instance state (version, timestamps) changes only after the commit.

    A nested `transaction()` is a savepoint of the outer one: its writes join the outer
    transaction, and if the inner block raises, the writes it added are dropped (the
    exception propagates; catch it to let the outer block go on without them).

    Raises:
        TransactionCanceledError: DynamoDB cancelled it; `.reasons` has one entry per
            operation in the order written.
    """
    block = Block()
    try:
        yield block.tx
    except BaseException:
        block.failed()
        raise
    tx = block.finished()
    if tx is not None:
        tx.commit()
        tx.run_on_commit()


class Block:
    """One `transaction()` block (sync or async): a transaction, or a savepoint of one.

    Entering sets the context's transaction (a nested block joins the outer one);
    `failed()` or `finished()` ends it. Only an outermost block that finished has a
    transaction to commit.
    """

    def __init__(self) -> None:
        self.outer = active.get()
        if self.outer is not None:
            self.tx, self.token = self.outer, None
        else:
            self.tx = Transaction()
            self.token = active.set(self.tx)
        self.mark, self.callbacks = len(self.tx.ops), len(self.tx.callbacks)

    def failed(self) -> None:
        """The block raised: a savepoint drops the writes it added; a transaction sends none."""
        if self.token is None:  # savepoint: the inner block contributes nothing
            del self.tx.ops[self.mark :]
            del self.tx.callbacks[self.callbacks :]
        else:
            active.reset(self.token)

    def finished(self) -> Transaction | None:
        """The block ended normally: the transaction to commit now (None: a savepoint)."""
        if self.token is None:
            return None
        active.reset(self.token)
        return self.tx


def on_commit(func: Callable[[], object]) -> None:
    """Call `func()` after the open `transaction()` commits; at once outside of one.

    Django's `transaction.on_commit`: if the transaction is cancelled or its block raises,
    `func` is never called; inside a nested block that raises, it is dropped with the
    block's writes. An exception from `func` propagates (later callbacks do not run).
    """
    tx = current_transaction()
    if tx is None:
        func()
    else:
        tx.on_commit(func)


class TransactionFunction:
    """`dynorm.transaction`: `with dynorm.transaction() as tx:` opens a transaction block.

    The writes of the block are sent as one TransactWriteItems on exit; see the call.
    `dynorm.transaction.on_commit(func)` is Django's `transaction.on_commit`.
    """

    def __call__(self) -> AbstractContextManager[Transaction]:
        return _transaction()

    __call__.__doc__ = _transaction.__doc__

    on_commit = staticmethod(on_commit)

    def __repr__(self) -> str:
        return "<function dynorm.transaction>"


#: `with dynorm.transaction() as tx:`; `dynorm.transaction.on_commit(func)`.
transaction = TransactionFunction()


@overload
def transaction_get(keys: tuple[_Key[_A]]) -> tuple[_A | None]: ...
@overload
def transaction_get(keys: tuple[_Key[_A], _Key[_B]]) -> tuple[_A | None, _B | None]: ...
@overload
def transaction_get(
    keys: tuple[_Key[_A], _Key[_B], _Key[_C]],
) -> tuple[_A | None, _B | None, _C | None]: ...
@overload
def transaction_get(
    keys: tuple[_Key[_A], _Key[_B], _Key[_C], _Key[_D]],
) -> tuple[_A | None, _B | None, _C | None, _D | None]: ...
@overload
def transaction_get(keys: tuple[_Key[_M], ...]) -> tuple[_M | None, ...]: ...
@overload
def transaction_get(keys: list[tuple[type[_M], Mapping[str, Any]]]) -> list[_M | None]: ...
@overload
def transaction_get(keys: list[_M]) -> list[_M | None]: ...
@overload
def transaction_get(keys: list[_Key[_M]]) -> list[_M | None]: ...
@overload
def transaction_get(keys: Sequence[_Key[_M]]) -> Sequence[_M | None]: ...


def transaction_get(keys: Sequence[Any]) -> Sequence[Any]:
    """Read up to 100 items atomically (TransactGetItems); None where an item is missing.

    Pass `(Model, key fields)` pairs or model instances (their stored item is read):
    `dynorm.transaction_get([(Customer, {"id": cid}), (Order, {"customer_id": cid, "id": oid})])`
    returns a list (`list[Customer | Order | None]` to a type checker). A tuple of keys returns
    a tuple, typed position by position (up to 4): `transaction_get(((Customer, ...), (Order,
    ...)))` is a `tuple[Customer | None, Order | None]`.
    """
    pairs: list[tuple[type[Model], Mapping[str, Any]]] = []
    tables: list[TableChoice] = []  # an instance is read from its own table
    for entry in keys:
        if _is_model(entry):
            pairs.append((type(entry), {f: entry.__dict__[f] for f in entry._meta.key_fields}))
            tables.append(instance_table(entry))
        elif (
            isinstance(entry, tuple)
            and len(entry) == 2
            and _is_model_class(entry[0])
            and isinstance(entry[1], Mapping)
        ):
            pairs.append(entry)
            tables.append(None)
        else:
            raise QueryError(
                "Cannot transaction_get that: pass (Model, {key fields}) pairs or model instances.",
                code="bad-query",
            )
    if len(keys) > TRANSACT_ITEMS_LIMIT:
        raise QueryError(
            f"Cannot read {len(keys)} items in one transaction; DynamoDB allows 100.",
            code="bad-query",
        )
    conns = [connection_for(model, table) for (model, _), table in zip(pairs, tables)]
    if not all(c.same_client(conns[0]) for c in conns):
        raise QueryError(
            "Cannot transaction_get items of tables reached through different clients; "
            "read them separately.",
            code="bad-query",
        )
    items = []
    for (model, key), table in zip(pairs, tables):
        meta = model._meta
        missing = sorted(f for f in meta.key_fields if f not in key)
        if missing:
            raise QueryError(
                f"Cannot transaction_get {meta.model_name}: the key lacks {', '.join(missing)}.",
                code="bad-query",
            )
        pk, sk = meta.primary_key({f: _coerce(meta, f, key[f]) for f in meta.key_fields})
        key_av = meta.layout.key_item((pk, sk))
        items.append({"Get": {"TableName": table_name_for(model, table), "Key": key_av}})
    if not items:
        return () if isinstance(keys, tuple) else []
    conn = conns[0]
    try:
        response = conn.send("TransactGetItems", {"TransactItems": items})
    except DynormError:
        raise
    out: list[Model | None] = []
    for (model, _), table, got in zip(pairs, tables, response.get("Responses", [])):
        item = got.get("Item")
        ok = item is not None and item.get("_type", {}).get("S") == model._meta.type_name
        obj = model.from_item(item) if ok and item is not None else None
        if obj is not None:
            bind(obj, binding(model, table))
        out.append(obj)
    return tuple(out) if isinstance(keys, tuple) else out
