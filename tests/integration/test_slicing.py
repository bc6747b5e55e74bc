"""Slicing on DynamoDB Local: `qs[a:b]` is a lazy QuerySet reading what the sliced list holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dynorm import QuerySet
from dynorm.exceptions import QueryError
from tests.models import Order
from tests.reliability.helpers import Faults

N = 12
bounds = st.one_of(st.none(), st.integers(min_value=0, max_value=N + 2))


@pytest.fixture
def requests(dynorm_table: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every request that reaches botocore (whatever dynorm path sent it)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"  # dynorm sends its own JSON bodies
        sent.append((model.name, json.loads(body) if isinstance(body, bytes) else body))

    faults = Faults()
    faults.on("before-call.dynamodb", record, must_fire=False)  # an observer
    yield sent
    faults.clear()


@pytest.fixture
def stored(dynorm_table: str) -> list[Order]:
    """N orders of one customer, every other one paid, in sort-key order."""
    objs = []
    for i in range(N):
        o = Order(id=f"A{i:03d}", customer_id="c1", total=Decimal(i))
        o.status = "paid" if i % 2 else "open"
        o.save()
        objs.append(o)
    return objs


@pytest.fixture
def small_pages(dynorm_table: str) -> Iterator[None]:
    """Pages of 3 evaluated items, so that slices span pages (and filtered pages are short)."""

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3

    faults = Faults()
    faults.on("before-parameter-build.dynamodb.Query", limit)
    yield
    faults.clear()
    faults.check_fired()


def _ids(orders: Any) -> list[str]:
    return [o.id for o in orders]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    outer=st.tuples(bounds, bounds),
    inner=st.tuples(bounds, bounds),
    index=st.integers(min_value=0, max_value=N),
    filtered=st.booleans(),
)
def test_a_slice_reads_the_items_the_sliced_list_holds(
    stored: list[Order],
    small_pages: None,
    outer: tuple[int | None, int | None],
    inner: tuple[int | None, int | None],
    index: int,
    filtered: bool,
) -> None:
    base = Order.objects.filter(customer_id="c1")
    if filtered:
        base = base.filter(status="paid")
    whole = _ids(base)
    expected = whole[outer[0] : outer[1]]
    sliced = base[outer[0] : outer[1]]
    assert isinstance(sliced, QuerySet)
    assert _ids(sliced) == expected
    assert _ids(base[outer[0] : outer[1]][inner[0] : inner[1]]) == expected[inner[0] : inner[1]]
    assert base[outer[0] : outer[1]].count() == len(expected)
    assert base[outer[0] : outer[1]].exists() == bool(expected)
    first = base[outer[0] : outer[1]].first()
    assert (first.id if first else None) == (expected[0] if expected else None)
    if index < len(expected):
        assert base[outer[0] : outer[1]][index].id == expected[index]
    else:
        with pytest.raises(IndexError):
            base[outer[0] : outer[1]][index]


def test_a_slice_sends_nothing_until_read_then_one_limited_query(
    stored: list[Order], requests: list[tuple[str, dict[str, Any]]]
) -> None:
    sliced = Order.objects.filter(customer_id="c1")[:5]
    assert isinstance(sliced, QuerySet) and requests == []
    assert sliced.explain()[0].params["Limit"] == 5 and requests == []
    assert _ids(sliced) == [o.id for o in stored[:5]]
    assert [(op, body.get("Limit")) for op, body in requests] == [("Query", 5)]
    assert len(sliced) == 5 and requests[1:] == []  # cached on the sliced QuerySet


def test_slicing_a_read_queryset_sends_nothing(
    stored: list[Order], requests: list[tuple[str, dict[str, Any]]]
) -> None:
    qs = Order.objects.filter(customer_id="c1")
    whole = list(qs)
    sent = len(requests)
    assert _ids(qs[3:7]) == _ids(whole[3:7]) and qs[3:7].count() == 4 and qs[2].id == whole[2].id
    assert len(requests) == sent


def test_explain_of_a_slice_shows_the_limit_it_sends(dynorm_table: str) -> None:
    qs = Order.objects.filter(customer_id="c1")
    assert "Limit" not in qs.explain()[0].params
    assert qs[2:7].explain()[0].params["Limit"] == 7  # reads 7, drops 2
    assert "Limit" not in qs[2:].explain()[0].params  # no end: pages by size
    # With a filter, DynamoDB's Limit counts unmatched items too: none is sent.
    assert "Limit" not in qs.filter(status="paid")[:5].explain()[0].params


def test_a_sliced_queryset_refuses_to_be_refined(stored: list[Order]) -> None:
    sliced = Order.objects.filter(customer_id="c1")[:3]
    refinements = {
        "filter": lambda: sliced.filter(status="paid"),
        "exclude": lambda: sliced.exclude(status="paid"),
        "order_by": lambda: sliced.order_by("-id"),
        "reverse": sliced.reverse,
        "last": sliced.last,
        "using_gsi": lambda: sliced.using_gsi("by_status"),
        "scan": sliced.scan,
        "get with lookups": lambda: sliced.get(id="A000"),
    }
    for name, refine in refinements.items():
        with pytest.raises(QueryError) as info:
            refine()
        assert info.value.code == "bad-query", name
        assert "sliced QuerySet of Order" in str(info.value) and "slice last" in str(info.value)
    # Loading options keep the slice: they change how items load, not which.
    assert _ids(sliced.only("id", "customer_id")) == _ids(sliced) == ["A000", "A001", "A002"]
    assert _ids(sliced.consistent()) == _ids(sliced)


def test_bulk_writes_on_a_slice_are_refused_and_touch_nothing(stored: list[Order]) -> None:
    sliced = Order.objects.filter(customer_id="c1")[:2]
    for action, call in (
        ("delete", sliced.delete),
        ("update", lambda: sliced.update(note="x")),
        ("page", lambda: sliced.page(size=2)),
    ):
        with pytest.raises(QueryError) as info:
            call()
        message = str(info.value)
        assert info.value.code == "bad-query"
        assert f"Cannot {action} a sliced QuerySet of Order" in message
    assert Order.objects.filter(customer_id="c1").count() == N
    assert all(o.note is None for o in Order.objects.filter(customer_id="c1"))


def test_get_on_a_slice_reads_within_the_slice(stored: list[Order]) -> None:
    one = Order.objects.filter(customer_id="c1", id="A004")
    assert one[:1].get().id == "A004"
    with pytest.raises(Order.DoesNotExist):
        one[1:].get()  # the whole key names one item, but the slice skips it
    assert Order.objects.filter(customer_id="c1")[4:5].get().id == "A004"
    with pytest.raises(Order.MultipleObjectsReturned):
        Order.objects.filter(customer_id="c1")[4:6].get()


def test_bad_slices_are_refused(dynorm_table: str) -> None:
    qs = Order.objects.filter(customer_id="c1")
    for bad in (slice(-1, None), slice(None, -2), slice(0, 4, 2)):
        with pytest.raises(QueryError):
            qs[bad]
    with pytest.raises(TypeError):
        qs["a":"b"]
