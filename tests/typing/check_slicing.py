"""Static typing checks of slicing: `qs[i]` is one item, `qs[a:b]` a lazy QuerySet (Self).

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from decimal import Decimal

from typing_extensions import assert_type

from dynorm import QuerySet
from dynorm.query import Request
from tests.models import Order
from tests.typing.check_managers import Ticket, TicketQuerySet


def check_slices_are_querysets() -> None:
    qs = Order.objects.filter(customer_id="c1")
    assert_type(qs[:20], QuerySet[Order])
    assert_type(qs[5:10], QuerySet[Order])
    assert_type(qs[5:], QuerySet[Order])
    assert_type(qs[:20][:5], QuerySet[Order])
    assert_type(qs[:20].explain(), list[Request])
    assert_type(qs[:20].first(), Order | None)
    assert_type(qs[:20].count(), int)
    assert_type(list(qs[:20]), list[Order])
    for order in qs[:20]:
        assert_type(order, Order)


def check_an_index_is_one_item() -> None:
    qs = Order.objects.filter(customer_id="c1")
    assert_type(qs[0], Order)
    assert_type(qs[:20][3], Order)
    assert_type(qs[0].total, Decimal)


def check_custom_querysets_slice_to_themselves() -> None:
    assert_type(Ticket.objects.open_for("ann")[:10], TicketQuerySet)
    assert_type(Ticket.objects[:10].numbers(), list[int])
    assert_type(Ticket.objects[2], Ticket)


def check_bad_keys() -> None:
    qs = Order.objects.filter(customer_id="c1")
    qs["id"]  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
