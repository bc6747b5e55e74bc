"""The event loop's HTTP exchange alone: aiohttp against dynorm's own (dynorm/_http_async.py).

    python benchmarks/async_exchange.py            # starts DynamoDB Local
    python benchmarks/async_exchange.py --endpoint http://localhost:8000

The same signed GetItem bytes (SigV4 headers made once), 4,000 requests with 32 in flight,
after 200 to warm up, two rounds each, alternating: client CPU and wall time per request.
No models, no signing per request: only what carries the bytes differs. (The table does
not exist: DynamoDB Local answers each request with a short error, the same for both.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from dynorm._http_async import AsyncExchange  # noqa: E402
from dynorm._wire import Exchange  # noqa: E402

N, WARM, IN_FLIGHT = 4000, 200, 32


def signed(url: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"TableName": "exchange-bench", "Key": {"pk": {"S": "x"}}}).encode()
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
        },
    )
    SigV4Auth(Credentials("bench", "bench"), "dynamodb", "us-east-1").add_auth(request)
    return body, dict(request.headers)


async def measure(post: Any) -> tuple[float, float]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with gate:
            await post()

    await asyncio.gather(*(one() for _ in range(WARM)))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(N)))
    return (time.process_time() - cpu) / N * 1e6, (time.perf_counter() - wall) / N * 1e6


async def with_aiohttp(url: str) -> tuple[float, float]:
    import aiohttp

    body, headers = signed(url)
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()

        return await measure(post)


async def with_dynorm(url: str) -> tuple[float, float]:
    body, headers = signed(url)
    wire = Exchange(url, pool_size=IN_FLIGHT, connect_timeout=5.0, read_timeout=30.0)
    exchange = AsyncExchange(wire)

    async def post() -> None:
        await exchange.post(body, headers)

    return await measure(post)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=None)
    args = parser.parse_args()
    server = None
    endpoint = args.endpoint
    if not endpoint:
        from dynorm.testing import _local

        server = _local.start_local(warn=False)
        endpoint = server.endpoint
    url = endpoint.rstrip("/") + "/"
    try:
        for _ in range(2):
            for name, run in (("aiohttp", with_aiohttp), ("dynorm", with_dynorm)):
                cpu, wall = asyncio.run(run(url))
                print(f"{name:<8} client CPU {cpu:6.0f} µs/request   wall {wall:6.0f} µs/request")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
