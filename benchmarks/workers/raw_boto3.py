"""The baseline: a hand-written boto3 *client* user (plain dicts, TypeSerializer/Deserializer).

It owns the "common" table (pk/sk, the same item layout dynorm writes) shared with the
Table-resource, PynamoDB and dynorm workers, seeds it, and records the 1 MB Query page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from common import (
    WARM_CUSTOMER,
    WARM_ITEMS,
    Client,
    botocore_parse,
    iso,
    main,
    make_orders,
    stream_customer,
)

SER = TypeSerializer()
DESER = TypeDeserializer()


def to_plain_item(order: dict[str, Any]) -> dict[str, Any]:
    """The stored attributes of an order (dynorm's layout), as plain Python values."""
    item = {
        "pk": f"CUSTOMER#{order['customer_id']}",
        "sk": f"ORDER#{order['id']}",
        "_type": "Order",
        "version": 1,
        **order,
        "created_at": iso(order["created_at"]),
    }
    if not item["tags"]:
        del item["tags"]  # DynamoDB refuses empty sets
    return item


class RawClient(Client):
    name = "raw_boto3"

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        # 50 pooled connections, dynorm's default, so threads never queue for a connection.
        self.client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(max_pool_connections=50),
        )

    def versions(self) -> dict[str, str]:
        return {"boto3": boto3.__version__, "botocore": botocore.__version__}

    def create_table(self) -> None:
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except self.client.exceptions.ResourceInUseException:
            pass
        self.client.get_waiter("table_exists").wait(TableName=self.table)

    def seed(self, orders: list[dict[str, Any]]) -> None:
        self.bulk(orders)

    # ------------------------------------------------------------------ timed

    def put(self, obj: dict[str, Any]) -> None:
        item = {k: SER.serialize(v) for k, v in to_plain_item(obj).items()}
        self.client.put_item(
            TableName=self.table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return (order["customer_id"], order["id"])

    def get(self, key: tuple[str, str]) -> dict[str, Any]:
        customer_id, order_id = key
        response = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"CUSTOMER#{customer_id}"}, "sk": {"S": f"ORDER#{order_id}"}},
        )
        return {k: DESER.deserialize(v) for k, v in response["Item"].items()}

    def query(self, customer_id: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"CUSTOMER#{customer_id}"},
                ":sk": {"S": "ORDER#"},
            },
        }
        out = []
        while True:
            response = self.client.query(**params)
            for item in response["Items"]:
                out.append({k: DESER.deserialize(v) for k, v in item.items()})
            lek = response.get("LastEvaluatedKey")
            if not lek:
                return out
            params["ExclusiveStartKey"] = lek

    def bulk(self, objs: list[dict[str, Any]]) -> None:
        for start in range(0, len(objs), 25):
            self._write_chunk(objs[start : start + 25])

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        requests = [
            {"PutRequest": {"Item": {k: SER.serialize(v) for k, v in to_plain_item(o).items()}}}
            for o in chunk
        ]
        pending: dict[str, Any] = {self.table: requests}
        delay = 0.05
        while pending:
            response = self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def iterate(self, customer_id: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={
                ":pk": {"S": f"CUSTOMER#{customer_id}"},
                ":sk": {"S": "ORDER#"},
            },
        )
        for page in pages:
            for item in page["Items"]:
                yield {k: DESER.deserialize(v) for k, v in item.items()}

    # ------------------------------------------------------------------ streaming setup

    def stream_setup(self, args: Any) -> dict[str, Any]:
        """Seed the streaming partition once per table: BatchWriteItem from 4 threads.

        A marker item (outside the partition) records the count once every chunk is
        written; a table that has it for this count is not seeded again, so a persistent
        endpoint pays the seeding once. The orders are the same generated orders as
        everywhere else, so every client's model reads them.
        """
        marker = {"pk": {"S": "BENCH#STREAM"}, "sk": {"S": f"SEEDED#{args.stream_items}"}}
        self.create_table()
        if "Item" in self.client.get_item(TableName=self.table, Key=marker):
            return {"items": args.stream_items, "seeded": False}
        chunk = 5000
        t0 = time.perf_counter()

        def seed_block(start: int) -> None:
            size = min(chunk, args.stream_items - start)
            orders = make_orders(f"stream{start}", stream_customer(args.stream_items), size)
            for i in range(0, size, 25):
                self._write_chunk(orders[i : i + 25])

        self.seed(make_orders("seed", WARM_CUSTOMER, WARM_ITEMS))  # each worker's warm-up
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(seed_block, range(0, args.stream_items, chunk)))
        self.client.put_item(TableName=self.table, Item=marker)
        return {
            "items": args.stream_items,
            "seeded": True,
            "seed_s": round(time.perf_counter() - t0, 1),
        }

    def decode(self, body: bytes) -> list[dict[str, Any]]:
        parsed = botocore_parse(body)
        return [{k: DESER.deserialize(v) for k, v in item.items()} for item in parsed["Items"]]


if __name__ == "__main__":
    main(RawClient)
