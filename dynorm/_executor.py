"""The executor: the one place that sends a compiled `Request`.

Reads: a Query/Scan `Request` page after page. It adds the `TableName` of the Connection it
runs on, follows `LastEvaluatedKey`, bounds pages with `Limit` when a known number of items is
wanted, and runs scan segments in threads; what a page becomes (raw items, validated
instances, instances with their keys) is the `fetch` callable's business.

Writes: `execute` sends any `WriteOp` (a compiled write and its callbacks) into the open
`transaction()` block if there is one, records it only under `capture()`, else sends it to
its table, reading a refusal through the op's `conflict`. The writes of an instance (`write`)
also settle the instance's remembered attempts of unknown outcome (see `_exactly_once`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import _bridge
from ._batch import backoff
from ._capture import captured
from ._companions import attach, is_companion_write
from ._config import connection_for
from ._connection import Connection, logger
from ._exactly_once import (
    CCF,
    bind,
    carrying,
    earlier_attempt,
    first_gone,
    forget,
    instance_lock,
    instance_table,
    live_attempts,
    refused_items,
    remember,
    settle,
    tracking,
    written_to,
)
from ._instance_writes import take
from ._request import Request
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

__all__ = [
    "MAX_LIMIT",
    "Fetch",
    "count",
    "execute",
    "follow",
    "in_segments",
    "page_limit",
    "pages",
    "prepare",
    "raw_page",
    "refresh",
    "write",
]


T = TypeVar("T")

#: The largest Limit a read of a known number of items sends per page.
MAX_LIMIT = 1000

#: Sends one request on a connection and reads its page: (items, LastEvaluatedKey or None).
Fetch = Callable[[Connection, str, dict[str, Any]], tuple[list[T], "dict[str, Any] | None"]]


def raw_page(
    conn: Connection, operation: str, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A page of raw DynamoDB items (the `fetch` of reads that decode items themselves)."""
    response = conn.send_raw(operation, params)
    return response.get("Items", []), response.get("LastEvaluatedKey")


def page_limit(wanted: int, seen: int) -> int:
    """The Limit of the next page of a read that wants `wanted` items and has `seen`."""
    return max(1, min(wanted - seen, MAX_LIMIT))


def follow(
    conn: Connection,
    request: Request,
    fetch: Fetch[T],
    *,
    limit: int | None = None,
    bounded: bool = True,
    start_key: dict[str, Any] | None = None,
) -> Iterator[tuple[list[T], dict[str, Any] | None]]:
    """Send one request page after page; yield (page, LastEvaluatedKey or None).

    `limit`: the number of items wanted; sent as each page's Limit when `bounded` (a request
    whose FilterExpression may drop items is not: a Limit there counts items read, not kept).
    """
    params = dict(request.params)
    params["TableName"] = conn.table_name
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    seen = 0
    while True:
        if limit is not None and bounded:
            params["Limit"] = page_limit(limit, seen)
        items, lek = fetch(conn, request.operation, params)
        seen += len(items)
        yield items, lek
        if not lek:
            return
        params["ExclusiveStartKey"] = lek


def in_segments(
    conn: Connection, requests: Sequence[Request], fetch: Fetch[T]
) -> Iterator[tuple[list[T], None]]:
    """Run scan segments in threads, a page at a time; stop them if the consumer stops."""
    out: queue.Queue[Any] = queue.Queue(maxsize=4)
    done = object()
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(request: Request) -> None:
        try:
            params = {**request.params, "TableName": conn.table_name}
            while not stop.is_set():
                items, lek = fetch(conn, request.operation, params)
                if not put(items):
                    return
                if not lek:
                    break
                params["ExclusiveStartKey"] = lek
            put(done)
        except BaseException as exc:  # re-raised in the consuming thread
            put(exc)

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in requests]
    for t in threads:
        t.start()
    remaining = len(threads)
    try:
        while remaining:
            got = _bridge.blocking(out.get)  # on a worker thread inside the async bridge
            if got is done:
                remaining -= 1
            elif isinstance(got, BaseException):
                raise got
            else:
                yield got, None
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def pages(
    conn: Connection,
    requests: Sequence[Request],
    fetch: Fetch[T],
    *,
    limit: int | None = None,
    bounded: bool = True,
    start_key: dict[str, Any] | None = None,
) -> Iterator[tuple[list[T], dict[str, Any] | None]]:
    """Every page of a plan's requests: one request followed, or scan segments in threads."""
    if not requests:  # `none()`
        return
    if len(requests) > 1:
        yield from in_segments(conn, requests, fetch)
        return
    yield from follow(conn, requests[0], fetch, limit=limit, bounded=bounded, start_key=start_key)


