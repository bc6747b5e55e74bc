"""simplesingletable (its own virtualenv: its `ulid-py` clashes with dynorm's `python-ulid`).

It has its own table layout (`create_standard_dynamodb_table`: pk = sk = "Order#<id>" plus
gsitype / gsi1..3), so it gets its own table, seeded with the same orders, and its own
recorded 1 MB page. A customer's orders are found through gsi1 (gsi1pk = CUSTOMER#<id>).
`track_stats=False`: the default also reads and updates a stats item on every create
(3 requests per create); that is switched off here so the PutItem row compares one request
with one request.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from importlib.metadata import version
from typing import Any, Literal

import boto3
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from common import Client, botocore_parse, main
from pydantic import BaseModel
from simplesingletable import DynamoDbMemory, DynamoDbResource
from simplesingletable.utils import create_standard_dynamodb_table

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


class Order(DynamoDbResource):
    # resource_id (the ULID), created_at and updated_at come from DynamoDbResource.
    customer_id: str
    status: Literal["open", "paid", "shipped", "cancelled"] = "open"
    total: Decimal
    lines: list[OrderLine] = []
    tags: set[str] = set()
    shipping: Address
    note: str = ""

    def db_get_gsi1pk(self) -> str | None:
        return f"CUSTOMER#{self.customer_id}"


def _data(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k not in ("id", "created_at")}


class SSTClient(Client):
    name = "simplesingletable"
    layout = "simplesingletable"

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        logger = logging.getLogger("bench.simplesingletable")
        logger.setLevel(logging.WARNING)
        self.memory = DynamoDbMemory(
            logger=logger,
            table_name=table,
            endpoint_url=endpoint,
            connection_params={"region_name": "us-east-1"},
            track_stats=False,
        )

    def versions(self) -> dict[str, str]:
        return {
            "simplesingletable": version("simplesingletable"),
            "pydantic": version("pydantic"),
            "boto3": boto3.__version__,
        }

    def create_table(self) -> None:
        resource = boto3.resource("dynamodb", endpoint_url=self.endpoint, region_name="us-east-1")
        try:
            create_standard_dynamodb_table(self.table, resource)
        except resource.meta.client.exceptions.ResourceInUseException:
            pass

    def seed(self, orders: list[dict[str, Any]]) -> None:
        self.bulk(self.prepare_put(orders))

    def prepare_put(self, orders: list[dict[str, Any]]) -> list[Any]:
        return [(o["id"], _data(o)) for o in orders]

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return order["id"]

    # ------------------------------------------------------------------ timed

    def put(self, obj: tuple[str, dict[str, Any]]) -> None:
        order_id, data = obj
        self.memory.create_new(Order, data, override_id=order_id)

    def get(self, key: str) -> Order:
        found = self.memory.get_existing(key, Order)
        if found is None:
            raise LookupError(key)
        return found

    def query(self, customer_id: str) -> list[Order]:
        return list(
            self.memory.paginated_dynamodb_query(
                key_condition=Key("gsi1pk").eq(f"CUSTOMER#{customer_id}"),
                index_name="gsi1",
                resource_class=Order,
                results_limit=1_000_000,
                max_api_calls=10_000,
                ascending=True,
            )
        )

    def bulk(self, objs: list[tuple[str, dict[str, Any]]]) -> None:
        # No bulk-create API: the documented route is the Table resource's batch_writer with
        # the library's own item builder.
        with self.memory.dynamodb_table.batch_writer() as batch:
            for order_id, data in objs:
                batch.put_item(Item=Order.create_new(data, override_id=order_id).to_dynamodb_item())

    def decode(self, body: bytes) -> list[Order]:
        parsed = botocore_parse(body)
        return [
            Order.from_dynamodb_item({k: DESER.deserialize(v) for k, v in item.items()})
            for item in parsed["Items"]
        ]


if __name__ == "__main__":
    main(SSTClient)
