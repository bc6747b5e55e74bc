"""Batched reads and writes with bounded, jittered retries of unprocessed items.

Also the small thread pool that sends many conditional single-item writes at once.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from . import _bridge
from ._capture import captured
from ._connection import Connection
from ._constants import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT
from ._layout import DEFAULT, Layout
from .exceptions import BatchIncompleteError

__all__ = ["BATCHES_IN_FLIGHT", "batch_get", "batch_write", "backoff", "in_parallel"]

T = TypeVar("T")

MAX_BATCH_ATTEMPTS = 8
#: Single-item writes in flight at once (botocore's default pool holds 10 connections).
PARALLEL_WRITES = 8
#: BatchWriteItem / BatchGetItem chunks of one call in flight at once.
BATCHES_IN_FLIGHT = 4
_BASE_DELAY = 0.05
_MAX_DELAY = 2.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1-based): exponential with full jitter."""
    return random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))


def in_parallel(
    tasks: Sequence[Callable[[], T]], workers: int = PARALLEL_WRITES
) -> list[T | Exception]:
    """Run every task (at most `workers` at once) and return each one's result or exception.

    Every task runs to the end whatever the others raise, so the caller can report all of
    them; each runs in a copy of the caller's context (configuration, active tracking).
    """
    if len(tasks) <= 1:
        out: list[T | Exception] = []
        for task in tasks:
            try:
                out.append(task())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                out.append(exc)
        return out
    if _bridge.current() is not None:  # on the event loop: concurrent bridge greenlets
        return _bridge.gather(tasks, workers)
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, task) for task in tasks]
        results: list[T | Exception] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                results.append(exc)
    return results


def _key_of(request: dict[str, Any], layout: Layout) -> dict[str, str]:
    body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
    assert body is not None
    return {a: layout.text(a, body) for a in layout.key_attrs}


