"""pydynox 1.8 (Rust core; its own virtualenv) on the "common" table: the same items as the rest.

Its idiomatic sync API: GetItem `Order.sync_get(pk=..., sk=...)`; PutItem `obj.sync_save()` of
a new object (its `VersionAttribute` makes that a PutItem conditional on the version not
existing, as PynamoDB's and dynorm's); Query `list(Order.sync_query(partition_key=...,
sort_key_condition=Order.sk.begins_with("ORDER#")))`, which pages by itself; bulk write its
`SyncBatchWriter` with each model's `to_dict()` (pydynox has no model-level batch write);
streaming: iterating `Order.sync_query(...)` (page by page).

pydynox sends its requests from Rust (its own HTTP client and SigV4 signer, not botocore nor
`http.client`), so the replay work (which answers at botocore's `Endpoint._send`) has no
equivalent, and requests per operation cannot be counted at `http.client` level. The decode
work uses the decoder its own reads use: `pydynox_core.item_from_dynamo` with the model's
number schema (so `DecimalAttribute` fields come back exact), then `Order.from_dict`; the JSON
itself is parsed by Python's `json` here, where pydynox's reads parse it in Rust.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pydynox
from common import Client, main
from pydynox import SyncBatchWriter, pydynox_core
from pydynox._internal._decimal import NumberSchema
from pydynox_models import Address, Order, connect

# Its "slow operation" warnings (any request over 100 ms) would fill the driver's log on a
# busy machine; errors still show.
logging.getLogger("pydynox").setLevel(logging.ERROR)

_NO_REPLAY = (
    "pydynox sends requests from its Rust core, not through botocore's `Endpoint._send`, "
    "which the replay answers"
)


class PydynoxClient(Client):
    name = "pydynox"
    unsupported = {"replay": _NO_REPLAY}
    counts_requests = False

    def __init__(self, endpoint: str, table: str) -> None:
        super().__init__(endpoint, table)
        self.client = connect(endpoint, table)
        self._read_client: Any = None

    def versions(self) -> dict[str, str]:
        return {"pydynox": pydynox.__version__}

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
                    lines=[dict(line) for line in o["lines"]],
                    tags=set(o["tags"]),
                    shipping=Address(**o["shipping"]),
                    note=o["note"],
                )
            )
        return out

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return {"pk": f"CUSTOMER#{order['customer_id']}", "sk": f"ORDER#{order['id']}"}

    # ------------------------------------------------------------------ timed

    def put(self, obj: Order) -> None:
        obj.sync_save()

    def get(self, key: dict[str, str]) -> Order:
        found = Order.sync_get(**key)
        if found is None:
            raise LookupError("pydynox: a seeded order was not found")
        return found

    def iterate(self, customer_id: str) -> Iterator[Order]:
        return iter(
            Order.sync_query(
                partition_key=f"CUSTOMER#{customer_id}",
                sort_key_condition=Order.sk.begins_with("ORDER#"),
            )
        )

    def query(self, customer_id: str) -> list[Order]:
        return list(self.iterate(customer_id))

    def bulk(self, objs: list[Order]) -> None:
        with SyncBatchWriter(self.client, self.table) as batch:
            for obj in objs:
                batch.put(obj.to_dict())

    def decode(self, body: bytes) -> list[Order]:
        schema = self._number_schema()
        return [
            Order.from_dict(pydynox_core.item_from_dynamo(item, _number_schema=schema))
            for item in json.loads(body)["Items"]
        ]

    def _number_schema(self) -> Any:
        # The schema its model reads bind to the client (Decimal fields by name).
        fields = frozenset(Order._decimal_fields)
        return NumberSchema(
            fields=fields, variants={}, fallback_fields=frozenset(Order._declared_decimal_fields)
        )


if __name__ == "__main__":
    main(PydynoxClient)
