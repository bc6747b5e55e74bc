"""`dynorm.capture()`: record every request dynorm compiles, send none of them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ._request import Request

__all__ = ["capture", "captured", "record"]

_active: ContextVar[list[Request] | None] = ContextVar("dynorm_capture", default=None)

#: What a captured request "returns": an empty answer of the operation's shape.
_EMPTY: dict[str, dict[str, Any]] = {
    "Query": {"Items": [], "Count": 0, "ScannedCount": 0},
    "Scan": {"Items": [], "Count": 0, "ScannedCount": 0},
    "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
    "BatchWriteItem": {"UnprocessedItems": {}},
    "TransactGetItems": {"Responses": []},
}


@contextmanager
def capture() -> Iterator[list[Request]]:
    """Record every request dynorm would send in this block (this thread or task); send none.

    Yields the list the requests are appended to, in the order they were compiled, as
    `Request(operation, params)` with the exact boto3 parameters (`TableName` included).
    Reads inside the block find nothing (a Query returns no items, `get()` raises
    `DoesNotExist`), and writes change no instance: an instance after the block is as it
    was before it. Transactions inside the block are recorded as their one
    `TransactWriteItems` when the block commits.
    """
    requests: list[Request] = []
    token = _active.set(requests)
    try:
        yield requests
    finally:
        _active.reset(token)


def captured() -> bool:
    """Whether a `capture()` block is active in this context."""
    return _active.get() is not None


def record(operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """Record a request if a capture is active; return its empty answer, else None."""
    requests = _active.get()
    if requests is None:
        return None
    requests.append(Request(operation, dict(params)))
    return {**_EMPTY.get(operation, {}), "ResponseMetadata": {"HTTPStatusCode": 200}}
