"""pydynox 1.8 models of the "common" table's orders (shared by its worker and its cold start).

Stock pydynox attributes, except one tiny custom attribute for dynorm's fixed-width ISO
timestamps (pydynox's `DatetimeAttribute` writes `datetime.isoformat()`, another string).
Line items are a plain `ListAttribute` (pydynox has no typed list of maps): they come back as
dicts, with the numbers inside as pydynox's direct decoding gives them. The address is a
`MapAttribute` over a dataclass, as pydynox's docs show.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

from pydynox import DynamoDBClient, Model, ModelConfig
from pydynox.attributes import (
    Attribute,
    DecimalAttribute,
    ListAttribute,
    MapAttribute,
    StringAttribute,
    StringSetAttribute,
    VersionAttribute,
)


def iso(dt: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds (dynorm's stored form)."""
    v = dt.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}Z"


class IsoDatetimeAttribute(Attribute[datetime]):
    attr_type = "S"

    def serialize(self, value: datetime | None) -> str | None:
        return None if value is None else iso(value)

    def deserialize(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


@dataclasses.dataclass
class Address:
    name: str
    street: str
    city: str
    postcode: str
    country: str


class Order(Model):
    model_config = ModelConfig(table="set-at-runtime")

    pk = StringAttribute(partition_key=True)
    sk = StringAttribute(sort_key=True)
    type_ = StringAttribute(alias="_type", default="Order")
    version = VersionAttribute()
    id = StringAttribute()
    customer_id = StringAttribute()
    status = StringAttribute(default="open")
    total = DecimalAttribute()
    created_at = IsoDatetimeAttribute()
    lines = ListAttribute()
    tags = StringSetAttribute()
    shipping = MapAttribute(Address)
    note = StringAttribute(default="")


def connect(endpoint: str, table: str) -> Any:
    """One pydynox client for the endpoint, given to the model with its table."""
    client = DynamoDBClient(
        region="us-east-1", endpoint_url=endpoint, access_key="bench", secret_key="bench"
    )
    Order.model_config = ModelConfig(table=table, client=client)
    return client
