"""Django's other QuerySet methods on DynamoDB Local: each compiled, none a silent scan.

values(), values_list(), in_bulk(), none(), latest()/earliest(), Meta.ordering, aggregate().
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dynorm
from dynorm import Avg, ConfigurationError, Count, Max, Min, Model, QueryError, Sum
from tests.models import Customer, Event, Order, OrderLine
from tests.reliability.helpers import Faults

Sent = list[tuple[str, dict[str, Any]]]
FIXTURE = HealthCheck.function_scoped_fixture


class Message(Model):
    """Messages of a thread, read newest first by default (Meta.ordering)."""

    thread: str
    seq: int
    text: str = ""

    class Meta:
        pk = "THREAD#{thread}"
        sk = "MSG#{seq:08d}"
        ordering = ["-seq"]


@pytest.fixture
def requests(dynorm_table: str) -> Iterator[Sent]:
    """Every request that reaches botocore (whatever dynorm path sent it)."""
    sent: Sent = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"
        sent.append((model.name, json.loads(body) if isinstance(body, bytes) else body))

    faults = Faults()
    faults.on("before-call.dynamodb", record, must_fire=False)  # an observer
    yield sent
    faults.clear()


def _orders(customer: str, totals: list[Decimal]) -> list[Order]:
    return Order.objects.bulk_create(
        [
            Order(
                customer_id=customer,
                total=t,
                status="paid" if i % 2 else "open",
                lines=[OrderLine(sku=f"s{i}", qty=i, price=t)],
                tags={f"t{i}"},
            )
            for i, t in enumerate(totals)
        ]
    )


# --------------------------------------------------------------------------- values


def test_values_are_dicts_of_typed_field_values_read_with_a_projection(
    dynorm_table: str, requests: Sent
) -> None:
    stored = _orders("c1", [Decimal("1.50"), Decimal(2), Decimal("3.25")])
    requests.clear()
    rows = Order.objects.filter(customer_id="c1").values("id", "total", "created_at", "lines")
    assert rows == [
        {"id": o.id, "total": o.total, "created_at": o.created_at, "lines": o.lines}
        for o in sorted(stored, key=lambda o: o.id)
    ]
    assert all(type(r) is dict for r in rows)
    assert all(isinstance(r["created_at"], datetime) for r in rows)
    assert all(isinstance(r["lines"][0], OrderLine) for r in rows)
    ((operation, params),) = requests
    assert operation == "Query"
    projected = {params["ExpressionAttributeNames"][n.strip()] for n in
                 params["ProjectionExpression"].split(",")}
    assert {"id", "total", "created_at", "lines"} <= projected
    assert "status" not in projected and "tags" not in projected


def test_values_without_fields_are_every_field_of_the_instance(dynorm_table: str) -> None:
    (order,) = _orders("c1", [Decimal(7)])
    (row,) = Order.objects.filter(customer_id="c1").values()
    assert row == {name: getattr(order, name) for name in Order.model_fields}  # as on instances


def test_values_list_gives_tuples_and_flat_gives_values(dynorm_table: str) -> None:
    stored = sorted(_orders("c1", [Decimal(1), Decimal(2)]), key=lambda o: o.id)
    qs = Order.objects.filter(customer_id="c1")
    assert qs.values_list("id", "status") == [(o.id, o.status) for o in stored]
    assert qs.values_list("total", flat=True) == [o.total for o in stored]
    assert qs.order_by("-id").values_list("id", flat=True) == [o.id for o in stored[::-1]]
    with pytest.raises(QueryError, match="exactly one"):
        qs.values_list("id", "total", flat=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[FIXTURE])
@given(start=st.integers(0, 6), stop=st.one_of(st.none(), st.integers(0, 6)))
def test_values_of_a_slice_are_the_sliced_rows(
    dynorm_table: str, start: int, stop: int | None
) -> None:
    if not Order.objects.filter(customer_id="cs").exists():
        _orders("cs", [Decimal(i) for i in range(5)])
    qs = Order.objects.filter(customer_id="cs")
    ids = [o.id for o in qs]
    assert qs[start:stop].values_list("id", flat=True) == ids[start:stop]
    assert [r["id"] for r in qs[start:stop].values("id")] == ids[start:stop]


def test_values_of_a_slice_send_a_limit(dynorm_table: str, requests: Sent) -> None:
    _orders("c1", [Decimal(i) for i in range(5)])
    requests.clear()
    Order.objects.filter(customer_id="c1")[:2].values("id")
    ((_, params),) = requests
    assert params["Limit"] == 2


def test_values_never_scan_silently(dynorm_table: str, requests: Sent) -> None:
    requests.clear()
    with pytest.raises(QueryError, match="scan"):
        Order.objects.filter(total=1).values("id")
    with pytest.raises(QueryError, match="scan"):
        Order.objects.filter(total=1).values_list("id", flat=True)
    with pytest.raises(QueryError, match="scan"):
        Order.objects.filter(total=1).aggregate(Sum("total"))
    with pytest.raises(QueryError, match="no such field"):
        Order.objects.filter(customer_id="c1").values("totl")
    assert requests == []


def test_values_read_only_their_entity_type(dynorm_table: str) -> None:
    """A Customer shares Order's partition: values() of orders never includes it."""
    Customer.objects.create(id="c1", email="a@example.com", name="Ada")
    _orders("c1", [Decimal(1)])
    assert len(Order.objects.filter(customer_id="c1").values("id")) == 1
    assert Customer.objects.filter(id="c1").values_list("name", flat=True) == ["Ada"]


