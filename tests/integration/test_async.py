"""The async API against DynamoDB Local: the sync API's guarantees, awaited.

Invariants: an awaited call sends exactly what its sync twin sends; the event loop never
waits on DynamoDB; concurrent writers lose no update and exactly one wins per version; a
task cancelled inside a transaction sends nothing; a cancelled or abandoned iteration
closes its page source; cancelled calls leak no connection.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

import dynorm
from dynorm import F, SingletonModel, Table, VersionedModel, fields, signals
from dynorm._connection import Connection
from dynorm.exceptions import ReadOnlyError, VersionConflictError
from tests.models import Counter, Customer, Order
from tests.reliability.helpers import Faults, aws_error

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every request dynorm sends from now on: (operation, a copy of its parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        calls.append((operation, copy.deepcopy(dict(params))))
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    return calls


@pytest.fixture(params=["boto3", "http"])
def transport(dynorm_table: str, request: pytest.FixtureRequest) -> str:
    """Run the test on each transport: the boto3 client (a-methods on worker threads) and
    the lean `http` path (a-methods in a greenlet on the event loop)."""
    dynorm.configure(transport=request.param)
    return str(request.param)


class AsyncDoc(VersionedModel):
    id: str = fields.ULID()
    title: str

    class Meta:
        pk = "ADOC#{id}"


class AsyncSettings(SingletonModel):
    theme: str = "light"


def orders(n: int, customer: str = "c1", **values: Any) -> list[Order]:
    return Order.objects.bulk_create(
        [Order(id=f"O{i:04d}", customer_id=customer, total=Decimal(i), **values) for i in range(n)]
    )


# --------------------------------------------------------------------------- same requests


async def test_crud_awaited_sends_what_the_sync_api_sends(
    transport: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(5))
    got = await Order.objects.aget(customer_id="c1", id=o.id)
    assert got == o and got.version == 1
    got.status = "paid"
    await got.asave()
    await got.aupdate(total=F("total") + 1)
    assert (got.total, got.version) == (Decimal(6), 3)
    await o.arefresh_from_db()
    assert o == got
    await o.adelete()
    with pytest.raises(Order.DoesNotExist):
        await Order.objects.aget(customer_id="c1", id=o.id)
    ops = [op for op, _ in sent]
    assert ops == [
        *("PutItem", "GetItem", "PutItem", "UpdateItem", "GetItem", "DeleteItem", "GetItem")
    ]

    # The same calls, sync, send the same requests (keys and conditions; tokens and
    # timestamps differ per write).
    sent.clear()
    s = Order.objects.create(customer_id="c1", total=Decimal(5))
    s2 = Order.objects.get(customer_id="c1", id=s.id)
    s2.status = "paid"
    s2.save()
    s2.update(total=F("total") + 1)
    s.refresh_from_db()
    s.delete()
    assert [op for op, _ in sent][:6] == ops[:6]


async def test_queryset_terminals_awaited(transport: str) -> None:
    made = orders(12)
    qs = Order.objects.filter(customer_id="c1")
    assert await qs.acount() == 12
    assert await qs.aexists()
    assert not await Order.objects.filter(customer_id="nobody").aexists()
    first, last = await qs.afirst(), await qs.alast()
    assert first is not None and last is not None
    assert (first.id, last.id) == (made[0].id, made[-1].id)
    page = await qs.apage(size=5)
    assert [o.id for o in page.items] == [o.id for o in made[:5]]
    nxt = await qs.apage(size=5, cursor=page.next_cursor)
    assert [o.id for o in nxt.items] == [o.id for o in made[5:10]]
    got = await Order.objects.abulk_get([{"customer_id": "c1", "id": made[3].id}, made[4]])
    assert got == [made[3], made[4]]
    assert await qs.filter(total__gte=10).aupdate(status="paid") == 2
    assert await qs.filter(status="paid").acount() == 2
    assert await qs.filter(total__lt=2).adelete() == 2
    assert await qs.acount() == 10
    obj, created = await Order.objects.aget_or_create(
        customer_id="c2", id="X1", defaults={"total": Decimal(1)}
    )
    assert created and obj.total == Decimal(1)
    again, created = await Order.objects.aget_or_create(
        customer_id="c2", id="X1", defaults={"total": Decimal(9)}
    )
    assert not created and again.total == Decimal(1)
    upd, created = await Order.objects.aupdate_or_create(
        customer_id="c2", id="X1", defaults={"total": Decimal(7)}
    )
    assert not created and upd.total == Decimal(7)
    bulk = await Order.objects.abulk_create(
        [Order(customer_id="c3", total=Decimal(i)) for i in range(3)]
    )
    assert await Order.objects.filter(customer_id="c3").acount() == len(bulk) == 3


async def test_versioned_singleton_and_collection_awaited(transport: str) -> None:
    doc = await AsyncDoc.objects.acreate(title="v1")
    doc.title = "v2"
    await doc.asave()
    history = await doc.ahistory()
    assert [d.version for d in history] == [2, 1]
    await doc.arevert(1)
    assert (doc.title, doc.version) == ("v1", 3)
    streamed = [d.title async for d in doc.history()]
    assert streamed == ["v1", "v2", "v1"]

    settings = await AsyncSettings.aload()
    assert settings.version == 0
    settings.theme = "dark"
    await settings.asave()
    assert (await AsyncSettings.aload()).theme == "dark"

    customer = await Customer.objects.acreate(email="a@example.com", name="A")
    group = await Customer.objects.filter(id=customer.id).include(Order).aload()
    assert group.one(Customer) == customer


async def test_transactions_awaited(transport: str) -> None:
    a = Order(customer_id="c1", total=Decimal(1))
    b = Order(customer_id="c1", total=Decimal(2))
    async with dynorm.atransaction():
        await a.asave()
        b.save()  # the sync methods join the same transaction
        with pytest.raises(RuntimeError):
            async with dynorm.atransaction():  # a savepoint: its writes are dropped
                await Order(customer_id="c1", total=Decimal(3)).asave()
                raise RuntimeError("inner")
    assert await Order.objects.filter(customer_id="c1").acount() == 2
    got_a, got_b = await dynorm.atransaction_get(
        ((Order, {"customer_id": "c1", "id": a.id}), (Order, {"customer_id": "c1", "id": b.id}))
    )
    assert (got_a, got_b) == (a, b)


async def test_using_block_is_seen_by_the_awaited_call(transport: str, second_table: Table) -> None:
    with dynorm.using(second_table):
        o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    assert not await Order.objects.filter(customer_id="c1").aexists()
    with dynorm.using(second_table):
        assert (await Order.objects.aget(customer_id="c1", id=o.id)) == o
    o.total = Decimal(2)
    await o.asave()  # back to the table it was created in
    with dynorm.using(second_table):
        assert (await Order.objects.aget(customer_id="c1", id=o.id)).total == Decimal(2)


# --------------------------------------------------------------------------- iteration


async def test_async_for_reads_pages_as_it_goes_and_caches_a_full_pass(
    dynorm_table: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    orders(24, note="x" * 100_000)  # ~2.4 MB: at least 3 pages
    sent.clear()
    qs = Order.objects.filter(customer_id="c1")
    seen = 0
    async for _ in qs:
        seen += 1
        if seen == 1:
            assert [op for op, _ in sent] == ["Query"]  # one page read, not all of them
    assert seen == 24
    pages = len(sent)
    assert pages >= 3
    assert [o.id async for o in qs] == [o.id for o in qs]  # the cache: nothing more sent
    assert len(sent) == pages
    streamed = [o.id async for o in Order.objects.filter(customer_id="c1").aiterator()]
    assert len(streamed) == 24 and len(sent) == 2 * pages  # aiterator never caches


async def test_breaking_or_cancelling_an_iteration_closes_its_page_source(
    transport: str, sent: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    orders(24, note="x" * 100_000)
    from dynorm.query.queryset import QuerySet

    closed: list[bool] = []
    original = QuerySet._fetch_pages

    def watched(self: Any, limit: int | None = None) -> Iterator[list[Any]]:
        try:
            yield from original(self, limit)
        finally:
            closed.append(True)

    monkeypatch.setattr(QuerySet, "_fetch_pages", watched)
    sent.clear()
    it = Order.objects.filter(customer_id="c1").aiterator()
    async for _ in it:
        break
    await it.aclose()
    assert closed == [True] and len(sent) == 1

    started = asyncio.Event()

    async def consume() -> None:
        async for _ in Order.objects.filter(customer_id="c1"):
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The abandoned iteration is closed by the loop's async-generator finalizer (as soon
    # as the loop runs again), on a worker thread.
    for _ in range(200):
        if len(closed) == 2:
            break
        await asyncio.sleep(0.01)
    assert closed == [True, True]
    assert len(sent) == 2  # no page was read after the cancellation


# --------------------------------------------------------------------------- concurrency


async def test_fifty_tasks_saving_copies_of_one_version_exactly_one_wins(
    transport: str,
) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(0))
    copies = [await Order.objects.aget(customer_id="c1", id=o.id) for _ in range(50)]
    for i, c in enumerate(copies):
        c.total = Decimal(i)

    results = await asyncio.gather(*(c.asave() for c in copies), return_exceptions=True)
    won = [i for i, r in enumerate(results) if r is None]
    lost = [r for r in results if r is not None]
    assert len(won) == 1
    assert all(isinstance(r, VersionConflictError) for r in lost)
    stored = await Order.objects.aget(customer_id="c1", id=o.id)
    assert (stored.version, stored.total) == (2, Decimal(won[0]))


async def test_fifty_tasks_saving_one_shared_object_take_turns(transport: str) -> None:
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(0))
    await asyncio.gather(*(o.asave() for _ in range(50)))
    stored = await Order.objects.aget(customer_id="c1", id=o.id)
    assert o.version == stored.version == 51  # each save at the version the one before stored


async def test_concurrent_increments_lose_nothing(transport: str) -> None:
    counter = await Counter.objects.acreate(name="hits")
    # One shared object: its writes take turns, so every increment applies.
    await asyncio.gather(*(counter.aupdate(value=F("value") + 1) for _ in range(30)))
    assert counter.value == (await Counter.objects.aget(name="hits")).value == 30
    # Racing query updates: each one is applied or raises; none is lost or doubled.
    qs = Counter.objects.filter(name="hits")
    results = await asyncio.gather(
        *(qs.aupdate(value=F("value") + 1) for _ in range(20)), return_exceptions=True
    )
    applied = [r for r in results if r == 1]
    assert all(r == 1 or isinstance(r, VersionConflictError) for r in results)
    assert applied
    assert (await Counter.objects.aget(name="hits")).value == 30 + len(applied)


async def test_the_event_loop_runs_while_a_request_waits(dynorm_table: str) -> None:
    faults = Faults()
    enough = threading.Event()  # set once the loop has ticked 10 times

    def slow(**_: Any) -> None:
        enough.wait(30)  # the request waits (on its worker thread) while the loop ticks

    faults.on("before-send.dynamodb.GetItem", slow)
    try:
        o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1
                if ticks >= 10:
                    enough.set()

        tick = asyncio.create_task(ticker())
        await Order.objects.aget(customer_id="c1", id=o.id)
        tick.cancel()
        assert ticks >= 10  # the loop ticked through the time the request took
    finally:
        faults.clear()
    faults.check_fired()


# --------------------------------------------------------------------------- cancellation


async def test_a_task_cancelled_inside_a_transaction_sends_nothing(
    transport: str, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    inside = asyncio.Event()

    async def work() -> None:
        async with dynorm.atransaction():
            await Order(customer_id="c1", total=Decimal(1)).asave()
            await Order.objects.acreate(customer_id="c1", total=Decimal(2))
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(work())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [op for op, _ in sent] == []
    assert not await Order.objects.filter(customer_id="c1").aexists()
    assert dynorm._transactions.current_transaction() is None


def socket_set() -> set[str]:
    """This process's open sockets, by inode (`socket:[123]`)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


