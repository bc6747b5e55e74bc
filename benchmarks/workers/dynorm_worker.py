"""dynorm, through its public API only, on the "common" table (the raw client seeds it).

Query: `list(Order.objects.filter(customer_id=...))`; GetItem: `Order.objects.get(...)`;
PutItem: `obj.save()` of a new object; bulk: `Order.objects.bulk_create(objs, overwrite=True)`
(BatchWriteItem, like the raw loop; the default create-only path is conditional PutItems); decode:
`Order.from_item` over botocore-parsed items; streaming: `.iterator()`. Whatever dynorm changes
inside (codec, request path) shows up here without touching this file. `--transport http` runs
the same works on dynorm's lean request path (`configure(transport="http")`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pydantic
from common import Client, botocore_parse, main
from dynorm_models import Order

import dynorm


class DynormClient(Client):
    name = "dynorm"

    def __init__(self, endpoint: str, table: str, transport: str = "boto3") -> None:
        super().__init__(endpoint, table)
        self.transport = transport
        if transport == "http":
            self.name = "dynorm_http"  # its own new orders to write, not dynorm's
            self.unsupported = {
                "replay": "the replay answers at botocore's `Endpoint._send`, which the http "
                "transport does not use"
            }
        dynorm.configure(
            table_name=table, endpoint_url=endpoint, region_name="us-east-1", transport=transport
        )

    def versions(self) -> dict[str, str]:
        return {
            "dynorm": dynorm.__version__,
            "pydantic": pydantic.VERSION,
            "boto3": boto3.__version__,
            "transport": self.transport,
        }

    def prepare_put(self, orders: list[dict[str, Any]]) -> list[Any]:
        return [Order(**o) for o in orders]

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return {"customer_id": order["customer_id"], "id": order["id"]}

    # ------------------------------------------------------------------ timed

    def put(self, obj: Order) -> None:
        obj.save()

    def get(self, key: dict[str, str]) -> Order:
        return Order.objects.get(**key)

    def query(self, customer_id: str) -> list[Order]:
        return list(Order.objects.filter(customer_id=customer_id))

    def bulk(self, objs: list[Order]) -> None:
        Order.objects.bulk_create(objs, overwrite=True)

    def decode(self, body: bytes) -> list[Order]:
        # dynorm's own read path: its botocore hook hands it the raw body, which it loads
        # with json and turns into models with from_item (public: it takes DynamoDB JSON).
        return [Order.from_item(item) for item in json.loads(body)["Items"]]

    def decode_botocore(self, body: bytes) -> list[Order]:
        # from_item over items botocore's parser produced (the path before the raw-body hook).
        return [Order.from_item(item) for item in botocore_parse(body)["Items"]]

    def iterate(self, customer_id: str) -> Iterator[Order]:
        return Order.objects.filter(customer_id=customer_id).iterator()


if __name__ == "__main__":
    main(DynormClient)
