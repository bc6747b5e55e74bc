"""dynorm, through its public API only, on the "common" table (the raw client seeds it).

Query: `list(Order.objects.filter(customer_id=...))`; GetItem: `Order.objects.get(...)`;
PutItem: `obj.save()` of a new object; bulk: `Order.objects.bulk_create(objs, overwrite=True)`
(BatchWriteItem, like the raw loop; the default create-only path is conditional PutItems); decode:
`Order.from_item` over botocore-parsed items. Whatever dynorm changes inside (codec, request
path) shows up here without touching this file. `stream-setup` / `stream` measure peak RSS of
`.iterator()` against `list()` over a large partition.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import boto3
import pydantic
from common import (
    STREAM_CUSTOMER,
    Client,
    botocore_parse,
    main,
    make_orders,
    peak_rss_kib,
    rss_now_kib,
)
from pydantic import BaseModel

import dynorm
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


class DynormClient(Client):
    name = "dynorm"

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        dynorm.configure(table_name=table, endpoint_url=endpoint, region_name="us-east-1")

    def versions(self) -> dict[str, str]:
        return {
            "dynorm": dynorm.__version__,
            "pydantic": pydantic.VERSION,
            "boto3": boto3.__version__,
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

    # ------------------------------------------------------------------ streaming

    def stream_setup(self, args: Any) -> dict[str, Any]:
        have = Order.objects.filter(customer_id=STREAM_CUSTOMER).count()
        if have != args.stream_items:
            if have:
                Order.objects.filter(customer_id=STREAM_CUSTOMER).delete()
            chunk = 5000
            for start in range(0, args.stream_items, chunk):
                orders = make_orders(f"stream{start}", STREAM_CUSTOMER, chunk)
                Order.objects.bulk_create(
                    (Order(**o) for o in orders[: args.stream_items - start]), overwrite=True
                )
        return {"items": Order.objects.filter(customer_id=STREAM_CUSTOMER).count()}

    def stream_run(self, args: Any) -> dict[str, Any]:
        qs = Order.objects.filter(customer_id=STREAM_CUSTOMER)
        self.query("CWARM")  # client created, first request made
        base = rss_now_kib()
        t0, c0 = time.perf_counter(), time.process_time()
        if args.how == "iterator":
            count = 0
            for _ in qs.iterator():
                count += 1
        else:
            objs = list(qs)
            count = len(objs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = peak_rss_kib()
        return {
            "how": args.how,
            "items": count,
            "baseline_rss_mib": base / 1024,
            "peak_rss_mib": peak / 1024,
            "growth_mib": (peak - base) / 1024,
            "items_per_s": count / wall,
            "cpu_us_per_item": cpu / count * 1e6,
        }


if __name__ == "__main__":
    main(DynormClient)
