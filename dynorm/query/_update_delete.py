"""`qs.update(**values)` and `qs.delete()`: one conditional write per matching item.

Each write is conditional on the version read and on the QuerySet's filters; an item changed
since it was read is re-read from the refusal and written again if it still matches.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import _bridge
from .._batch import backoff, in_parallel
from .._counters import count_write
from .._exactly_once import CCF, already_applied, disproves, new_write_token, old_item, tracking
from .._proof import register, sent_of
from .._request import Request
from .._transaction_context import current_transaction
from .._write_op import WriteOp
from ..exceptions import (
    ConditionFailedError,
    QueryError,
    TransactionCanceledError,
    VersionConflictError,
    WriteOutcomeUnknownError,
)
from ..fields import utcnow
from ._bulk import same_error
from ._compile_write import Delete, StillMatches, Update, compile_with_companions, compile_write
from .expressions import F
from .placeholders import Placeholders, check_expressions
from .updates import index_refs, plan_update, resolve_index_refs

if TYPE_CHECKING:
    from .._connection import Connection
    from .queryset import QuerySet

__all__ = ["delete_matching", "update_matching"]

#: How often one item's write is tried again after it changed under it.
MAX_ATTEMPTS = 5


def _no_op(_: dict[str, Any]) -> None:
    return None


def _read_version(item: Mapping[str, Any], attr: str | None) -> int:
    """The version an item holds (0: none, or no version attribute in the layout)."""
    return int(item[attr]["N"]) if attr is not None and attr in item else 0


def _update_params(
    qs: QuerySet[Any], item: dict[str, Any], values: Mapping[str, Any]
) -> tuple[dict[str, Any], str, int]:
    """The conditional UpdateItem of one read item (compiled by `compile_write`).

    Returns (params without TableName, the write token, the version read).
    """
    meta = qs.model._meta
    assert meta.codec is not None
    version = _read_version(item, meta.layout.version)
    token = new_write_token()
    key = meta.layout.key_of(item)
    if meta.migrations is not None:  # an UpdateItem changes some attributes, not the shape
        meta.migrations.check_current(item, "update")
    current = meta.codec.decode(item)
    # An F() on an index-key field: computed from the item read, written at its version.
    values = resolve_index_refs(meta, values, current)
    write = Update(key, values, current, version + 1)
    request = compile_write(
        meta, write, StillMatches(qs._state, version), token=token, now=utcnow()
    )
    check_expressions(request.params, meta.model_name)
    return request.params, token, version


def _update_item(qs: QuerySet[Any], conn: Connection, item: dict[str, Any], values: Any) -> bool:
    """Update one read item; True if this call changed it."""
    meta = qs.model._meta
    for attempt in range(1, MAX_ATTEMPTS + 1):
        params, token, version = _update_params(qs, item, values)
        sent = sent_of("UpdateItem", params) if meta.layout.token is None else None
        register(token, sent)  # no token stored: the retry is recognised by its content
        with tracking(conn) as box:
            try:
                conn.send("UpdateItem", {**params, "TableName": conn.table_name})
                return True
            except ConditionFailedError as exc:
                old = (exc.response or {}).get("Item")
                if already_applied(old, token, meta.layout):  # a retry after a lost response
                    return True
                attr = meta.layout.version
                stored = _read_version(old, attr) if old and (attr is None or attr in old) else None
                if old is None or stored == version:
                    return False  # deleted, or no longer matches the filters
                if box.uncertain and not disproves(old, version, meta.layout):
                    raise WriteOutcomeUnknownError(
                        f"Cannot tell whether the update of a {meta.model_name} was "
                        "applied: its response was lost and the item has been changed "
                        "since by someone else; it was not retried. Reload it and check.",
                        model=meta.model_name,
                        expected_version=version,
                        current_version=stored,
                        aws_code=exc.aws_code,
                        response=exc.response,
                    ) from exc
                if attempt == MAX_ATTEMPTS:
                    raise VersionConflictError(
                        f"Cannot update {meta.model_name}: an item kept changing during "
                        f"{attempt} attempts; try again.",
                        model=meta.model_name,
                        expected_version=version,
                    ) from exc
                item = old  # changed since it was read: update it if it still matches
    return False


def update_matching(qs: QuerySet[Any], values: Mapping[str, Any]) -> int:
    """`qs.update(**values)` (documented on the QuerySet method)."""
    meta = qs.model._meta
    qs._refuse_sliced("update")
    if not values:
        raise QueryError(f"Cannot update {meta.model_name} with no values.", code="bad-query")
    if meta.audit:
        raise QueryError(
            f"Cannot qs.update() {meta.model_name}: it is audited (Meta.audit), and each "
            "object's change must be written with its audit entry. Load the objects and "
            "update() (or save()) each one.",
            code="bad-query",
        )
    guarded = sorted({n for c in meta.unique for n in c.fields} & set(values))
    if guarded:
        raise QueryError(
            f"Cannot update {meta.model_name}.{', '.join(guarded)} with qs.update(): a "
            "Meta.unique field's guard item must be written with each object. Load the "
            "objects and save() (or update()) each one.",
            code="bad-query",
        )
    tx = current_transaction()
    # Check field names, F() references and values before anything is sent.
    current = dict.fromkeys(meta.field_names)
    checked = {n: v for n, v in values.items() if n not in index_refs(meta, values)}
    for name in index_refs(meta, values):  # computed per item; their references checked now
        value = values[name]
        meta.check_field(value.name if isinstance(value, F) else value.source, "reference")
    if checked:
        plan_update(meta, checked, current, Placeholders(), new_version="1", now=utcnow())
    conn = qs._connection()
    items = [item for item, _ in qs._raw(qs._plan(dataclasses.replace(qs._state, projection=None)))]
    if tx is not None:  # join the transaction: sent (or not) with the block
        built = [_update_params(qs, item, values) for item in items]  # all, or none
        for params, token, _ in built:
            tx.add(
                WriteOp(
                    "UpdateItem",
                    params,
                    qs.model,
                    same_error,
                    _no_op,
                    token=token,
                    table=qs._state.table,
                )
            )
        return len(items)
    results = in_parallel([partial(_update_item, qs, conn, item, values) for item in items])
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise errors[0]
    return sum(1 for r in results if r is True)


def _delete_request(qs: QuerySet[Any], item: dict[str, Any]) -> Request:
    """The conditional DeleteItem of one read item (without TableName).

    A counted model's delete also takes 1 from its count, in one TransactWriteItems.
    """
    meta = qs.model._meta
    key = meta.layout.key_of(item)
    expect = StillMatches(qs._state, _read_version(item, meta.layout.version))
    request = compile_write(meta, Delete(key), expect)
    check_expressions(request.params, meta.model_name)
    if meta.counted:
        request = compile_with_companions(request, [count_write(meta, key, -1)])
    return request


def _in_table(request: Request, table: str) -> dict[str, Any]:
    if request.operation != "TransactWriteItems":
        return {**request.params, "TableName": table}
    actions = request.params["TransactItems"]
    items = [{k: {**b, "TableName": table} for k, b in a.items()} for a in actions]
    return {"TransactItems": items}


def _delete_item(qs: QuerySet[Any], conn: Connection, item: dict[str, Any]) -> bool:
    """Delete one read item if it still matches; True if this call deleted it."""
    meta = qs.model._meta
    for attempt in range(1, MAX_ATTEMPTS + 1):
        request = _delete_request(qs, item)
        params = _in_table(request, conn.table_name)
        version = _read_version(item, meta.layout.version)
        with tracking(conn) as box:
            try:
                conn.send(request.operation, params)
                return True
            except TransactionCanceledError as exc:
                if CCF not in exc.reasons[:1]:  # a conflict with another transaction
                    if attempt == MAX_ATTEMPTS:
                        raise
                    _bridge.sleep(backoff(attempt), time.sleep)
                    continue
                refused: ConditionFailedError | TransactionCanceledError = exc
                old = old_item(exc)
            except ConditionFailedError as exc:
                refused = exc
                old = (exc.response or {}).get("Item")
            if not old:
                # Gone: by our own attempt whose response was lost, or by another.
                return box.uncertain
            if _read_version(old, meta.layout.version) == version:
                return False  # no longer matches the filters
            if attempt == MAX_ATTEMPTS:
                raise VersionConflictError(
                    f"Cannot delete {meta.model_name}: an item kept changing during "
                    f"{attempt} attempts; try again.",
                    model=meta.model_name,
                    expected_version=version,
                ) from refused
            item = old  # changed since it was read: delete it if it still matches
    return False


def delete_matching(qs: QuerySet[Any]) -> int:
    """`qs.delete()` (documented on the QuerySet method)."""
    meta = qs.model._meta
    qs._refuse_sliced("delete")
    if not qs._state.where and not qs._state.explicit_all:
        raise QueryError(
            f"Cannot delete every {meta.model_name} without saying so: call "
            f".all().delete() (or filter first).",
            code="bad-query",
        )
    if meta.unique or meta.audit:
        why = (
            "Meta.unique guard items must be released"
            if meta.unique
            else ("audit entries (Meta.audit) must be written")
        )
        raise QueryError(
            f"Cannot delete {meta.model_name} objects with qs.delete(): their {why} with "
            "each object. Iterate and call delete() on each object.",
            code="bad-query",
        )
    plan = qs._plan(dataclasses.replace(qs._state, projection=()))
    items = [item for item, _ in qs._raw(plan)]
    tx = current_transaction()
    if tx is not None:  # join the transaction: one conditional Delete action per item
        for item in items:
            request = _delete_request(qs, item)
            tx.add(
                WriteOp(
                    request.operation,
                    request.params,
                    qs.model,
                    same_error,
                    _no_op,
                    table=qs._state.table,
                )
            )
        return len(items)
    conn = qs._connection()
    results = in_parallel([partial(_delete_item, qs, conn, item) for item in items])
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise errors[0]
    return sum(1 for r in results if r is True)
