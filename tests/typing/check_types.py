"""Static typing checks (mypy --strict and pyright): `assert_type` without a plugin.

This file is type-checked, never run: `make typecheck` runs mypy and pyright on it.
"""

from __future__ import annotations

from decimal import Decimal

from typing_extensions import assert_type

from dynorm import Collection, Page, QuerySet
from tests.models import Customer, Order


def check_manager_and_queryset() -> None:
    assert_type(Order.objects, QuerySet[Order])
    assert_type(Order.objects.filter(customer_id="c1"), QuerySet[Order])
    assert_type(
        Order.objects.using_gsi("by_status").filter(status="open").order_by("-created_at"),
        QuerySet[Order],
    )
    assert_type(Order.objects.get(customer_id="c1", id="o1"), Order)
    assert_type(Order.objects.filter(customer_id="c1").first(), Order | None)
    assert_type(Order.objects.filter(customer_id="c1").last(), Order | None)
    assert_type(Order.objects.filter(customer_id="c1")[:20], QuerySet[Order])
    assert_type(Order.objects.filter(customer_id="c1")[0], Order)
    assert_type(Order.objects.filter(customer_id="c1").count(), int)
    assert_type(Order.objects.filter(customer_id="c1").exists(), bool)
    assert_type(Order.objects.filter(customer_id="c1").page(size=20), Page[Order])
    assert_type(Order.objects.filter(customer_id="c1").page(size=20).items, list[Order])
    assert_type(Order.objects.create(customer_id="c1", total=Decimal(1)), Order)
    assert_type(Order.objects.get_or_create(customer_id="c1", id="x"), tuple[Order, bool])
    assert_type(Order.objects.bulk_get([{"customer_id": "c1", "id": "x"}]), list[Order | None])
    for order in Order.objects.filter(customer_id="c1"):
        assert_type(order, Order)
    for streamed in Order.objects.filter(customer_id="c1").iterator():
        assert_type(streamed, Order)


def check_collections() -> None:
    group = Customer.objects.filter(id="c1").include(Order)
    assert_type(group, Collection)
    assert_type(group.one(Customer), Customer)
    assert_type(group.of(Order), list[Order])


def check_instances() -> None:
    o = Order(customer_id="c1", total=Decimal(1))
    assert_type(o.version, int)
    assert_type(o.dynamo_key, dict[str, str])
    assert_type(Order.from_item({}), Order)
