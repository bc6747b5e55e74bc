"""boto3's Table *resource* plus plain pydantic v2 models: the common hand-rolled "ORM".

Shares the "common" table with the raw client (same items). The resource serialises and
deserialises with TypeSerializer/TypeDeserializer itself; models are validated on read.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import boto3
import pydantic
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer
from common import Client, botocore_parse, iso, main
from pydantic import BaseModel

DESER = TypeDeserializer()


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


class Order(BaseModel):
    id: str
    customer_id: str
    status: Literal["open", "paid", "shipped", "cancelled"] = "open"
    total: Decimal
    created_at: datetime
    lines: list[OrderLine] = []
    tags: set[str] = set()
    shipping: Address
    note: str = ""
    version: int = 0

    def to_item(self) -> dict[str, Any]:
        item = self.model_dump()
        item["created_at"] = iso(self.created_at)
        item["version"] = self.version + 1
        item["pk"] = f"CUSTOMER#{self.customer_id}"
        item["sk"] = f"ORDER#{self.id}"
        item["_type"] = "Order"
        if not item["tags"]:
            del item["tags"]
        return item


class ResourceClient(Client):
    name = "resource_pydantic"

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        self.resource = boto3.resource("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        self.tbl = self.resource.Table(table)

    def versions(self) -> dict[str, str]:
        return {"boto3": boto3.__version__, "pydantic": pydantic.VERSION}

    def prepare_put(self, orders: list[dict[str, Any]]) -> list[Any]:
        return [Order(**o) for o in orders]

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return {"pk": f"CUSTOMER#{order['customer_id']}", "sk": f"ORDER#{order['id']}"}

    # ------------------------------------------------------------------ timed

    def put(self, obj: Order) -> None:
        self.tbl.put_item(Item=obj.to_item(), ConditionExpression=Attr("pk").not_exists())

    def get(self, key: dict[str, str]) -> Order:
        return Order.model_validate(self.tbl.get_item(Key=key)["Item"])

    def query(self, customer_id: str) -> list[Order]:
        params: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(f"CUSTOMER#{customer_id}")
            & Key("sk").begins_with("ORDER#")
        }
        out = []
        while True:
            response = self.tbl.query(**params)
            out.extend(Order.model_validate(item) for item in response["Items"])
            lek = response.get("LastEvaluatedKey")
            if not lek:
                return out
            params["ExclusiveStartKey"] = lek

    def bulk(self, objs: list[Order]) -> None:
        with self.tbl.batch_writer() as batch:
            for obj in objs:
                batch.put_item(Item=obj.to_item())

    def decode(self, body: bytes) -> list[Order]:
        # What the resource does with a Query response: botocore's parse, then
        # TypeDeserializer over every item; then the application validates its model.
        parsed = botocore_parse(body)
        return [
            Order.model_validate({k: DESER.deserialize(v) for k, v in item.items()})
            for item in parsed["Items"]
        ]


if __name__ == "__main__":
    main(ResourceClient)
