"""Signals on DynamoDB Local: post signals and on_commit only after the write (or commit)."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import ConfigurationError, TransactionCanceledError, VersionConflictError, signals
from dynorm.exceptions import ItemExistsError
from tests.models import Customer, Order

FIXTURE = HealthCheck.function_scoped_fixture
ALL = (
    signals.pre_save,
    signals.post_save,
    signals.pre_delete,
    signals.post_delete,
    signals.post_update,
)


class Log:
    """Every signal received: (signal name, sender, kwargs), in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, sender: Any, signal: signals.Signal, **kwargs: Any) -> None:
        with self.lock:
            self.seen.append((signal.name, sender, kwargs))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.seen]


@pytest.fixture
def log(dynorm_table: str) -> Iterator[Log]:
    received = Log()
    for signal in ALL:
        signal.connect(received, weak=False, dispatch_uid="test-log")
    yield received
    for signal in ALL:
        signal.disconnect(dispatch_uid="test-log")


def _connected(signal: signals.Signal, func: Any, uid: str) -> None:
    signal.connect(func, weak=False, dispatch_uid=uid)


# --------------------------------------------------------------------------- outside a transaction


def test_post_save_is_sent_after_the_save_succeeded_with_created(log: Log) -> None:
    stored_at_post: list[int] = []

    def check(sender: Any, instance: Order, **_: Any) -> None:
        stored_at_post.append(Order.objects.get(customer_id="c1", id=instance.id).version)

    _connected(signals.post_save, check, "check-stored")
    try:
        order = Order(customer_id="c1", total=Decimal(1))
        order.save()
        order.status = "paid"
        order.save(update_fields=["status"])
    finally:
        signals.post_save.disconnect(dispatch_uid="check-stored")
    assert log.names() == ["pre_save", "post_save", "pre_save", "post_save"]
    assert [kw.get("created") for n, _, kw in log.seen if n == "post_save"] == [True, False]
    assert log.seen[2][2]["update_fields"] == ("status",)
    assert all(sender is Order and kw["instance"] is order for _, sender, kw in log.seen)
    assert stored_at_post == [1, 2]  # the receiver saw the write stored


def test_a_raising_pre_save_receiver_stops_the_write(log: Log) -> None:
    def refuse(sender: Any, **_: Any) -> None:
        raise RuntimeError("no")

    _connected(signals.pre_save, refuse, "refuse")
    try:
        with pytest.raises(RuntimeError):
            Order.objects.create(customer_id="c1", total=Decimal(1))
    finally:
        signals.pre_save.disconnect(dispatch_uid="refuse")
    assert Order.objects.filter(customer_id="c1").count() == 0
    assert "post_save" not in log.names()


def test_a_raising_pre_delete_receiver_stops_the_delete(log: Log) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal(1))

    def refuse(sender: Any, **_: Any) -> None:
        raise RuntimeError("no")

    _connected(signals.pre_delete, refuse, "refuse")
    try:
        with pytest.raises(RuntimeError):
            order.delete()
    finally:
        signals.pre_delete.disconnect(dispatch_uid="refuse")
    assert Order.objects.filter(customer_id="c1").count() == 1
    assert "post_delete" not in log.names()


def test_no_post_signal_is_sent_for_a_write_that_raises(log: Log) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal(1))
    stale = Order.objects.get(customer_id="c1", id=order.id)
    order.update(total=Decimal(2))
    log.seen.clear()
    with pytest.raises(VersionConflictError):
        stale.save()
    with pytest.raises(VersionConflictError):
        stale.update(total=Decimal(3))
    with pytest.raises(VersionConflictError):
        stale.delete()
    with pytest.raises(ItemExistsError):
        Order.objects.create(customer_id="c1", id=order.id, total=Decimal(1))
    assert log.names() == ["pre_save", "pre_delete", "pre_save"]


def test_delete_and_update_send_their_signals(log: Log) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal(1))
    log.seen.clear()
    order.update(total=dynorm.F("total") + 1)
    order.delete()
    assert log.names() == ["post_update", "pre_delete", "post_delete"]
    assert set(log.seen[0][2]["values"]) == {"total"}
    assert log.seen[0][2]["instance"].total == 2  # refreshed before the signal


