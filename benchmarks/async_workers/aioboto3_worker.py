"""aioboto3 (aiobotocore) with 32 in flight: the peer of dynorm's async API.

get/put: `table.get_item` / `table.put_item` on the Table resource (items as Python
values, then pydantic models for get; `--mode conditional` puts only where no item is,
as dynorm's save() of a new object does); query: `table.query` pages -> pydantic models.
`--mode aiohttp` instead measures the transport alone: aiohttp posting the same GetItem
body signed with botocore's SigV4 signer (no models), the candidate async transport.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared import in_flight, parse_args, put_orders, report, timed  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workers"))
from common import make_orders  # noqa: E402


class Order(BaseModel):
    pk: str
    sk: str
    id: str
    customer_id: str
    status: str
    total: Decimal
    created_at: str
    lines: list[dict[str, Any]]
    tags: set[str]
    shipping: dict[str, Any]
    note: str


def item_of(order: dict[str, Any]) -> dict[str, Any]:
    return {
        **order,
        "pk": f"CUSTOMER#{order['customer_id']}",
        "sk": f"ORDER#{order['id']}",
        "created_at": order["created_at"].isoformat(),
    }


async def aiohttp_get(args: Any) -> dict[str, float]:
    import aiohttp
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = Credentials("dynorm", "dynorm")
    keys = [json.loads(line) for line in Path(args.mode.split(":", 1)[1]).read_text().splitlines()]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.inflight)) as http:

        async def one(i: int) -> None:
            body = json.dumps({"TableName": args.table, "Key": keys[i % len(keys)]}).encode()
            request = AWSRequest(
                method="POST",
                url=args.endpoint + "/",
                data=body,
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "DynamoDB_20120810.GetItem",
                },
            )
            SigV4Auth(creds, "dynamodb", "us-east-1").add_auth(request)
            headers = dict(request.headers)
            async with http.post(args.endpoint + "/", data=body, headers=headers) as r:
                json.loads(await r.read())

        return await timed(args.n, lambda: in_flight(args.n, args.inflight, one))


async def main() -> None:
    args = parse_args()
    if args.mode.startswith("aiohttp"):
        report(await aiohttp_get(args))
        return
    session = aioboto3.Session(
        aws_access_key_id="dynorm", aws_secret_access_key="dynorm", region_name="us-east-1"
    )
    config = AioConfig(max_pool_connections=args.inflight)
    async with session.resource("dynamodb", endpoint_url=args.endpoint, config=config) as ddb:
        table = await ddb.Table(args.table)
        if args.work == "query":

            async def body() -> None:
                for _ in range(args.n // 1000):
                    got: list[Order] = []
                    params: dict[str, Any] = {
                        "KeyConditionExpression": "pk = :pk",
                        "ExpressionAttributeValues": {":pk": "CUSTOMER#bench-query"},
                    }
                    while True:
                        page = await table.query(**params)
                        got.extend(Order.model_validate(i) for i in page["Items"])
                        if "LastEvaluatedKey" not in page:
                            break
                        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
                    assert len(got) == 1000

            report(await timed(args.n, body))
            return
        orders = [item_of(o) for o in make_orders("async-get", "bench-get", 200)]
        if args.work == "get":

            async def get(i: int) -> None:
                o = orders[i % len(orders)]
                got = await table.get_item(Key={"pk": o["pk"], "sk": o["sk"]})
                Order.model_validate(got["Item"])

            report(await timed(args.n, lambda: in_flight(args.n, args.inflight, get)))
        else:
            # New items for the warm-up's and the measured pass's puts, as dynorm's saves.
            fresh = iter([item_of(o) for o in put_orders(uuid.uuid4().hex, 2 * args.n)])
            # `--mode conditional`: the request dynorm's save() sends for a new object, a
            # put that fails instead of overwriting an item that exists.
            only_new = (
                {"ConditionExpression": "attribute_not_exists(pk)"}
                if args.mode == "conditional"
                else {}
            )

            async def put(i: int) -> None:
                await table.put_item(Item=next(fresh), **only_new)

            report(await timed(args.n, lambda: in_flight(args.n, args.inflight, put)))


if __name__ == "__main__":
    asyncio.run(main())