# --------------------------------------------------------------------------- in_bulk


def test_in_bulk_maps_each_existing_key_to_its_object(dynorm_table: str, requests: Sent) -> None:
    stored = _orders("c1", [Decimal(1), Decimal(2), Decimal(3)])
    requests.clear()
    got = Order.objects.in_bulk([("c1", o.id) for o in stored] + [("c1", "missing")])
    assert got == {("c1", o.id): o for o in stored}
    assert [op for op, _ in requests] == ["BatchGetItem"]
    by_mapping = Order.objects.in_bulk([{"customer_id": "c1", "id": stored[0].id}])
    assert by_mapping == {("c1", stored[0].id): stored[0]}


def test_in_bulk_of_a_one_field_key_is_keyed_by_that_value(dynorm_table: str) -> None:
    ada = Customer.objects.create(email="a@example.com", name="Ada")
    assert Customer.objects.in_bulk([ada.id, "nobody"]) == {ada.id: ada}


def test_in_bulk_of_no_keys_sends_nothing(dynorm_table: str, requests: Sent) -> None:
    requests.clear()
    assert Customer.objects.in_bulk([]) == {}
    assert requests == []


def test_in_bulk_refuses_a_filtered_queryset(dynorm_table: str, requests: Sent) -> None:
    requests.clear()
    with pytest.raises(QueryError, match="primary key only"):
        Order.objects.filter(customer_id="c1", status="paid").in_bulk([("c1", "x")])
    with pytest.raises(QueryError, match="tuples of its key fields"):
        Order.objects.in_bulk(["x"])
    assert requests == []


# --------------------------------------------------------------------------- none


def test_none_sends_nothing(dynorm_table: str, requests: Sent) -> None:
    _orders("c1", [Decimal(1)])
    requests.clear()
    qs = Order.objects.filter(customer_id="c1").none()
    assert list(qs) == [] and qs.count() == 0 and not qs.exists() and qs.first() is None
    assert qs.explain() == []
    assert qs.filter(status="open").count() == 0
    assert qs.values("id") == [] and qs.values_list("id", flat=True) == []
    assert qs.aggregate(Sum("total"), Count()) == {"total__sum": None, "count": 0}
    assert qs.in_bulk([("c1", "x")]) == {}
    page = qs.page(size=5)
    assert page.items == [] and page.next_cursor is None
    assert qs.update(status="paid") == 0 and qs.delete() == 0
    assert Order.objects.none().delete() == 0
    with pytest.raises(Order.DoesNotExist):
        qs.get()
    assert requests == []
    assert Order.objects.filter(customer_id="c1").count() == 1  # nothing was changed


# --------------------------------------------------------------------------- latest / earliest


def test_latest_and_earliest_are_one_query_with_a_limit(dynorm_table: str, requests: Sent) -> None:
    for seq in (5, 1, 9, 3):
        Event.objects.create(stream="s", seq=seq)
    requests.clear()
    qs = Event.objects.filter(stream="s")
    assert qs.latest("seq").seq == 9
    assert qs.earliest("seq").seq == 1
    (_, latest), (_, earliest) = requests
    assert latest["Limit"] == 1 and latest["ScanIndexForward"] is False
    assert earliest["Limit"] == 1 and "ScanIndexForward" not in earliest


def test_latest_of_nothing_raises_does_not_exist(dynorm_table: str) -> None:
    with pytest.raises(Event.DoesNotExist):
        Event.objects.filter(stream="empty").latest("seq")


def test_latest_on_a_field_outside_the_sort_key_names_the_fix(
    dynorm_table: str, requests: Sent
) -> None:
    requests.clear()
    with pytest.raises(QueryError, match=r"using_gsi\('by_status'\)") as on_index:
        Order.objects.filter(customer_id="c1").latest("created_at")
    with pytest.raises(QueryError, match=r"Max\('total'\)") as on_total:
        Order.objects.filter(customer_id="c1").earliest("total")
    assert "c1" not in str(on_index.value) and "c1" not in str(on_total.value)
    assert requests == []
    # Through the index whose sort key holds it, latest() works.
    old, new = _orders("c2", [Decimal(1), Decimal(2)])
    assert Order.objects.using_gsi("by_status").filter(status="open").latest("created_at") == old