def test_receivers_connected_to_a_sender_hear_only_it(dynorm_table: str) -> None:
    heard: list[Any] = []

    def listen(sender: Any, **_: Any) -> None:
        heard.append(sender)

    signals.post_save.connect(listen, Customer)
    try:
        Order.objects.create(customer_id="c1", total=Decimal(1))
        Customer.objects.create(email="a@example.com", name="Ada")
    finally:
        assert signals.post_save.disconnect(listen, Customer)
    assert heard == [Customer]


def test_the_bare_writes_send_no_signal(log: Log) -> None:
    order = Order(customer_id="c1", total=Decimal(1))
    order._save_unsignalled(None)
    order._update_unsignalled({"total": Decimal(2)})
    order._delete_unsignalled()
    assert log.seen == []
    assert Order.objects.filter(customer_id="c1").count() == 0


def test_racing_saves_send_one_post_save_per_successful_write(log: Log) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal(1))
    copies = [Order.objects.get(customer_id="c1", id=order.id) for _ in range(6)]
    log.seen.clear()
    won: list[Order] = []
    barrier = threading.Barrier(len(copies))

    def save(copy: Order) -> None:
        barrier.wait()
        try:
            copy.save()
            won.append(copy)
        except VersionConflictError:
            pass

    threads = [threading.Thread(target=save, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posts = [kw["instance"] for name, _, kw in log.seen if name == "post_save"]
    assert len(won) == 1 and posts == won
    assert log.names().count("pre_save") == len(copies)


# --------------------------------------------------------------------------- transactions


def test_post_signals_inside_a_transaction_wait_for_the_commit(log: Log) -> None:
    with dynorm.transaction():
        order = Order(customer_id="c1", total=Decimal(1))
        order.save()
        assert log.names() == ["pre_save"]  # sent, but not the post signal
    assert log.names() == ["pre_save", "post_save"]
    assert log.seen[1][2]["created"] is True and order.version == 1


def test_no_post_signal_when_the_transaction_block_raises(log: Log) -> None:
    with pytest.raises(KeyError), dynorm.transaction():
        Order(customer_id="c1", total=Decimal(1)).save()
        raise KeyError("boom")
    assert log.names() == ["pre_save"]
    assert Order.objects.filter(customer_id="c1").count() == 0


def test_no_post_signal_when_dynamodb_cancels_the_transaction(log: Log) -> None:
    customer = Customer.objects.create(email="a@example.com", name="Ada")
    log.seen.clear()
    called: list[str] = []
    with pytest.raises(TransactionCanceledError), dynorm.transaction() as tx:
        Order(customer_id="c1", total=Decimal(1)).save()
        dynorm.transaction.on_commit(lambda: called.append("on_commit"))
        tx.check(customer, version=customer.version + 5)
    assert log.names() == ["pre_save"] and called == []


def test_a_savepoint_that_raises_drops_its_post_signals_and_callbacks(log: Log) -> None:
    called: list[str] = []
    with dynorm.transaction():
        Order(customer_id="c1", total=Decimal(1)).save()
        with pytest.raises(KeyError), dynorm.transaction():
            Order(customer_id="c2", total=Decimal(2)).save()
            dynorm.transaction.on_commit(lambda: called.append("inner"))
            raise KeyError("boom")
        dynorm.transaction.on_commit(lambda: called.append("outer"))
    posts = [kw["instance"].customer_id for n, _, kw in log.seen if n == "post_save"]
    assert posts == ["c1"] and called == ["outer"]


def test_on_commit_outside_a_transaction_runs_at_once(dynorm_table: str) -> None:
    called: list[int] = []
    dynorm.transaction.on_commit(lambda: called.append(1))
    assert called == [1]


@settings(max_examples=10, deadline=None, suppress_health_check=[FIXTURE])
@given(ops=st.lists(st.sampled_from(["save", "callback", "raise"]), min_size=1, max_size=5))
def test_on_commit_callbacks_run_iff_the_transaction_committed(
    log: Log, ops: list[str]
) -> None:
    called: list[int] = []
    log.seen.clear()
    raised = "raise" in ops
    try:
        with dynorm.transaction():
            for i, op in enumerate(ops):
                if op == "save":
                    Order(customer_id="c1", total=Decimal(i)).save()
                elif op == "callback":
                    dynorm.transaction.on_commit(lambda i=i: called.append(i))
                else:
                    raise KeyError("boom")
    except KeyError:
        pass
    callbacks = [i for i, op in enumerate(ops) if op == "callback"]
    saves = ops.count("save")
    if raised:
        assert called == [] and "post_save" not in log.names()
    else:
        assert called == callbacks and log.names().count("post_save") == saves


# --------------------------------------------------------------------------- receivers


def test_sync_send_refuses_a_coroutine_receiver_before_writing(log: Log) -> None:
    async def receiver(sender: Any, **_: Any) -> None:
        pass  # pragma: no cover - never awaited

    _connected(signals.pre_save, receiver, "async")
    try:
        with pytest.raises(ConfigurationError, match="asave"):
            Order.objects.create(customer_id="c1", total=Decimal(1))
    finally:
        signals.pre_save.disconnect(dispatch_uid="async")
    assert Order.objects.filter(customer_id="c1").count() == 0


def test_asend_awaits_coroutine_receivers_and_calls_sync_ones() -> None:
    signal = signals.Signal("custom")
    seen: list[str] = []

    async def later(sender: Any, **kw: Any) -> str:
        await asyncio.sleep(0)
        seen.append(f"async {kw['x']}")
        return "a"

    def now(sender: Any, **kw: Any) -> str:
        seen.append(f"sync {kw['x']}")
        return "s"

    signal.connect(later, weak=False)
    signal.connect(now, weak=False)
    results = asyncio.run(signal.asend(Order, x=1))
    assert seen == ["async 1", "sync 1"] and [r for _, r in results] == ["a", "s"]


def test_async_post_signals_in_a_transaction_are_awaited_by_arun_on_commit(
    dynorm_table: str,
) -> None:
    seen: list[Any] = []

    async def later(sender: Any, instance: Order, **_: Any) -> None:
        seen.append(instance.version)

    signal = signals.Signal("custom")
    signal.connect(later, weak=False)
    tx = dynorm.Transaction()
    token = dynorm._transaction_context.active.set(tx)
    try:
        order = Order(customer_id="c1", total=Decimal(1))
        asyncio.run(signals.asend_after_write(signal, Order, instance=order))
    finally:
        dynorm._transaction_context.active.reset(token)
    assert seen == []
    asyncio.run(tx.arun_on_commit())
    assert seen == [0]
    tx.on_commit(lambda: signal.asend(Order, instance=order))
    with pytest.raises(ConfigurationError, match="async"):
        tx.run_on_commit()


def test_weak_receivers_go_away_and_dispatch_uid_connects_once() -> None:
    signal = signals.Signal("custom")
    seen: list[int] = []

    def receiver(sender: Any, **_: Any) -> None:
        seen.append(1)

    signal.connect(receiver)
    signal.connect(receiver)  # the same receiver and sender: once
    signal.connect(receiver, dispatch_uid="x")
    signal.connect(lambda sender, **_: seen.append(2), dispatch_uid="x")  # same uid: ignored
    signal.send(Order)
    assert seen == [1, 1]
    assert signal.disconnect(receiver) and signal.disconnect(dispatch_uid="x")
    assert not signal.has_listeners()
    signal.connect(lambda sender, **_: seen.append(3))  # weak: collected at once
    gc.collect()
    assert not signal.has_listeners()

    @signals.receiver([signal], sender=Order, weak=False)
    def decorated(sender: Any, **_: Any) -> None:
        seen.append(4)

    signal.send(Customer)
    signal.send(Order)
    assert seen == [1, 1, 4] and signal.has_listeners(Order) and not signal.has_listeners(Customer)


def test_a_write_refused_as_read_only_sends_no_signal(log: Log) -> None:
    order = Order.objects.create(customer_id="c1", total=Decimal(1))
    frozen = Order.objects.read_only().get(customer_id="c1", id=order.id)
    log.seen.clear()
    with pytest.raises(dynorm.ReadOnlyError):
        frozen.save()
    with pytest.raises(dynorm.ReadOnlyError):
        frozen.delete()
    with pytest.raises(dynorm.ReadOnlyError):
        frozen._save_unsignalled(None)  # the bare write (async API) refuses too
    assert log.seen == []
