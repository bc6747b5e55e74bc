"""dynorm's Order model of the "common" table (shared by its worker and its cold start)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from dynorm import Model, fields


class OrderLine(BaseModel):
    sku: str
    name: str
    qty: int
    price: Decimal


class Address(BaseModel):
    name: str
    street: str
    city: str
    postcode: str
    country: str


class Order(Model):
    id: str = fields.ULID()
    customer_id: str
    status: Literal["open", "paid", "shipped", "cancelled"] = "open"
    total: Decimal
    created_at: datetime = fields.CreatedAt()
    lines: list[OrderLine] = []
    tags: set[str] = set()
    shipping: Address
    note: str = ""

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{id}"
