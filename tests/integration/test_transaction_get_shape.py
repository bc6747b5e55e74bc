"""transaction_get returns what its static types say: a list for a list, a tuple for a tuple."""

from __future__ import annotations

from decimal import Decimal

import dynorm
from tests.models import Counter, Customer, Order


def test_transaction_get_returns_the_container_it_was_given_in_key_order(
    dynorm_table: str,
) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ann")
    o = Order.objects.create(customer_id=c.id, total=Decimal(1))
    keys = ((Customer, {"id": c.id}), o, (Counter, {"name": "missing"}))
    as_tuple = dynorm.transaction_get(keys)
    as_list = dynorm.transaction_get(list(keys))
    assert type(as_tuple) is tuple and type(as_list) is list
    assert list(as_tuple) == as_list
    customer, order, counter = as_tuple
    assert customer == c and order is not None and order.id == o.id and counter is None
    assert dynorm.transaction_get(()) == () and dynorm.transaction_get([]) == []
