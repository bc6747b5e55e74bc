from decimal import Decimal

from tests.models import Customer, Order


def test_create_get(dynorm_table: str) -> None:
    c = Customer.objects.create(email="a@example.com", name="Ada")
    assert c.version == 1
    got = Customer.objects.get(id=c.id)
    assert got == c
    o = Order.objects.create(customer_id=c.id, total=Decimal("12.50"), tags={"x"})
    assert list(Order.objects.filter(customer_id=c.id)) == [o]
    group = Customer.objects.filter(id=c.id).include(Order)
    assert group.one(Customer) == c and group.of(Order) == [o]
