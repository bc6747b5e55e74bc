"""Static typing checks of Django's value terminals: values(), values_list(), in_bulk(), ...

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from dynorm import Count, QuerySet, Sum
from tests.models import Customer, Order
from tests.typing.check_managers import Ticket, TicketQuerySet


def check_values_are_plain_data() -> None:
    qs = Order.objects.filter(customer_id="c1")
    assert_type(qs.values("id", "total"), list[dict[str, Any]])
    assert_type(qs.values_list("id", "total"), list[tuple[Any, ...]])
    assert_type(qs.values_list("id", flat=True), list[Any])
    assert_type(qs[:5].values_list("id", flat=False), list[tuple[Any, ...]])
    flat: bool = True
    assert_type(qs.values_list("id", flat=flat), list[Any])


def check_in_bulk_and_edges_give_instances() -> None:
    assert_type(Customer.objects.in_bulk(["c1"]), dict[Any, Customer])
    assert_type(Order.objects.in_bulk([("c1", "o1")]), dict[Any, Order])
    assert_type(Order.objects.filter(customer_id="c1").latest("id"), Order)
    assert_type(Order.objects.filter(customer_id="c1").earliest("id"), Order)


def check_none_keeps_the_queryset_class() -> None:
    assert_type(Order.objects.none(), QuerySet[Order])
    assert_type(Ticket.objects.open_for("ann").none(), TicketQuerySet)


def check_aggregate_is_a_dict() -> None:
    qs = Order.objects.filter(customer_id="c1")
    assert_type(qs.aggregate(Count(), total=Sum("total")), dict[str, Any])
    qs.aggregate("total")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
