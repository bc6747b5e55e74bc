"""Every write path against DynamoDB Local: create, save, update_fields, update, delete, moves."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import dynorm
from dynorm import F, _config
from dynorm.exceptions import (
    ConditionFailedError,
    InvalidValueError,
    ItemTooLargeError,
    ObjectDoesNotExist,
    QueryError,
    VersionConflictError,
)
from tests.models import Counter, Customer, Event, Everything, Order, OrderLine


def raw_item(pk: str, sk: str) -> dict[str, Any] | None:
    conn = _config.get_connection()
    response = conn.client.get_item(
        TableName=conn.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item


def test_create_sets_version_timestamps_and_keys(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    assert c.version == 1
    assert c.created_at.tzinfo is not None and c.created_at == c.updated_at
    item = raw_item(f"CUSTOMER#{c.id}", "PROFILE")
    assert item is not None
    assert item["_type"] == {"S": "Customer"}
    assert item["version"] == {"N": "1"}
    assert item["gsi1pk"] == {"S": "EMAIL#a@example.com"}
    assert item["gsi1sk"] == {"S": "Customer"}
    assert Customer.objects.get(id=c.id) == c


def test_create_refuses_existing_key(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    twin = Customer(id=c.id, email="b@example.com", name="Bob")
    with pytest.raises(ConditionFailedError) as info:
        twin.save()
    assert not isinstance(info.value, VersionConflictError)
    assert twin.version == 0
    assert Customer.objects.get(id=c.id).name == "Ada"


def test_update_bumps_version_only_after_success(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("12.50"))
    created = o.created_at
    o.status = "paid"
    o.save()
    assert o.version == 2
    fresh = Order.objects.get(customer_id="c1", id=o.id)
    assert fresh.status == "paid" and fresh.version == 2 and fresh.created_at == created


def test_stale_save_raises_and_changes_nothing(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("1"))
    stale = Order.objects.get(customer_id="c1", id=o.id)
    o.status = "paid"
    o.save()
    before = raw_item("CUSTOMER#c1", f"ORDER#{o.id}")
    stale.status = "cancelled"
    with pytest.raises(VersionConflictError) as info:
        stale.save()
    err = info.value
    assert err.model == "Order" and err.expected_version == 1 and err.current_version == 2
    assert stale.version == 1 and stale.status == "cancelled"
    assert raw_item("CUSTOMER#c1", f"ORDER#{o.id}") == before


def test_stale_delete_raises_and_changes_nothing(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("1"))
    stale = Order.objects.get(customer_id="c1", id=o.id)
    o.save()
    before = raw_item("CUSTOMER#c1", f"ORDER#{o.id}")
    with pytest.raises(VersionConflictError):
        stale.delete()
    assert stale.version == 1
    assert raw_item("CUSTOMER#c1", f"ORDER#{o.id}") == before


def test_delete_and_refresh(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("1"))
    other = Order.objects.get(customer_id="c1", id=o.id)
    other.total = Decimal("9")
    other.save()
    o.refresh_from_db()
    assert o.total == Decimal("9") and o.version == 2
    o.delete()
    assert o.version == 0
    assert raw_item("CUSTOMER#c1", f"ORDER#{o.id}") is None
    with pytest.raises(Order.DoesNotExist):
        Order.objects.get(customer_id="c1", id=o.id)
    with pytest.raises(ObjectDoesNotExist):
        other.refresh_from_db()


def test_save_update_fields_is_a_partial_update(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("5"), note="keep")
    other = Order.objects.get(customer_id="c1", id=o.id)
    o.status = "paid"
    o.total = Decimal("999")  # not in update_fields: must not be written
    o.save(update_fields=["status"])
    assert o.version == 2
    stored = Order.objects.get(customer_id="c1", id=o.id)
    assert stored.status == "paid" and stored.total == Decimal("5") and stored.note == "keep"
    item = raw_item("CUSTOMER#c1", f"ORDER#{o.id}")
    assert item is not None and item["gsi1pk"] == {"S": "STATUS#paid"}
    other.note = None
    with pytest.raises(VersionConflictError):
        other.save(update_fields=["note"])
    with pytest.raises(QueryError):
        o.save(update_fields=["nope"])


def test_update_fields_removes_none_and_sparse_index(dynorm_table: str) -> None:
    o = Order.objects.create(customer_id="c1", total=Decimal("5"), note="x")
    o.note = None
    o.save(update_fields=["note"])
    item = raw_item("CUSTOMER#c1", f"ORDER#{o.id}")
    assert item is not None and "note" not in item
    assert Order.objects.get(customer_id="c1", id=o.id).note is None


def test_instance_update_with_f_expressions(dynorm_table: str) -> None:
    o = Order.objects.create(
        customer_id="c1",
        total=Decimal("10"),
        tags={"a"},
        lines=[OrderLine(sku="s", qty=1, price=Decimal(1))],
    )
    o.update(total=F("total") + 5, tags=F("tags").add({"gift"}))
    assert o.total == Decimal("15") and o.tags == {"a", "gift"} and o.version == 2
    o.update(
        tags=F("tags").remove({"a"}),
        lines=F("lines").append([OrderLine(sku="t", qty=2, price=Decimal(2))]),
    )
    assert o.tags == {"gift"} and [line.sku for line in o.lines] == ["s", "t"]
    o.update(note=F("note").if_not_exists("first"), total=F("total") - 1)
    assert o.note == "first" and o.total == Decimal("14")
    o.update(status="paid")
    item = raw_item("CUSTOMER#c1", f"ORDER#{o.id}")
    assert (
        item is not None
        and item["gsi1pk"] == {"S": "STATUS#paid"}
        and item["version"] == {"N": "5"}
    )
    stale = Order.objects.get(customer_id="c1", id=o.id)
    o.update(total=F("total") + 1)
    with pytest.raises(VersionConflictError):
        stale.update(total=F("total") + 1)
    with pytest.raises(QueryError):
        o.update(customer_id="c2")
    o.update(status=F("status"))  # an index-key field: read-modify-write (test_index_key_updates)
    assert o.status == "paid"


def test_key_change_moves_item_atomically(dynorm_table: str) -> None:
    e = Event.objects.create(stream="s", seq=1, body="b")
    e.seq = 2
    e.save()
    assert raw_item("STREAM#s", "EVENT#0000000001") is None
    moved = raw_item("STREAM#s", "EVENT#0000000002")
    assert moved is not None and moved["version"] == {"N": "2"}
    assert Event.objects.get(stream="s", seq=2).body == "b"
    Event.objects.create(stream="s", seq=3)
    e.seq = 3
    with pytest.raises(ConditionFailedError):
        e.save()
    assert e.version == 2 and raw_item("STREAM#s", "EVENT#0000000002") is not None


def test_concurrent_increments_reach_exactly_sixty(dynorm_table: str) -> None:
    Counter.objects.create(name="hits")
    conflicts = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal conflicts
        try:
            for _ in range(10):
                while True:
                    c = Counter.objects.get(name="hits")
                    c.value += 1
                    try:
                        c.save()
                        break
                    except VersionConflictError:
                        with lock:
                            conflicts += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = Counter.objects.consistent().get(name="hits")
    assert final.value == 60
    assert final.version == 61


def test_round_trip_every_field_type(dynorm_table: str) -> None:
    import uuid
    from datetime import date

    from tests.models import Color

    e = Everything(
        s="é 漢字 🎉",
        i=10**37 + 1,
        f=0.1,
        d=Decimal("3.1400"),
        b=True,
        raw=b"\x00\xff",
        when=datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc),
        day=date(2024, 5, 1),
        uid=uuid.uuid4(),
        color=Color.BLUE,
        kind="b",
        ss={"x", "y"},
        ns={1, 2},
        bs={b"a"},
        items=[1, 2, 3],
        mapping={"a": 1},
        line=OrderLine(sku="s", qty=1, price=Decimal("2.5")),
        maybe=None,
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        blob="z" * 100_000,
    )
    e.save()
    got = Everything.objects.get(id=e.id)
    assert got == e
    item = raw_item(f"EVERY#{e.id}", "Everything")
    assert item is not None and "B" in item["blob"] and "_ttl" in item and "maybe" not in item
    empty = Everything.objects.create()
    assert Everything.objects.get(id=empty.id).ss == set()


def test_item_too_large_is_refused_before_sending(dynorm_table: str) -> None:
    o = Order(customer_id="c1", total=Decimal(1), note="x" * (401 * 1024))
    with pytest.raises(ItemTooLargeError) as info:
        o.save()
    assert "x" * 20 not in str(info.value)
    assert o.version == 0


def test_naive_datetime_rejected(dynorm_table: str) -> None:
    with pytest.raises(InvalidValueError):
        Everything(when=datetime(2024, 1, 1)).save()


def test_create_table_is_idempotent(dynorm_table: str) -> None:
    dynorm.create_table()
    desc = _config.get_connection().client.describe_table(TableName=dynorm_table)["Table"]
    assert {g["IndexName"] for g in desc["GlobalSecondaryIndexes"]} >= {"gsi1"}
    ttl = _config.get_connection().client.describe_time_to_live(TableName=dynorm_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "_ttl"
