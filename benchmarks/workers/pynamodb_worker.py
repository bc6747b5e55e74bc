"""PynamoDB 6 (its own virtualenv), on the "common" table: the same items as raw boto3/dynorm.

`VersionAttribute` gives the same semantics as dynorm's save() of a new object (a PutItem
conditional on the item not existing, version 1). The models (`pynamodb_models.py`) need two
small custom attributes (Decimal, dynorm's ISO timestamps); everything else is stock PynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore
import pynamodb
from common import Client, botocore_parse, main
from pynamodb_models import Address, Order, OrderLine


class PynamoClient(Client):
    name = "pynamodb"

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        Order.Meta.host = endpoint
        Order.Meta.table_name = table

    def versions(self) -> dict[str, str]:
        return {"pynamodb": pynamodb.__version__, "botocore": botocore.__version__}

    def prepare_put(self, orders: list[dict[str, Any]]) -> list[Any]:
        out = []
        for o in orders:
            out.append(
                Order(
                    pk=f"CUSTOMER#{o['customer_id']}",
                    sk=f"ORDER#{o['id']}",
                    id=o["id"],
                    customer_id=o["customer_id"],
                    status=o["status"],
                    total=o["total"],
                    created_at=o["created_at"],
                    lines=[OrderLine(**line) for line in o["lines"]],
                    tags=set(o["tags"]),
                    shipping=Address(**o["shipping"]),
                    note=o["note"],
                )
            )
        return out

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return (f"CUSTOMER#{order['customer_id']}", f"ORDER#{order['id']}")

    # ------------------------------------------------------------------ timed

    def put(self, obj: Order) -> None:
        obj.save()

    def get(self, key: tuple[str, str]) -> Order:
        return Order.get(*key)

    def query(self, customer_id: str) -> list[Order]:
        return list(Order.query(f"CUSTOMER#{customer_id}", Order.sk.startswith("ORDER#")))

    def bulk(self, objs: list[Order]) -> None:
        with Order.batch_write() as batch:
            for obj in objs:
                batch.save(obj)

    def decode(self, body: bytes) -> list[Order]:
        parsed = botocore_parse(body)
        return [Order.from_raw_data(item) for item in parsed["Items"]]

    def iterate(self, customer_id: str) -> Iterator[Order]:
        return iter(Order.query(f"CUSTOMER#{customer_id}", Order.sk.startswith("ORDER#")))


if __name__ == "__main__":
    main(PynamoClient)
