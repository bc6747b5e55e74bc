"""The QuerySet against DynamoDB Local: paging, ranges, indexes, cursors, batches, writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from dynorm import Q, _config
from dynorm._connection import Connection
from dynorm.exceptions import InvalidCursorError, QueryError, VersionConflictError
from tests.models import Customer, Event, Order
from tests.reliability.helpers import Faults

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Record every request dynorm sends."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = Connection.send

    def spy(self: Connection, operation: str, params: Any) -> dict[str, Any]:
        calls.append((operation, dict(params)))
        return original(self, operation, params)

    monkeypatch.setattr(Connection, "send", spy)
    yield calls


@pytest.fixture
def small_pages(dynorm_table: str) -> Iterator[None]:
    """Make DynamoDB return pages of 3 evaluated items (DynamoDB Local applies its 1 MB page
    limit after filtering, so empty filtered pages need a small Limit to happen)."""

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3

    faults = Faults()
    faults.on("before-parameter-build.dynamodb.Query", limit)
    yield
    faults.clear()
    faults.check_fired()


def orders(n: int, customer: str = "c1", prefix: str = "A", **values: Any) -> list[Order]:
    objs = [
        Order(
            id=f"{prefix}{i:04d}",
            customer_id=customer,
            total=Decimal(i),
            created_at=T0 + timedelta(minutes=i),
            **values,
        )
        for i in range(n)
    ]
    return Order.objects.bulk_create(objs)


def test_large_result_is_paged_completely(dynorm_table: str, sent: list[Any]) -> None:
    orders(30, note="x" * 100_000)  # ~3 MB: at least 3 pages of 1 MB
    sent.clear()
    got = list(Order.objects.filter(customer_id="c1"))
    assert len(got) == 30
    assert len({o.id for o in got}) == 30
    assert [op for op, _ in sent].count("Query") >= 3


def test_filtered_first_and_slice_page_past_empty_pages(
    dynorm_table: str, small_pages: None, sent: list[Any]
) -> None:
    orders(10)  # four pages with no match
    matches = orders(5, prefix="B", status="paid")
    sent.clear()
    first = Order.objects.filter(customer_id="c1", status="paid").first()
    assert first is not None and first.status == "paid"
    assert [op for op, _ in sent].count("Query") == 4
    assert first.id == min(o.id for o in matches)
    top3 = Order.objects.filter(customer_id="c1", status="paid")[:3]
    assert [o.id for o in top3] == sorted(o.id for o in matches)[:3]
    assert Order.objects.filter(customer_id="c1", status="paid").count() == 5
    assert Order.objects.filter(customer_id="c1", status="shipped").exists() is False


def test_gsi_descending_with_sort_key_range(dynorm_table: str) -> None:
    orders(10)
    orders(3, customer="c2", prefix="B", status="paid")
    since = T0 + timedelta(minutes=4)
    got = list(
        Order.objects.using_gsi("by_status")
        .filter(status="open", created_at__gte=since)
        .order_by("-created_at")
    )
    assert [o.created_at for o in got] == [T0 + timedelta(minutes=i) for i in range(9, 3, -1)]
    between = Order.objects.using_gsi("by_status").filter(
        status="open", created_at__between=(T0 + timedelta(minutes=2), T0 + timedelta(minutes=4))
    )
    assert [o.total for o in between] == [Decimal(2), Decimal(3), Decimal(4)]
    lt = Order.objects.using_gsi("by_status").filter(
        status="open", created_at__lt=T0 + timedelta(minutes=2)
    )
    assert [o.total for o in lt] == [Decimal(0), Decimal(1)]
    assert Order.objects.using_gsi("by_status").filter(status="open")[:20][0].total == Decimal(0)


def test_numeric_sort_key_range_stays_inside_entity(dynorm_table: str) -> None:
    for seq in (1, 2, 9, 10, 11, 100):
        Event.objects.create(stream="s", seq=seq)
    Customer.objects.create(id="s", email="e", name="n")  # a different type nearby
    assert [e.seq for e in Event.objects.filter(stream="s", seq__gt=9)] == [10, 11, 100]
    assert [e.seq for e in Event.objects.filter(stream="s", seq__lte=10)] == [1, 2, 9, 10]
    assert [e.seq for e in Event.objects.filter(stream="s").order_by("-seq")[:2]] == [100, 11]
    assert Event.objects.filter(stream="s").last() is not None
    assert Event.objects.filter(stream="s").last().seq == 100  # type: ignore[union-attr]


def test_collection_in_one_query(dynorm_table: str, sent: list[Any]) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    mine = orders(3, customer=c.id)
    orders(2, customer="someone-else")
    sent.clear()
    group = Customer.objects.filter(id=c.id).include(Order)
    assert group.one(Customer) == c
    assert [o.id for o in group.of(Order)] == [o.id for o in mine]
    assert [op for op, _ in sent] == ["Query"]


def test_cursor_round_trip_without_gaps_or_duplicates(dynorm_table: str, small_pages: None) -> None:
    made = orders(23)
    for o in made[::3]:
        o.status = "paid"
        o.save()
    expected = [o.id for o in made if o.status == "open"]
    qs = Order.objects.filter(customer_id="c1", status="open")
    seen: list[str] = []
    cursor = None
    sizes = []
    while True:
        page = qs.page(size=4, cursor=cursor)
        sizes.append(len(page.items))
        seen += [o.id for o in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert seen == expected
    assert all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


def test_cursor_tampering_and_foreign_cursors_are_rejected(dynorm_table: str) -> None:
    orders(5)
    page = Order.objects.filter(customer_id="c1").page(size=2)
    assert page.next_cursor is not None
    body, sig = page.next_cursor.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    with pytest.raises(InvalidCursorError):
        Order.objects.filter(customer_id="c1").page(size=2, cursor=tampered)
    with pytest.raises(InvalidCursorError):
        Order.objects.filter(customer_id="c2").page(size=2, cursor=page.next_cursor)
    with pytest.raises(InvalidCursorError):
        Order.objects.filter(customer_id="c1").page(size=2, cursor="garbage")
    _config.configure(cursor_secret="another-secret-of-32-bytes-long!!")
    with pytest.raises(InvalidCursorError):
        Order.objects.filter(customer_id="c1").page(size=2, cursor=page.next_cursor)


def test_bulk_create_and_bulk_get_over_a_hundred(dynorm_table: str, sent: list[Any]) -> None:
    made = orders(130)
    assert all(o.version == 1 for o in made)
    assert [op for op, _ in sent].count("PutItem") == 130  # create-only: one conditional put each
    keys = [{"customer_id": "c1", "id": o.id} for o in reversed(made)]
    keys.insert(5, {"customer_id": "c1", "id": "missing"})
    keys.append(keys[0])
    sent.clear()
    got = Order.objects.bulk_get(keys)
    assert got[5] is None
    assert [o.id for o in got if o is not None] == [o.id for o in reversed(made)] + [made[-1].id]
    assert [op for op, _ in sent].count("BatchGetItem") == 2


def test_queryset_update_and_delete(dynorm_table: str) -> None:
    made = orders(7)
    stale = made[0]
    assert Order.objects.filter(customer_id="c1", total__lt=3).update(status="cancelled") == 3
    got = Order.objects.using_gsi("by_status").filter(status="cancelled")
    assert sorted(o.total for o in got) == [0, 1, 2]
    assert all(o.version == 2 for o in got)
    stale.status = "paid"
    with pytest.raises(VersionConflictError):
        stale.save()
    with pytest.raises(QueryError):
        Order.objects.delete()
    assert Order.objects.filter(customer_id="c1", status="cancelled").delete() == 3
    assert Order.objects.filter(customer_id="c1").count() == 4


def test_get_or_create_and_update_or_create(dynorm_table: str) -> None:
    c, created = Customer.objects.get_or_create(id="k1", defaults={"email": "e", "name": "A"})
    assert created and c.version == 1
    again, created = Customer.objects.get_or_create(id="k1", defaults={"email": "x", "name": "B"})
    assert not created and again.name == "A"
    up, created = Customer.objects.update_or_create(id="k1", defaults={"name": "C"})
    assert not created and up.name == "C" and up.version == 2
    new, created = Customer.objects.update_or_create(id="k2", defaults={"email": "e", "name": "D"})
    assert created and new.version == 1


def test_get_errors_only_scan_and_or(dynorm_table: str) -> None:
    orders(3)
    with pytest.raises(Order.MultipleObjectsReturned):
        Order.objects.get(customer_id="c1")
    with pytest.raises(Order.DoesNotExist):
        Order.objects.get(customer_id="c1", id="nope")
    partial = Order.objects.filter(customer_id="c1").only("total").first()
    assert partial is not None and partial.total == Decimal(0)
    with pytest.raises(AttributeError):
        _ = partial.status
    with pytest.raises(QueryError):
        partial.save()
    assert len(Order.objects.scan().filter(total__gte=1)) == 2
    assert len(Order.objects.scan(segments=3)) == 3
    either = Order.objects.filter(Q(total=0) | Q(total=2), customer_id="c1")
    assert sorted(o.total for o in either) == [0, 2]
    assert len(Order.objects.filter(customer_id="c1").exclude(total=1)) == 2


def test_injection_values_are_inert(dynorm_table: str) -> None:
    orders(2)
    evil = "c1) OR attribute_exists(pk"
    assert list(Order.objects.filter(customer_id=evil)) == []
    assert list(Order.objects.filter(customer_id="c1", note=evil)) == []
    with pytest.raises(QueryError):
        Order.objects.filter(**{"status) OR (1=1": "x"})
    with pytest.raises(QueryError):
        Order.objects.filter(customer_id="c1").order_by("total OR 1")


def test_parallel_scan_stops_its_threads_when_abandoned(dynorm_table: str) -> None:
    import threading

    orders(40)
    before = threading.active_count()
    it = Order.objects.scan(segments=4).iterator()
    assert next(it).customer_id == "c1"
    it.close()  # the consumer stops early: the segment threads must end
    assert threading.active_count() == before
    assert len(list(Order.objects.scan(segments=4).iterator())) == 40


def test_bulk_get_accepts_instances_and_refuses_other_entries(dynorm_table: str) -> None:
    made = orders(2)
    assert [o.id for o in Order.objects.bulk_get(made) if o] == [o.id for o in made]
    with pytest.raises(QueryError):
        Order.objects.bulk_get([...])  # type: ignore[list-item]


def test_custom_queryset_as_manager(dynorm_table: str) -> None:
    from typing_extensions import Self

    from dynorm import Model, QuerySet, _registry

    class RichQuerySet(QuerySet["Tagged"]):
        def open_for(self, owner: str) -> Self:
            return self.filter(owner=owner, status="open")

    with _registry.isolated_registry():

        class Tagged(Model):
            owner: str
            name: str
            status: str = "open"

            objects = RichQuerySet.as_manager()

            class Meta:
                pk = "TAGGED#{owner}"
                sk = "TAGGED#{name}"

        class Child(Tagged):
            class Meta:
                type_name = "TaggedChild"
                sk = "CHILD#{name}"

        Tagged.objects.create(owner="o", name="a")
        Tagged.objects.create(owner="o", name="b", status="closed")
        qs = Tagged.objects.open_for("o")  # type: ignore[attr-defined]
        assert isinstance(qs, RichQuerySet)
        assert [t.name for t in qs] == ["a"]
        assert isinstance(Child.objects, RichQuerySet)  # inherited by subclasses