async def assert_cancelled_gets_leak_no_connection(rounds: int) -> None:
    """`rounds` x 60 GetItems cancelled mid-flight leave at most the pool's sockets open."""
    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    await asyncio.gather(*(Order.objects.aget(customer_id="c1", id=o.id) for _ in range(60)))
    before = len(socket_set())
    for _ in range(rounds):
        tasks = [
            asyncio.create_task(Order.objects.aget(customer_id="c1", id=o.id)) for _ in range(60)
        ]
        await asyncio.sleep(0.005)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(Order.objects.aget(customer_id="c1", id=o.id) for _ in range(60)))
    pool = dynorm._config.get_settings().max_pool_connections
    # The pooled connections are reused (at most the pool's size open), none is left
    # behind by a cancelled call.
    assert len(socket_set()) <= before + pool


async def test_cancelled_calls_leak_no_connection(dynorm_table: str) -> None:
    await assert_cancelled_gets_leak_no_connection(rounds=5)


async def test_a_cancelled_write_finishes_before_the_task_goes_on(dynorm_table: str) -> None:
    faults = Faults()
    entered = threading.Event()

    def slow(**_: Any) -> None:
        entered.set()
        time.sleep(0.3)

    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    faults.on("before-send.dynamodb.PutItem", slow)
    try:
        o.total = Decimal(2)
        task = asyncio.create_task(o.asave())
        for _ in range(1000):  # at most 5 s: a fault that is never injected fails the test
            if entered.is_set():
                break
            await asyncio.sleep(0.005)
        assert entered.is_set(), "the write never reached the wire"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The write was already on the wire: it finished, and the object knows it.
        stored = await Order.objects.aget(customer_id="c1", id=o.id)
        assert stored.version == o.version == 2
    finally:
        faults.clear()
    faults.check_fired()