def _chunks(conn: Connection, tasks: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run a batch call's chunks, `BATCHES_IN_FLIGHT` at once, and return each outcome.

    Sequential inside `dynorm.capture()` (the recorded requests keep their order) and for a
    client the user gave (their event hooks or Stubber expect one request at a time).
    """
    if not conn.owns_client or captured():
        return in_parallel(tasks, workers=1)
    return in_parallel(tasks, workers=BATCHES_IN_FLIGHT)


def _write_chunk(
    conn: Connection, chunk: list[dict[str, Any]], max_attempts: int, stop: threading.Event
) -> list[dict[str, Any]]:
    """Write one chunk of <= 25 requests; return those still unprocessed at the end."""
    if stop.is_set():
        return chunk  # an earlier chunk failed: never attempted
    table = conn.table_name
    pending = chunk
    attempt = 0
    try:
        while pending:
            attempt += 1
            response = conn.send("BatchWriteItem", {"RequestItems": {table: pending}})
            pending = list(response.get("UnprocessedItems", {}).get(table, []))
            if pending and attempt >= max_attempts:
                return pending
            if pending:
                _bridge.sleep(backoff(attempt), time.sleep)
    except Exception:
        stop.set()
        raise
    return []


def batch_write(
    conn: Connection,
    requests: Sequence[dict[str, Any]],
    model: str,
    *,
    max_attempts: int = MAX_BATCH_ATTEMPTS,
    layout: Layout = DEFAULT,
) -> None:
    """Send Put/Delete requests 25 at a time, several chunks in flight; never drop one.

    Each chunk retries its unprocessed items with backoff. An error in one chunk stops
    chunks not yet started and is raised (the first, in request order) once the chunks in
    flight have finished; items still unprocessed raise `BatchIncompleteError` listing
    every one of them, in request order.
    """
    stop = threading.Event()  # set by the first chunk that fails: chunks not yet started skip
    chunks = [
        list(requests[start : start + BATCH_WRITE_LIMIT])
        for start in range(0, len(requests), BATCH_WRITE_LIMIT)
    ]
    outcomes = _chunks(conn, [partial(_write_chunk, conn, c, max_attempts, stop) for c in chunks])
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    left = [r for outcome in outcomes if not isinstance(outcome, Exception) for r in outcome]
    if left:
        keys = [_key_of(r, layout) for r in left]
        raise BatchIncompleteError(
            f"Cannot finish the batch write of {model}: {len(keys)} item(s) were still "
            f"unprocessed after up to {max_attempts} attempts (DynamoDB throttling). Nothing "
            "was dropped silently: .unprocessed lists their keys; retry them later or "
            "raise the table's capacity.",
            unprocessed=keys,
        )


#: Decodes a BatchGetItem body for one table: ({key: decoded item}, UnprocessedKeys) or None.
BatchDecoder = Callable[[bytes, str], "tuple[dict[tuple[str, str], Any], Any] | None"]


def _read_batch(
    conn: Connection, request: dict[str, Any], decode: BatchDecoder | None, layout: Layout
) -> tuple[dict[tuple[str, str], Any], dict[str, Any] | None]:
    """One BatchGetItem: items by key (decoded by `decode`, else as DynamoDB JSON)."""
    table = conn.table_name

    def wire(body: bytes) -> tuple[dict[tuple[str, str], Any], dict[str, Any] | None] | None:
        got = None if decode is None else decode(body, table)
        return None if got is None else (got[0], (got[1] or {}).get(table))

    def general(response: dict[str, Any]) -> tuple[dict[tuple[str, str], Any], Any]:
        raws = response.get("Responses", {}).get(table, [])
        found = {layout.key_of(item): item for item in raws}
        return found, response.get("UnprocessedKeys", {}).get(table)

    return conn.read("BatchGetItem", {"RequestItems": {table: request}}, wire, general)


def _read_chunk(
    conn: Connection,
    chunk: Sequence[tuple[str, str]],
    consistent: bool,
    max_attempts: int,
    decode: BatchDecoder | None,
    stop: threading.Event,
    layout: Layout,
) -> tuple[dict[tuple[str, str], Any], list[dict[str, str]]]:
    """Read one chunk of <= 100 keys: (items by key, the keys still unprocessed)."""
    names = layout.key_attrs
    if stop.is_set():
        return {}, [dict(zip(names, key)) for key in chunk]
    found: dict[tuple[str, str], Any] = {}
    first: dict[str, Any] = {"Keys": [layout.key_item(key) for key in chunk]}
    if consistent:
        first["ConsistentRead"] = True
    request: dict[str, Any] | None = first
    attempt = 0
    try:
        while request:
            attempt += 1
            items, request = _read_batch(conn, request, decode, layout)
            found.update(items)
            if request and attempt >= max_attempts:
                return found, [{a: layout.text(a, k) for a in names} for k in request["Keys"]]
            if request:
                _bridge.sleep(backoff(attempt), time.sleep)
    except Exception:
        stop.set()
        raise
    return found, []


def batch_get(
    conn: Connection,
    keys: Sequence[tuple[str, str]],
    model: str,
    *,
    consistent: bool = False,
    max_attempts: int = MAX_BATCH_ATTEMPTS,
    decode: BatchDecoder | None = None,
    layout: Layout = DEFAULT,
) -> dict[tuple[str, str], Any]:
    """Read distinct keys 100 at a time, several chunks in flight; return items by key.

    Each chunk retries its UnprocessedKeys with backoff; errors and keys still unprocessed
    are raised as in `batch_write`. Items are DynamoDB JSON, or what `decode` made of a
    response body (it returns None to leave a body to the DynamoDB JSON path).
    """
    stop = threading.Event()  # set by the first chunk that fails: chunks not yet started skip
    unique = list(dict.fromkeys(keys))
    chunks = [unique[s : s + BATCH_GET_LIMIT] for s in range(0, len(unique), BATCH_GET_LIMIT)]
    outcomes = _chunks(
        conn,
        [
            partial(_read_chunk, conn, c, consistent, max_attempts, decode, stop, layout)
            for c in chunks
        ],
    )
    found: dict[tuple[str, str], Any] = {}
    left: list[dict[str, str]] = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
        found.update(outcome[0])
        left.extend(outcome[1])
    if left:
        raise BatchIncompleteError(
            f"Cannot finish the batch read of {model}: {len(left)} key(s) were still "
            f"unprocessed after up to {max_attempts} attempts (DynamoDB throttling); "
            ".unprocessed lists them.",
            unprocessed=left,
        )
    return found
