"""`Meta.counted`: the per-type count kept in the same transaction as each create and delete.

The invariant every test checks: `stats().count` equals the number of stored objects.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import Model, VersionedModel
from dynorm._cli import cli
from dynorm._counters import SHARDS, shard_keys
from dynorm.exceptions import (
    ItemExistsError,
    QueryError,
    ServiceError,
    UniqueViolationError,
    VersionConflictError,
)
from tests.models import Order
from tests.reliability.helpers import Faults, raw_scan


class CountedOrder(Model):
    id: str
    status: str = "open"

    class Meta:
        pk = "CORDER#{id}"
        counted = True


class CountedMember(Model):
    id: str
    email: str

    class Meta:
        pk = "CMEMBER#{id}"
        counted = True
        unique = [("email",)]


class CountedPage(VersionedModel):
    id: str
    text: str = ""

    class Meta:
        pk = "CPAGE#{id}"
        counted = True


def _stored(type_name: str) -> int:
    return sum(1 for i in raw_scan() if i.get("_type", {}).get("S") == type_name)


def _assert_counts_match() -> None:
    assert CountedOrder.objects.stats().count == _stored("CountedOrder")
    assert CountedMember.objects.stats().count == _stored("CountedMember")


def test_the_count_follows_every_create_and_delete(dynorm_table: str) -> None:
    orders = [CountedOrder.objects.create(id=f"o{n}") for n in range(7)]
    assert CountedOrder.objects.stats().count == 7
    orders[0].delete()
    orders[1].status = "paid"
    orders[1].save()  # a save changes no count
    orders[2].update(status="paid")
    orders[3].id = "moved"
    orders[3].save()  # a key move neither
    assert CountedOrder.objects.stats().count == 6
    _assert_counts_match()


def test_stats_reads_every_shard_in_one_request(dynorm_table: str, sent: Any) -> None:
    CountedOrder.objects.create(id="a")
    sent.clear()
    assert CountedOrder.objects.stats() == dynorm.Stats(count=1)
    assert [op for op, _ in sent] == ["BatchGetItem"]
    (keys,) = [p["RequestItems"][dynorm_table]["Keys"] for _, p in sent]
    assert len(keys) == SHARDS == len(set(shard_keys(CountedOrder._meta)))
    with pytest.raises(QueryError, match="counted"):
        Order.objects.stats()  # not a counted model
    assert CountedPage.objects.stats().count == 0


def test_a_refused_write_changes_no_count(dynorm_table: str) -> None:
    order = CountedOrder.objects.create(id="a")
    with pytest.raises(ItemExistsError):
        CountedOrder.objects.create(id="a")
    stale = CountedOrder.objects.get(id="a")
    order.save()
    with pytest.raises(VersionConflictError):
        stale.delete()
    CountedMember.objects.create(id="m1", email="x@example.com")
    with pytest.raises(UniqueViolationError):
        CountedMember.objects.create(id="m2", email="x@example.com")
    _assert_counts_match()
    assert CountedOrder.objects.stats().count == 1


def test_lost_responses_are_counted_once(dynorm_table: str, faults: Faults) -> None:
    faults.lose_response("TransactWriteItems")
    order = CountedOrder.objects.create(id="a")
    assert order.version == 1
    faults.clear()
    faults.lose_response("TransactWriteItems")
    order.delete()
    faults.clear()
    faults.lose_response("TransactWriteItems", times=100)
    again = CountedOrder(id="b")
    with pytest.raises(ServiceError):
        again.save()
    faults.clear()
    again.save()  # the documented retry: applied once, counted once
    _assert_counts_match()
    assert CountedOrder.objects.stats().count == 1


def test_concurrent_creates_and_deletes_are_each_counted(dynorm_table: str) -> None:
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        barrier.wait()
        try:
            order = CountedOrder.objects.create(id=f"t{n}")
            if n % 4 == 0:
                order.delete()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert CountedOrder.objects.stats().count == 12
    _assert_counts_match()


def test_a_transaction_block_counts_its_writes_or_nothing(dynorm_table: str) -> None:
    with dynorm.transaction():  # more creates than shards: one shard's deltas are merged
        for n in range(SHARDS + 5):
            CountedOrder.objects.create(id=f"x{n}")
    assert CountedOrder.objects.stats().count == SHARDS + 5
    with pytest.raises(dynorm.TransactionCanceledError):
        with dynorm.transaction():
            CountedOrder.objects.create(id="new")
            CountedOrder.objects.create(id="x0")  # exists: the block is cancelled
    _assert_counts_match()


def test_bulk_writes_keep_the_count(dynorm_table: str) -> None:
    CountedOrder.objects.bulk_create([CountedOrder(id=f"b{n}") for n in range(30)])
    assert CountedOrder.objects.stats().count == 30
    with pytest.raises(QueryError, match="overwrite"):
        CountedOrder.objects.bulk_create([CountedOrder(id="b1")], overwrite=True)
    assert CountedOrder.objects.filter(id="b1").delete() == 1
    assert CountedOrder.objects.filter(id="b1").delete() == 0  # gone: not counted twice
    with dynorm.transaction():
        CountedOrder.objects.filter(id="b2").delete()
    assert CountedOrder.objects.stats().count == 28
    _assert_counts_match()


def test_versioned_models_count_objects_not_versions(dynorm_table: str) -> None:
    page = CountedPage.objects.create(id="p")
    page.text = "v2"
    page.save()
    assert CountedPage.objects.stats().count == 1
    page.delete()
    assert CountedPage.objects.stats().count == 0


def test_the_stats_command_shows_every_counted_type(dynorm_table: str) -> None:
    CountedOrder.objects.create(id="a")
    CountedMember.objects.create(id="m", email="m@example.com")
    endpoint = dynorm._config.get_settings().endpoint_url
    assert endpoint is not None
    args = ["stats", "--models", __name__, "--table", dynorm_table, "--endpoint-url", endpoint]
    saved = dynorm._config.snapshot()
    try:
        result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        text = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        dynorm._config.restore(saved)
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert counts["CountedOrder"] == 1 and counts["CountedMember"] == 1
    assert "CountedOrder" in text.output and "CountedPage" in text.output


@settings(
    max_examples=min(15, int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "15"))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create", "delete", "save"]),
            st.integers(0, 3),
            st.sampled_from(["none", "lost_once", "all_lost"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_writes_and_lost_responses_keeps_the_count(
    faults: Faults, steps: list[tuple[str, int, str]]
) -> None:
    run = uuid.uuid4().hex[:8]
    objects: dict[int, CountedOrder] = {}
    try:
        for kind, n, fault in steps:
            obj = objects.get(n)
            writes = obj is None if kind == "create" else obj is not None and bool(obj.version)
            # A fault only where a write is sent, on the request it sends: creates and deletes
            # change the count (one transaction), a save of a stored order is one PutItem.
            operation = "PutItem" if kind == "save" else "TransactWriteItems"
            if writes and fault == "lost_once":
                faults.lose_response(operation)
            elif writes and fault == "all_lost":
                faults.lose_response(operation, times=100)
            try:
                if kind == "create" and obj is None:
                    obj = objects[n] = CountedOrder(id=f"{run}{n}")
                    try:
                        obj.save()
                    except ServiceError:
                        faults.clear()
                        obj.save()  # the documented retry
                elif kind == "delete" and obj is not None and obj.version:
                    try:
                        obj.delete()
                    except ServiceError:
                        faults.clear()
                        obj.delete()
                    del objects[n]
                elif kind == "save" and obj is not None and obj.version:
                    obj.status = run
                    try:
                        obj.save()
                    except ServiceError:
                        faults.clear()
                        obj.save()
            finally:
                faults.clear()
    finally:
        faults.clear()
    _assert_counts_match()
