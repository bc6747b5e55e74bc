"""PynamoDB 6 models of the "common" table's orders (shared by its worker and its cold start).

Decimal and dynorm's fixed-width ISO timestamps need two small custom attributes; everything
else is stock PynamoDB.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.constants import NUMBER, STRING
from pynamodb.models import Model


def iso(dt: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds (dynorm's stored form)."""
    v = dt.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}Z"


class DecimalAttribute(Attribute[Decimal]):
    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class IsoDateTimeAttribute(Attribute[datetime]):
    attr_type = STRING

    def serialize(self, value: datetime) -> str:
        return iso(value)

    def deserialize(self, value: str) -> datetime:
        return datetime.fromisoformat(value)


class OrderLine(MapAttribute[str, Any]):
    sku = UnicodeAttribute()
    name = UnicodeAttribute()
    qty = NumberAttribute()
    price = DecimalAttribute()


class Address(MapAttribute[str, Any]):
    name = UnicodeAttribute()
    street = UnicodeAttribute()
    city = UnicodeAttribute()
    postcode = UnicodeAttribute()
    country = UnicodeAttribute()


class Order(Model):
    class Meta:
        table_name = "set-at-runtime"
        host: str | None = None
        region = "us-east-1"
        aws_access_key_id = "bench"
        aws_secret_access_key = "bench"
        # dynorm's default, so that 16 threads never queue for a connection.
        max_pool_connections = 50

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type_ = UnicodeAttribute(attr_name="_type", default="Order")
    version = VersionAttribute()
    id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    status = UnicodeAttribute(default="open")
    total = DecimalAttribute()
    created_at = IsoDateTimeAttribute()
    lines = ListAttribute(of=OrderLine, default=list)
    tags = UnicodeSetAttribute(default=set)
    shipping = Address()
    note = UnicodeAttribute(default="")
