"""Sending writes: alone (with exactly-once settling) or into the open transaction.

`execute` sends any `WriteOp`: into the open `transaction()` block if there is one, recorded
only under `capture()`, else to its table, reading a refusal through the op's `conflict`.
The writes of an instance (`write`) also settle the instance's remembered attempts of
unknown outcome (see `_exactly_once`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._capture import captured
from ._config import connection_for
from ._connection import logger
from ._constants import PK, SK, WRITE_TOKEN_ATTR
from ._exactly_once import (
    CCF,
    carrying,
    earlier_attempt,
    first_gone,
    forget,
    live_attempts,
    refused_items,
    remember,
    settle,
    tracking,
)
from ._instance_writes import take
from ._transaction_context import current_transaction
from ._write_op import WriteOp
from .exceptions import (
    ConditionFailedError,
    DynormError,
    TransactionCanceledError,
    WriteOutcomeUnknownError,
)
from .query.placeholders import check_expressions

if TYPE_CHECKING:
    from ._connection import Connection
    from .models import Model

__all__ = ["execute", "prepare", "refresh", "write"]


# --------------------------------------------------------------------------- instance writes


def _find_token(op: WriteOp) -> str | None:
    """The write token in an op's put item(s) (for writes built by model subclasses)."""
    bodies = [op.params] if op.operation == "PutItem" else []
    if op.operation == "TransactWriteItems":
        bodies = [a["Put"] for a in op.params["TransactItems"] if "Put" in a]
    for body in bodies:
        token = body.get("Item", {}).get(WRITE_TOKEN_ATTR, {}).get("S")
        if token is not None:
            return str(token)
    return None


def prepare(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> WriteOp:
    """Build an instance's write and tag it with the instance, the call and how to rebuild."""
    op = build()
    op.instance, op.call = instance, call
    op.rebuild = lambda: prepare(instance, call, build)
    if op.token is None:
        op.token = _find_token(op)
    return op


def write(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> None:
    """Send `instance`'s write (`save`, `update`, `delete`), or add it to the transaction."""
    if instance.version == 0 and live_attempts(instance) and not _repeats_create(instance, call):
        _settle_by_reading(instance)  # a create of unknown outcome: was it stored?
    execute(prepare(instance, call, build))


def _repeats_create(instance: Model, call: tuple[Any, ...]) -> bool:
    """Whether `call` creates the key the remembered creates wrote.

    Then DynamoDB's refusal of it tells whether one of them was stored.
    """
    if call[0] != "save":
        return False
    try:
        key = instance._meta.primary_key(instance.__dict__)
    except DynormError:
        return True  # the write refuses it itself
    return all(a.key == key for a in live_attempts(instance))


def _get_consistent(instance: Model, key: tuple[str, str]) -> dict[str, Any] | None:
    """The stored item under `key` (a consistent GetItem), or None."""
    conn = connection_for(type(instance))
    response = conn.send_raw(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": {PK: {"S": key[0]}, SK: {"S": key[1]}},
            "ConsistentRead": True,
        },
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def _settle_by_reading(instance: Model) -> None:
    """Read the items of remembered creates of unknown outcome; settle the one stored.

    Used when the next write could not tell from a refusal (a delete or update of an object
    that is still at version 0, or a create under another key).
    """
    for key in dict.fromkeys(a.key for a in live_attempts(instance) if a.key is not None):
        stored = _get_consistent(instance, key)
        for attempt in live_attempts(instance):
            if stored is not None and carrying([stored], attempt.token) is not None:
                settle(instance, attempt, stored)
                return


def refresh(instance: Model) -> None:
    """Reload an instance's fields from a consistent read of its stored item.

    It also forgets the instance's writes of unknown outcome: the caller now sees what is
    stored.
    """
    meta = instance._meta
    key = instance._loaded_key or meta.primary_key(instance.__dict__)
    item = _get_consistent(instance, key)
    if item is None:
        keys = ", ".join(sorted(meta.key_fields)) or "its key"
        raise type(instance).DoesNotExist(
            f"Cannot refresh {meta.model_name} (key fields: {keys}): the item no longer exists."
        )
    take(instance, item)
    forget(instance)


# --------------------------------------------------------------------------- sending


def _with_table(op: WriteOp, table: str) -> dict[str, Any]:
    params = dict(op.params)
    check_expressions(params, op.model.__name__)
    if op.operation == "TransactWriteItems":
        params["TransactItems"] = [
            {kind: {**body, "TableName": table} for kind, body in action.items()}
            for action in params["TransactItems"]
        ]
    else:
        params["TableName"] = table
    return params


def _refusal(exc: DynormError) -> bool:
    """Whether an error is DynamoDB refusing a condition (alone or in a transaction)."""
    if isinstance(exc, ConditionFailedError):
        return True
    return isinstance(exc, TransactionCanceledError) and CCF in exc.reasons


def _accepted(op: WriteOp, exc: DynormError) -> dict[str, Any]:
    """Read a refusal through `op.conflict`: raise its error, or the response of success."""
    error = op.conflict(exc)
    if error is not None:
        raise error from exc
    logger.info("%s was already applied (a retry after a lost response)", op.operation)
    stored = carrying(refused_items(exc), op.token)
    return {"Attributes": stored} if stored is not None else {}


def execute(op: WriteOp) -> dict[str, Any]:
    """Send a write (or add it to the active transaction) and apply its result on success."""
    tx = current_transaction()
    if tx is not None:
        tx.add(op)
        return {}
    conn = connection_for(op.model, op.table)
    params = _with_table(op, conn.table_name)
    if captured():  # dynorm.capture(): recorded by the connection, nothing sent or changed
        return conn.send(op.operation, params)
    if op.instance is not None:
        return _execute_instance(op, op.instance, conn, params)
    with tracking(conn):
        try:
            response = conn.send(op.operation, params)
        except (ConditionFailedError, TransactionCanceledError) as exc:
            if not _refusal(exc):
                raise
            response = _accepted(op, exc)
    op.on_success(response)
    return response


def _execute_instance(
    op: WriteOp, instance: Model, conn: Connection, params: dict[str, Any]
) -> dict[str, Any]:
    """Send an instance's write, settling its remembered attempts of unknown outcome."""
    live = live_attempts(instance)
    with tracking(conn) as box:
        try:
            response = conn.send(op.operation, params)
        except (ConditionFailedError, TransactionCanceledError) as exc:
            if not _refusal(exc):
                if box.uncertain:
                    remember(instance, op)
                raise
            found = earlier_attempt(live, exc, first_gone(exc))
            if found is not None:
                attempt, item = found
                same = attempt.same(op.call, instance)
                settle(instance, attempt, item)
                logger.info(
                    "an earlier %s of %s whose outcome was unknown had been applied",
                    op.operation,
                    op.model.__name__,
                )
                if same or op.rebuild is None:
                    return {}
                return execute(op.rebuild())  # the change made since, on top of it
            box.earlier = bool(live)
            try:
                response = _accepted(op, exc)
            except WriteOutcomeUnknownError:
                if box.uncertain:
                    remember(instance, op)
                raise
        except DynormError:
            if box.uncertain:
                remember(instance, op)
            raise
    op.on_success(response)
    forget(instance)
    return response
