"""What both async benchmark workers share: the work, the timing, the report line."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--work", choices=["get", "put", "query"], required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--mode", default="")
    return parser.parse_args()


#: The put work's new orders are spread over this many customers (partitions), for every
#: client alike: one partition that grows through the whole run makes DynamoDB Local's
#: own cost per write grow with it (320 -> 635 µs a PutItem over one run), which no client
#: controls.
PUT_PARTITIONS = 32


def put_orders(run_id: str, n: int) -> list[dict[str, Any]]:
    """`n` new orders for the put work: unique ids, spread over PUT_PARTITIONS customers.

    Each worker builds them (and its own objects from them) before the clock starts, for
    the warm-up and the measured pass alike, so every timed write is of a new item.
    """
    from common import make_orders  # benchmarks/workers, on each worker's path

    return [make_orders(f"{run_id}-{i}", f"bench-put-{i % PUT_PARTITIONS}", 1)[0] for i in range(n)]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def in_flight(n: int, limit: int, one: Callable[[int], Awaitable[Any]]) -> None:
    """Run one(0..n-1) with at most `limit` awaiting at once."""
    gate = asyncio.Semaphore(limit)

    async def bounded(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(bounded(i) for i in range(n)))


async def timed(units: int, body: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await body()  # warm: connections, credentials, first-use caches
    started, cpu0 = time.perf_counter(), cpu()
    await body()
    wall, used = time.perf_counter() - started, cpu() - cpu0
    return {"per_s": units / wall, "cpu_us": used / units * 1e6}


def report(result: dict[str, float]) -> None:
    print(json.dumps(result), flush=True)
