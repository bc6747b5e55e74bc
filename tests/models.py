"""Models shared by the test suite (registered once per process)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Literal, Optional
from uuid import UUID, uuid4

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


def every_type_sample() -> Everything:
    """An Everything with a demanding value in every field (unicode, extremes, sets)."""
    return Everything(
        s="é 漢字 🎉 \x00",
        i=-(10**37),
        f=1e-7,
        d=Decimal("-12.3400"),
        b=True,
        raw=b"\x00\x01\xfe\xff",
        when=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        day=date(2024, 2, 29),
        uid=uuid4(),
        color=Color.BLUE,
        kind="b",
        ss={"", "x"},
        ns={0, -1, 10**30},
        bs={b"\x00", b"\xff"},
        items=[1, -2, 3],
        mapping={"a": 1, "b c.d": 2},
        line=OrderLine(sku="s", qty=3, price=Decimal("0.01")),
        maybe=7,
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        blob="z" * 5000,
    )
