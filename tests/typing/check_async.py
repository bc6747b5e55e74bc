"""Static typing checks of the async API: each awaited call types as its sync twin.

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from decimal import Decimal

from typing_extensions import assert_type

import dynorm
from dynorm import Page, SingletonModel, VersionedModel
from tests.models import Customer, Order


class Doc(VersionedModel):
    title: str

    class Meta:
        pk = "DOC#{title}"


class Flags(SingletonModel):
    on: bool = False


async def queries() -> None:
    assert_type(await Order.objects.aget(customer_id="c", id="o"), Order)
    assert_type(await Order.objects.acreate(customer_id="c", total=Decimal(1)), Order)
    assert_type(await Order.objects.aget_or_create(customer_id="c", id="o"), tuple[Order, bool])
    assert_type(await Order.objects.aupdate_or_create(customer_id="c", id="o"), tuple[Order, bool])
    qs = Order.objects.filter(customer_id="c")
    assert_type(await qs.acount(), int)
    assert_type(await qs.aexists(), bool)
    assert_type(await qs.afirst(), Order | None)
    assert_type(await qs.alast(), Order | None)
    assert_type(await qs.apage(size=10), Page[Order])
    assert_type(await qs.aupdate(status="paid"), int)
    assert_type(await qs.adelete(), int)
    assert_type(await Order.objects.abulk_create([]), list[Order])
    assert_type(
        await Order.objects.abulk_get([{"customer_id": "c", "id": "o"}]), list[Order | None]
    )
    async for o in qs:
        assert_type(o, Order)
    async for o in qs.aiterator():
        assert_type(o, Order)
    group = await Customer.objects.filter(id="c").include(Order).aload()
    assert_type(group.of(Order), list[Order])


async def instances(o: Order, d: Doc) -> None:
    assert_type(await o.asave(), None)
    assert_type(await o.aupdate(total=1), None)
    assert_type(await o.adelete(), None)
    assert_type(await o.arefresh_from_db(), None)
    assert_type(await d.ahistory(), list[Doc])
    assert_type(await d.arevert(1), None)
    assert_type(await Flags.aload(), Flags)


async def transactions(o: Order, c: Customer) -> None:
    async with dynorm.atransaction() as tx:
        assert_type(tx, dynorm.Transaction)
    got = await dynorm.atransaction_get(((Order, {"customer_id": "c", "id": "o"}), c))
    assert_type(got, tuple[Order | None, Customer | None])
    await o.asave(wrong=1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