# --------------------------------------------------------------------------- Meta.ordering


def test_meta_ordering_sets_the_default_direction(dynorm_table: str, requests: Sent) -> None:
    for seq in (2, 3, 1):
        Message.objects.create(thread="t", seq=seq)
    qs = Message.objects.filter(thread="t")
    assert [m.seq for m in qs] == [3, 2, 1]
    assert [m.seq for m in qs.reverse()] == [1, 2, 3]
    assert [m.seq for m in qs.order_by("seq")] == [1, 2, 3]
    assert [m.seq for m in qs.order_by("-seq")] == [3, 2, 1]
    assert qs.first().seq == 3 and qs.last().seq == 1  # type: ignore[union-attr]
    assert qs.explain()[0].params["ScanIndexForward"] is False
    assert "ScanIndexForward" not in Order.objects.filter(customer_id="c").explain()[0].params
    page = qs.page(size=2)
    assert [m.seq for m in page.items] == [3, 2]
    assert [m.seq for m in qs.page(size=2, cursor=page.next_cursor).items] == [1]


def test_meta_ordering_must_name_one_sort_key_field() -> None:
    with pytest.raises(ConfigurationError, match="no sort key"):

        class Bad(Model):
            thread: str
            text: str

            class Meta:
                pk = "T#{thread}"
                ordering = ["-text"]

    with pytest.raises(ConfigurationError, match="one sort-key field"):

        class Worse(Model):
            thread: str
            seq: int

            class Meta:
                pk = "T#{thread}"
                sk = "{seq:08d}"
                ordering = ["-seq", "thread"]


# --------------------------------------------------------------------------- aggregate


@settings(max_examples=6, deadline=None, suppress_health_check=[FIXTURE])
@given(
    totals=st.lists(
        st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False), max_size=8
    )
)
def test_aggregate_equals_python_over_every_match(
    dynorm_table: str, totals: list[Decimal]
) -> None:
    customer = uuid.uuid4().hex
    _orders(customer, totals)
    got = Order.objects.filter(customer_id=customer).aggregate(
        Count(), Sum("total"), Min("total"), Max("total"), Avg("total"), n=Count("note")
    )
    assert got == {
        "count": len(totals),
        "total__sum": sum(totals) if totals else None,
        "total__min": min(totals) if totals else None,
        "total__max": max(totals) if totals else None,
        "total__avg": sum(totals) / len(totals) if totals else None,
        "n": 0,
    }


def test_aggregate_reads_only_the_fields_it_needs(dynorm_table: str, requests: Sent) -> None:
    _orders("c1", [Decimal(1), Decimal(2)])
    Customer.objects.create(id="c1", email="a@example.com", name="Ada")
    requests.clear()
    got = Order.objects.filter(customer_id="c1").aggregate(Sum("total"), Max("created_at"))
    assert got["total__sum"] == 3
    ((operation, params),) = requests
    assert operation == "Query"
    projected = {params["ExpressionAttributeNames"][n.strip()] for n in
                 params["ProjectionExpression"].split(",")}
    assert {"total", "created_at"} <= projected and "lines" not in projected


def test_aggregate_count_alone_is_select_count(dynorm_table: str, requests: Sent) -> None:
    _orders("c1", [Decimal(1), Decimal(2), Decimal(3)])
    requests.clear()
    assert Order.objects.filter(customer_id="c1").aggregate(Count()) == {"count": 3}
    assert Order.objects.filter(customer_id="c1").aggregate(n=Count()) == {"n": 3}
    assert [p.get("Select") for _, p in requests] == ["COUNT", "COUNT"]


def test_aggregate_refuses_what_it_cannot_compute(dynorm_table: str, requests: Sent) -> None:
    qs = Order.objects.filter(customer_id="c1")
    requests.clear()
    with pytest.raises(QueryError, match="not a number field"):
        qs.aggregate(Sum("status"))
    with pytest.raises(QueryError, match="no order"):
        qs.aggregate(Max("tags"))
    with pytest.raises(QueryError, match="no such field"):
        qs.aggregate(Avg("totl"))
    with pytest.raises(QueryError, match="twice"):
        qs.aggregate(Sum("total"), Sum("total"))
    with pytest.raises(QueryError, match="without a field"):
        qs.aggregate(Sum())
    with pytest.raises(TypeError):
        bool(Count())
    assert requests == []


def test_aggregate_of_a_scan_is_explicit(dynorm_table: str) -> None:
    _orders("c1", [Decimal(1)])
    _orders("c2", [Decimal(2)])
    assert Order.objects.scan().aggregate(Sum("total")) == {"total__sum": 3}
    assert dynorm.Count().default_alias == "count"
