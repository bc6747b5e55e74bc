"""Models shared by the test suite (registered once per process)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Literal, Optional
from uuid import UUID

from pydantic import BaseModel

from dynorm import Index, Model, fields


class OrderLine(BaseModel):
    sku: str
    qty: int
    price: Decimal


class Address(BaseModel):
    city: str
    zip: str | None = None


class Customer(Model):
    id: str = fields.ULID()
    email: str
    name: str
    address: Address | None = None
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
    note: str | None = None
    created_at: datetime = fields.CreatedAt()

    class Meta:
        pk = "CUSTOMER#{customer_id}"
        sk = "ORDER#{id}"
        indexes = [Index("by_status", pk="STATUS#{status}", sk="{created_at}")]


class Counter(Model):
    name: str
    value: int = 0

    class Meta:
        pk = "COUNTER#{name}"


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Everything(Model):
    """One field of every supported type, for codec round trips."""

    id: str = fields.ULID()
    s: str = ""
    i: int = 0
    f: float = 0.0
    d: Decimal = Decimal(0)
    b: bool = False
    raw: bytes = b""
    when: datetime | None = None
    day: date | None = None
    uid: UUID | None = None
    color: Color = Color.RED
    kind: Literal["a", "b"] = "a"
    ss: set[str] = set()
    ns: set[int] = set()
    bs: set[bytes] = set()
    items: list[int] = []
    mapping: dict[str, int] = {}
    line: OrderLine | None = None
    maybe: Optional[int] = None  # noqa: UP045 - Optional on purpose
    expires: datetime | None = fields.TTL()
    blob: str = fields.Compressed(default="")

    class Meta:
        pk = "EVERY#{id}"


class Event(Model):
    """Numbered events in one stream: a numeric sort key with a fixed-width format."""

    stream: str
    seq: int
    body: str = ""

    class Meta:
        pk = "STREAM#{stream}"
        sk = "EVENT#{seq:010d}"
