"""Batched reads and writes with bounded, jittered retries of unprocessed items."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from ._connection import Connection
from ._constants import BATCH_GET_LIMIT, BATCH_WRITE_LIMIT, PK, SK
from .exceptions import BatchIncompleteError

__all__ = ["batch_get", "batch_write", "backoff"]

MAX_BATCH_ATTEMPTS = 8
_BASE_DELAY = 0.05
_MAX_DELAY = 2.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1-based): exponential with full jitter."""
    return random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2 ** (attempt - 1)))


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


def batch_get(
    conn: Connection,
    keys: Sequence[tuple[str, str]],
    model: str,
    *,
    consistent: bool = False,
    max_attempts: int = MAX_BATCH_ATTEMPTS,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Read distinct keys 100 at a time; retry UnprocessedKeys; return items by key."""
    table = conn.table_name
    found: dict[tuple[str, str], dict[str, Any]] = {}
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
            response = conn.send_raw("BatchGetItem", {"RequestItems": {table: request}})
            for item in response.get("Responses", {}).get(table, []):
                found[(item[PK]["S"], item[SK]["S"])] = item
            request = response.get("UnprocessedKeys", {}).get(table)
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
