"""Batched reads and writes with bounded, jittered retries of unprocessed items.

Also the small thread pool that sends many conditional single-item writes at once.
"""

from __future__ import annotations

import contextvars
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._connection import Connection
from ._constants import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, PK, SK
from .exceptions import BatchIncompleteError

__all__ = ["batch_get", "batch_write", "backoff", "in_parallel"]

T = TypeVar("T")

MAX_BATCH_ATTEMPTS = 8
#: Single-item writes in flight at once (botocore's default pool holds 10 connections).
PARALLEL_WRITES = 8
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
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, task) for task in tasks]
        results: list[T | Exception] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller
                results.append(exc)
    return results


def _key_of(request: dict[str, Any]) -> dict[str, str]:
    body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
    assert body is not None
    return {PK: body[PK]["S"], SK: body[SK]["S"]}


def batch_write(
    conn: Connection,
    requests: Sequence[dict[str, Any]],
    model: str,
    *,
    max_attempts: int = MAX_BATCH_ATTEMPTS,
) -> None:
    """Send Put/Delete requests 25 at a time; retry unprocessed items; never drop one."""
    table = conn.table_name
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending = list(requests[start : start + BATCH_WRITE_LIMIT])
        attempt = 0
        while pending:
            attempt += 1
            response = conn.send("BatchWriteItem", {"RequestItems": {table: pending}})
            pending = list(response.get("UnprocessedItems", {}).get(table, []))
            if pending and attempt >= max_attempts:
                keys = [_key_of(r) for r in pending]
                keys += [_key_of(r) for r in requests[start + BATCH_WRITE_LIMIT :]]
                raise BatchIncompleteError(
                    f"Cannot finish the batch write of {model}: {len(keys)} item(s) were still "
                    f"unprocessed after {attempt} attempts (DynamoDB throttling). Nothing was "
                    "dropped silently: .unprocessed lists their keys; retry them later or "
                    "raise the table's capacity.",
                    unprocessed=keys,
                )
            if pending:
                time.sleep(backoff(attempt))


#: Decodes a BatchGetItem body for one table: ({key: decoded item}, UnprocessedKeys) or None.
BatchDecoder = Callable[[bytes, str], "tuple[dict[tuple[str, str], Any], Any] | None"]


def _read_batch(
    conn: Connection, request: dict[str, Any], decode: BatchDecoder | None
) -> tuple[dict[tuple[str, str], Any], dict[str, Any] | None]:
    """One BatchGetItem: items by key (decoded by `decode`, else as DynamoDB JSON)."""
    table = conn.table_name

    def wire(body: bytes) -> tuple[dict[tuple[str, str], Any], dict[str, Any] | None] | None:
        got = None if decode is None else decode(body, table)
        return None if got is None else (got[0], (got[1] or {}).get(table))

    def general(response: dict[str, Any]) -> tuple[dict[tuple[str, str], Any], Any]:
        raws = response.get("Responses", {}).get(table, [])
        found = {(item[PK]["S"], item[SK]["S"]): item for item in raws}
        return found, response.get("UnprocessedKeys", {}).get(table)

    return conn.read("BatchGetItem", {"RequestItems": {table: request}}, wire, general)


def batch_get(
    conn: Connection,
    keys: Sequence[tuple[str, str]],
    model: str,
    *,
    consistent: bool = False,
    max_attempts: int = MAX_BATCH_ATTEMPTS,
    decode: BatchDecoder | None = None,
) -> dict[tuple[str, str], Any]:
    """Read distinct keys 100 at a time; retry UnprocessedKeys; return items by key.

    Items are DynamoDB JSON, or what `decode` made of a response body (it returns None to
    leave a body to the DynamoDB JSON path).
    """
    found: dict[tuple[str, str], Any] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), BATCH_GET_LIMIT):
        chunk = unique[start : start + BATCH_GET_LIMIT]
        first: dict[str, Any] = {"Keys": [{PK: {"S": pk}, SK: {"S": sk}} for pk, sk in chunk]}
        if consistent:
            first["ConsistentRead"] = True
        request: dict[str, Any] | None = first
        attempt = 0
        while request:
            attempt += 1
            items, request = _read_batch(conn, request, decode)
            found.update(items)
            if request and attempt >= max_attempts:
                left = [{PK: k[PK]["S"], SK: k[SK]["S"]} for k in request["Keys"]]
                raise BatchIncompleteError(
                    f"Cannot finish the batch read of {model}: {len(left)} key(s) were still "
                    f"unprocessed after {attempt} attempts (DynamoDB throttling); "
                    ".unprocessed lists them.",
                    unprocessed=left,
                )
            if request:
                time.sleep(backoff(attempt))
    return found
