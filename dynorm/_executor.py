"""The read executor: sends a compiled Query/Scan `Request` page after page.

It adds the `TableName` of the Connection it runs on, follows `LastEvaluatedKey`, bounds pages
with `Limit` when a known number of items is wanted, and runs scan segments in threads. What a
page becomes (raw items, validated instances, instances with their keys) is the `fetch`
callable's business: the executor only sends and pages.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ._connection import Connection
from ._request import Request

__all__ = [
    "MAX_LIMIT",
    "Fetch",
    "count",
    "follow",
    "in_segments",
    "page_limit",
    "pages",
    "raw_page",
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
            got = out.get()
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
