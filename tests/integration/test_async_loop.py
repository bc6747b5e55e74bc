"""The async API on the event loop (the greenlet bridge), against DynamoDB Local.

With `transport="http"` an `a`-method runs its sync twin in a greenlet on the loop's thread
and awaits only the lean transport's HTTP exchange (dynorm/_http_async.py), its backoff
sleeps and its worker-thread hops. Invariants: no dynorm worker thread runs the call; the
loop runs while an exchange waits; a cancelled write finishes before the task goes on; a
lost answer and throttling are retried as on the sync path (applied once); one object's
writes take turns across greenlets; parallel batch chunks run as concurrent greenlets;
cancelled calls leak no connection, and the loop's connections close with it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

import dynorm
from dynorm import F, _async, _bridge, _http_async
from dynorm._http import HttpTransport
from tests.integration.test_async import assert_cancelled_gets_leak_no_connection, socket_set
from tests.models import Order

pytestmark = pytest.mark.anyio

_original_post = _http_async.AsyncExchange.post


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def lean(dynorm_table: str) -> Iterator[list[tuple[str, int]]]:
    """The lean transport; yields every exchange made on the loop: (X-Amz-Target, thread)."""
    dynorm.configure(transport="http")
    assert _async.on_loop()
    seen: list[tuple[str, int]] = []

    async def watched(
        self: _http_async.AsyncExchange, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        seen.append((headers["X-Amz-Target"].rsplit(".", 1)[1], threading.get_ident()))
        return await _original_post(self, body, headers)

    mp = pytest.MonkeyPatch()
    mp.setattr(_http_async.AsyncExchange, "post", watched)
    yield seen
    mp.undo()


def _patch_post(monkeypatch: pytest.MonkeyPatch, fault: Any) -> None:
    """Put `fault(original, operation)` in front of every exchange."""

    async def faulty(
        self: _http_async.AsyncExchange, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        operation = headers["X-Amz-Target"].rsplit(".", 1)[1]

        async def original() -> tuple[int, dict[str, str], bytes]:
            return await _original_post(self, body, headers)

        return await fault(original, operation)  # type: ignore[no-any-return]

    monkeypatch.setattr(_http_async.AsyncExchange, "post", faulty)


async def _ticks_during(call: Awaitable[Any], enough: asyncio.Event | None = None) -> int:
    """How often a 20 ms ticker task ran on the loop while `call` was awaited.

    The ticker sets `enough` after 10 ticks: a fault that waits for it (instead of for a
    fixed time, which a stalled machine could spend without the ticker running) returns
    once the loop has shown it runs, and never if the loop is blocked.
    """
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1
            if enough is not None and ticks >= 10:
                enough.set()

    tick = asyncio.create_task(ticker())
    try:
        await call
    finally:
        tick.cancel()
    return ticks


async def test_lean_a_methods_run_on_the_loop_thread_and_never_on_a_worker(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread(*_: Any, **__: Any) -> Any:
        raise AssertionError("a lean a-method went to a worker thread")

    monkeypatch.setattr(_async, "in_thread", no_thread)
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    await o.aupdate(total=F("total") + 1)
    got = await Order.objects.aget(customer_id="c1", id=o.id)
    assert got.total == Decimal(2)
    assert [o.id async for o in Order.objects.filter(customer_id="c1")] == [o.id]
    loop_thread = threading.get_ident()
    assert [op for op, _ in lean] == ["PutItem", "UpdateItem", "GetItem", "Query"]
    assert {thread for _, thread in lean} == {loop_thread}


async def test_the_loop_runs_while_a_lean_exchange_waits(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))

    enough = asyncio.Event()

    async def slow(original: Any, operation: str) -> Any:
        await asyncio.wait_for(enough.wait(), 30)  # the exchange waits: the loop ticks on
        return await original()

    _patch_post(monkeypatch, slow)
    ticks = await _ticks_during(Order.objects.aget(customer_id="c1", id=o.id), enough)
    assert ticks >= 10


async def test_a_cancelled_lean_write_finishes_before_the_task_goes_on(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    entered = asyncio.Event()

    async def slow(original: Any, operation: str) -> Any:
        if operation == "PutItem":
            entered.set()
            await asyncio.sleep(0.2)
        return await original()

    _patch_post(monkeypatch, slow)
    o.total = Decimal(2)
    task = asyncio.create_task(o.asave())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = await Order.objects.aget(customer_id="c1", id=o.id)
    assert stored.version == o.version == 2  # the write was on the wire: it finished


async def test_lean_lost_answer_and_throttling_are_retried_and_applied_once(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    lost: list[int] = []
    throttled: list[int] = []
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}'

    async def faults(original: Any, operation: str) -> Any:
        if operation == "UpdateItem" and not lost:
            lost.append((await original())[0])  # applied for real ...
            raise ReadTimeoutError(endpoint_url="http://dynamodb")  # ... and the answer lost
        if operation == "GetItem" and len(throttled) < 2:
            throttled.append(1)
            return 400, {"Content-Type": "application/x-amz-json-1.0"}, body
        return await original()

    _patch_post(monkeypatch, faults)
    await o.aupdate(total=F("total") + 1)
    got = await Order.objects.aget(customer_id="c1", id=o.id)
    assert lost == [200] and len(throttled) == 2
    assert (got.total, got.version) == (Decimal(2), 2)  # applied once, no false conflict


async def test_lean_bulk_chunks_run_as_concurrent_greenlets(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight = 0
    most = 0
    threads: set[int] = set()

    async def counted(original: Any, operation: str) -> Any:
        nonlocal in_flight, most
        threads.add(threading.get_ident())
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(0.02)
            return await original()
        finally:
            in_flight -= 1

    _patch_post(monkeypatch, counted)
    made = await Order.objects.abulk_create(
        [Order(customer_id="c1", total=Decimal(i)) for i in range(100)]
    )
    assert len(made) == 100 and most > 1  # 4 chunks of 25, sent at once
    assert await Order.objects.filter(customer_id="c1").acount() == 100
    assert threads == {threading.get_ident()}


async def test_lean_backoff_sleeps_do_not_block_the_loop(
    lean: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    slept: list[float] = []
    original_sleep = _bridge.sleep

    enough = asyncio.Event()

    def watched(seconds: float, *sync_sleep: Any) -> None:
        slept.append(seconds)
        deadline = time.monotonic() + 30
        while not enough.is_set() and time.monotonic() < deadline:  # back off until the
            original_sleep(0.01, *sync_sleep)  # loop has ticked 10 times through it

    monkeypatch.setattr(_bridge, "sleep", watched)
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}'
    throttled: list[int] = []

    async def throttle(original: Any, operation: str) -> Any:
        if len(throttled) < 1:
            throttled.append(1)
            return 400, {}, body
        return await original()

    _patch_post(monkeypatch, throttle)
    ticks = await _ticks_during(Order.objects.aget(customer_id="c1", id=o.id), enough)
    assert len(slept) == 1 and ticks >= 10


async def test_cancelled_lean_calls_leak_no_connection(lean: list[tuple[str, int]]) -> None:
    await assert_cancelled_gets_leak_no_connection(rounds=3)


# --------------------------------------------------------------------------- the bridge's lock


async def test_one_objects_lock_admits_one_greenlet_or_thread_at_a_time() -> None:
    lock = _bridge.Lock()
    holders: list[int] = []
    most = 0

    def hold(seconds: float) -> None:
        nonlocal most
        with lock, lock:  # reentrant for its owner
            holders.append(1)
            most = max(most, len(holders))
            _bridge.sleep(seconds)
            holders.pop()

    threads = [threading.Thread(target=hold, args=(0.01,)) for _ in range(4)]
    for t in threads:
        t.start()
    await asyncio.gather(*(_bridge.spawn(hold, 0.005) for _ in range(20)))
    await asyncio.to_thread(lambda: [t.join() for t in threads])
    assert most == 1 and holders == []


async def test_a_greenlet_waiting_for_the_lock_lets_the_loop_run() -> None:
    lock = _bridge.Lock()
    lock.acquire()  # held by this thread (the loop's, outside any greenlet)
    got: list[bool] = []

    def take() -> None:
        with lock:
            got.append(True)

    waiter = asyncio.create_task(_bridge.spawn(take))
    await asyncio.sleep(0.05)  # the loop runs while the greenlet waits
    assert got == []
    await asyncio.to_thread(lock.release)  # released from another thread: it wakes
    await waiter
    assert got == [True]


# --------------------------------------------------------------------------- the loop's end


def test_the_loops_connections_close_with_it(dynorm_table: str) -> None:
    dynorm.configure(transport="http")
    transport = dynorm._config.get_connection().transport
    assert isinstance(transport, HttpTransport)

    async def main() -> set[str]:
        o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
        await asyncio.gather(*(Order.objects.aget(customer_id="c1", id=o.id) for _ in range(20)))
        return socket_set()

    # Sockets are compared by identity: one open before (the sync pool's keep-alive
    # connection) may close meanwhile, so counts alone would not tell a leak from that.
    before = socket_set()
    opened = asyncio.run(main()) - before
    assert opened  # the loop's pool had connections open ...
    assert not opened & socket_set()  # ... and asyncio.run() closed every one with the loop
    again = asyncio.run(main()) - before
    assert again  # a new loop gets a pool of its own
    assert not again & socket_set()


def test_the_sync_api_on_the_lean_transport_never_touches_the_loop_path(
    dynorm_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynorm.configure(transport="http")

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the sync API used the event loop's exchange")

    monkeypatch.setattr(_http_async.AsyncExchange, "post", refuse)
    monkeypatch.setattr(asyncio, "new_event_loop", refuse)
    monkeypatch.setattr(asyncio, "get_running_loop", refuse)
    o = Order.objects.create(customer_id="c1", total=Decimal(1))
    o.update(total=F("total") + 1)
    assert Order.objects.get(customer_id="c1", id=o.id).total == Decimal(2)
