"""dynorm with 32 in flight: its async API (`aget`, `asave`, `async for`), or its sync API
on 32 threads. `--mode async:http` = async API on the lean transport; `threads:boto3` =
sync API on 32 threads through the boto3 client; and so on.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dynorm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shared import in_flight, parse_args, put_orders, report, timed  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workers"))
from common import make_orders  # noqa: E402
from dynorm_models import Order  # noqa: E402  (the Order of the sync benchmark)


async def main() -> None:
    args = parse_args()
    api, transport = args.mode.split(":")
    dynorm.configure(
        table_name=args.table,
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        transport=transport,
        max_pool_connections=max(args.inflight, 10),
    )
    keys = [
        {"customer_id": o["customer_id"], "id": o["id"]}
        for o in make_orders("async-get", "bench-get", 200)
    ]
    # New objects for the warm-up's and the measured pass's saves, built before the clock
    # starts (as aioboto3's items are): a save inserts, and says so if the item exists.
    orders = put_orders(uuid.uuid4().hex, 2 * args.n) if args.work == "put" else []
    fresh = iter([Order(**o) for o in orders])

    if api == "async":
        if args.work == "get":

            async def get(i: int) -> None:
                await Order.objects.aget(**keys[i % len(keys)])

            body: Any = lambda: in_flight(args.n, args.inflight, get)  # noqa: E731
        elif args.work == "put":

            async def put(i: int) -> None:
                await next(fresh).asave()

            body = lambda: in_flight(args.n, args.inflight, put)  # noqa: E731
        else:

            async def body() -> None:
                for _ in range(args.n // 1000):
                    got = [o async for o in Order.objects.filter(customer_id="bench-query")]
                    assert len(got) == 1000

        report(await timed(args.n, body))
        return

    pool = ThreadPoolExecutor(args.inflight)
    loop = asyncio.get_running_loop()

    def run_threads(one: Any) -> Any:
        async def all_of() -> None:
            await asyncio.to_thread(lambda: list(pool.map(one, range(args.n))))

        return all_of

    if args.work == "get":
        sync_body = run_threads(lambda i: Order.objects.get(**keys[i % len(keys)]))
    elif args.work == "put":
        sync_body = run_threads(lambda i: next(fresh).save())
    else:

        async def sync_body() -> None:
            def one() -> None:
                for _ in range(args.n // 1000):
                    assert len(list(Order.objects.filter(customer_id="bench-query"))) == 1000

            await loop.run_in_executor(pool, one)

    report(await timed(args.n, sync_body))


if __name__ == "__main__":
    asyncio.run(main())