def count(conn: Connection, requests: Sequence[Request]) -> int:
    """Count the items the requests match (Select=COUNT, summed over pages and segments)."""
    total = 0
    for request in requests:
        params = {**request.params, "TableName": conn.table_name, "Select": "COUNT"}
        while True:
            response = conn.send(request.operation, params)
            total += int(response.get("Count", 0))
            lek = response.get("LastEvaluatedKey")
            if not lek:
                break
            params["ExclusiveStartKey"] = lek
    return total


# --------------------------------------------------------------------------- instance writes


def _find_token(op: WriteOp) -> str | None:
    """The write token in an op's put item(s) (for writes built by model subclasses)."""
    attr = op.model._meta.layout.token
    if attr is None:
        return None
    bodies = [op.params] if op.operation == "PutItem" else []
    if op.operation == "TransactWriteItems":
        bodies = [a["Put"] for a in op.params["TransactItems"] if "Put" in a]
    for body in bodies:
        token = body.get("Item", {}).get(attr, {}).get("S")
        if token is not None:
            return str(token)
    return None


def prepare(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> WriteOp:
    """Build an instance's write and tag it with the instance, the call and how to rebuild.

    The write takes its companion writes (unique guards, ...) here: see `_companions`.
    """
    op = attach(build(), instance, call)
    op.instance, op.call = instance, call
    op.rebuild = lambda: prepare(instance, call, build)
    if op.table is None:  # back to the table it was read from or saved to
        op.table = instance_table(instance)
    if op.token is None:
        op.token = _find_token(op)
    return op


def write(instance: Model, call: tuple[Any, ...], build: Callable[[], WriteOp]) -> None:
    """Send `instance`'s write (`save`, `update`, `delete`), or add it to the transaction."""
    with instance_lock(instance):
        if (
            instance.version == 0
            and live_attempts(instance)
            and not _repeats_create(instance, call)
        ):
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
    conn = connection_for(type(instance), instance_table(instance))
    response = conn.send_raw(
        "GetItem",
        {
            "TableName": conn.table_name,
            "Key": instance._meta.layout.key_item(key),
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
    layout = instance._meta.layout
    for key in dict.fromkeys(a.key for a in live_attempts(instance) if a.key is not None):
        stored = _get_consistent(instance, key)
        for attempt in live_attempts(instance):
            if stored is not None and carrying([stored], attempt.token, layout) is not None:
                settle(instance, attempt, stored)
                return


def refresh(instance: Model) -> None:
    """Reload an instance's fields from a consistent read of its stored item.

    It also forgets the instance's writes of unknown outcome: the caller now sees what is
    stored.
    """
    with instance_lock(instance):
        _refresh(instance)


def _refresh(instance: Model) -> None:
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
    stored = carrying(refused_items(exc), op.token, op.model._meta.layout)
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
            response = _send(conn, op, params)
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
            response = _send(conn, op, params)
        except (ConditionFailedError, TransactionCanceledError) as exc:
            if not _refusal(exc):
                if box.uncertain:
                    remember(instance, op)
                raise
            found = earlier_attempt(live, exc, first_gone(exc), op.model._meta.layout)
            if found is not None:
                attempt, item = found
                same = attempt.same(op.call, instance)
                settle(instance, attempt, item)
                bind(instance, written_to(op))
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
    bind(instance, written_to(op))
    if op.extra.get("refresh") and is_companion_write(op):
        refresh(instance)  # F() values: a transaction returns no item, read what is stored
    return response


#: How many times a write with companions is sent when DynamoDB cancels it for conflicts.
_CONFLICT_ATTEMPTS = 4


def _send(conn: Connection, op: WriteOp, params: dict[str, Any]) -> dict[str, Any]:
    """Send a write; a write with companions is sent again after a pure-conflict cancel.

    A transaction cancelled only for conflicting transactions (`TransactionConflict`) wrote
    nothing, so sending it again is safe; a plain write is sent once (botocore retries).
    """
    attempt = 1
    while True:
        try:
            return conn.send(op.operation, params)
        except TransactionCanceledError as exc:
            retry = is_companion_write(op) and attempt < _CONFLICT_ATTEMPTS
            if not retry or any(r not in (None, "TransactionConflict") for r in exc.reasons):
                raise
            _bridge.sleep(backoff(attempt), time.sleep)
            attempt += 1