# --------------------------------------------------------------------------- faults


async def test_lost_response_and_throttling_are_retried_once_applied(dynorm_table: str) -> None:
    faults = Faults()
    lost: list[int] = []

    def lose(request: Any, **_: Any) -> Any:
        if not lost:
            lost.append(faults.send(request).status_code)  # applied for real ...
            raise ReadTimeoutError(endpoint_url=request.url)  # ... and the answer lost
        return None

    throttled: list[int] = []

    def throttle(**_: Any) -> Any:
        if len(throttled) < 2:
            throttled.append(1)
            return aws_error("ProvisionedThroughputExceededException", status=400)
        return None

    o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    faults.on("before-send.dynamodb.UpdateItem", lose)
    faults.on("before-send.dynamodb.GetItem", throttle)
    try:
        await o.aupdate(total=F("total") + 1)
        got = await Order.objects.aget(customer_id="c1", id=o.id)
    finally:
        faults.clear()
    faults.check_fired()
    assert lost == [200] and len(throttled) == 2
    assert (got.total, got.version) == (Decimal(2), 2)  # applied once, no false conflict


# --------------------------------------------------------------------------- the sync API


async def test_the_sync_api_works_in_worker_threads_and_never_makes_a_loop(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("dynorm created or set an event loop")

    monkeypatch.setattr(asyncio, "new_event_loop", refuse)
    monkeypatch.setattr(asyncio, "set_event_loop", refuse)
    monkeypatch.setattr(asyncio, "run", refuse)

    def sync_work() -> int:
        o = Order.objects.create(customer_id="c1", total=Decimal(1))
        o.update(total=F("total") + 1)
        with dynorm.transaction():
            Order(customer_id="c1", total=Decimal(3)).save()
        return Order.objects.filter(customer_id="c1").count()

    assert await asyncio.to_thread(sync_work) == 2
    assert await Order.objects.filter(customer_id="c1").acount() == 2


async def test_a_read_only_manager_refuses_async_writes(transport: str) -> None:
    await Order.objects.acreate(customer_id="c1", total=Decimal(1))
    ro = Order.objects.read_only()
    with pytest.raises(ReadOnlyError):
        await ro.acreate(customer_id="c1", total=Decimal(2))
    with pytest.raises(ReadOnlyError):
        await ro.filter(customer_id="c1").aupdate(status="paid")
    async for o in ro.filter(customer_id="c1"):  # objects read page by page are read-only too
        with pytest.raises(ReadOnlyError):
            await o.asave()
    streamed = [o async for o in ro.filter(customer_id="c1").aiterator()]
    with pytest.raises(ReadOnlyError):
        await streamed[0].adelete()
    assert (await Order.objects.filter(customer_id="c1").afirst()) is not None


async def test_async_receivers_are_awaited_and_wait_for_the_commit(transport: str) -> None:
    seen: list[tuple[str, bool]] = []

    async def saved(sender: Any, instance: Order, created: bool, **_: Any) -> None:
        await asyncio.sleep(0)
        stored = await Order.objects.filter(customer_id="c1", id=instance.id).aexists()
        seen.append(("post_save", stored and created))

    async def refuse(sender: Any, instance: Order, **_: Any) -> None:
        if instance.total < 0:
            raise ValueError("negative")

    signals.post_save.connect(saved, sender=Order, weak=False)
    signals.pre_save.connect(refuse, sender=Order, weak=False)
    try:
        o = await Order.objects.acreate(customer_id="c1", total=Decimal(1))
        assert seen == [("post_save", True)]  # sent after the write, awaited
        with pytest.raises(ValueError):
            await Order(customer_id="c1", total=Decimal(-1)).asave()  # pre stops the write
        assert await Order.objects.filter(customer_id="c1").acount() == 1
        committed: list[str] = []
        async with dynorm.atransaction():
            o.total = Decimal(5)
            await o.asave()
            dynorm.transaction.on_commit(lambda: committed.append("sync"))
            assert len(seen) == 1  # post_save waits for the commit
        assert len(seen) == 2 and committed == ["sync"]
    finally:
        signals.post_save.disconnect(saved, sender=Order)
        signals.pre_save.disconnect(refuse, sender=Order)
