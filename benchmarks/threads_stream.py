"""Two rows of benchmarks/run.py that need their own setup: 16 threads, and 100k-item iteration.

Threads: every client's worker runs `threads` mode: N threads sharing one client (one model
class, one table), `n` GetItems between them, started together at a barrier (see
`workers/common.py:run_threads`). Clients alternate round by round; the ratio to the raw boto3
client (same threads, one shared boto3 client with a 50-connection pool) is taken per round,
then the median.

Iteration: the raw client seeds one partition of `items` orders once per table (a marker item
records it, so a persistent endpoint is seeded once), then each client iterates it in a
fresh process with its streaming API; dynorm also with `list()`, the contrast. Items/s and
the process's peak RSS: flat memory is the point.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

#: Clients with a threads row and with a streaming iterator (in report order).
THREAD_CLIENTS = ("raw_boto3", "pynamodb", "pydynox", "dynorm", "dynorm_http")
STREAM_CLIENTS = ("raw_boto3", "pynamodb", "pydynox", "dynorm", "dynorm_http")
BASELINE = "raw_boto3"
#: How each client streams (the report's "how" column).
STREAM_HOW = {
    "raw_boto3": "`get_paginator('query')`, items deserialized one by one",
    "pynamodb": "`for o in Order.query(...)`",
    "pydynox": "`for o in Order.sync_query(...)`",
    "dynorm": "`qs.iterator()`",
    "dynorm_http": "`qs.iterator()`",
}

Worker = Callable[..., dict[str, Any]]


def run_threads(
    worker: Worker, clients: list[str], rounds: int, threads: int, n: int, log: Callable[..., None]
) -> list[dict[str, Any]]:
    """`rounds` x every client's threads worker; returns each round's results by client."""
    chosen = [c for c in THREAD_CLIENTS if c in clients]
    out = []
    for r in range(rounds):
        shift = r % len(chosen)
        order = chosen[shift:] + chosen[:shift]
        log(f"threads round {r + 1}/{rounds}: {threads} threads x {n} GetItems: {', '.join(order)}")
        out.append({c: worker(c, "threads", round=r, n=n, threads=threads) for c in order})
    return out


def aggregate_threads(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    agg: dict[str, Any] = {}
    for client in THREAD_CLIENTS:
        samples = [r[client] for r in rounds if client in r]
        if not samples:
            continue
        ratios = [
            r[client]["per_s"] / r[BASELINE]["per_s"]
            for r in rounds
            if client in r and r.get(BASELINE, {}).get("per_s")
        ]
        reqs = [s["requests_per_op"] for s in samples if s.get("requests_per_op") is not None]
        agg[client] = {
            "threads": samples[0]["threads"],
            "gets": samples[0]["units"],
            "per_s": statistics.median(s["per_s"] for s in samples),
            "cpu_us": statistics.median(s["cpu_us_per_unit"] for s in samples),
            "requests_per_op": statistics.median(reqs) if reqs else None,
            "ratio": statistics.median(ratios) if ratios else None,
            "ratio_min": min(ratios) if ratios else None,
            "ratio_max": max(ratios) if ratios else None,
        }
    return agg


def run_stream(
    worker: Worker, clients: list[str], items: int, log: Callable[..., None]
) -> list[dict[str, Any]]:
    log(f"iteration: the raw client seeds {items:,} items (once per table)")
    info = worker(BASELINE, "stream-setup", stream_items=items)
    seeded = f"seeded in {info.get('seed_s')} s" if info.get("seeded") else "already seeded"
    log(f"iteration: {info['items']:,} items ({seeded})")
    out = []
    plan = [(c, "iterator") for c in STREAM_CLIENTS if c in clients]
    if "dynorm" in clients:
        plan.append(("dynorm", "list"))
    for client, how in plan:
        log(f"iteration: {client} ({how})")
        res = worker(client, "stream", stream_items=items, how=how)
        out.append({**res, "client": client})
    return out


def render_threads(agg: dict[str, Any], names: dict[str, str]) -> str:
    if not agg:
        return ""
    first = next(iter(agg.values()))
    text = (
        f"\n## GetItem from {first['threads']} threads sharing one client\n\n"
        f"{first['threads']} threads share one client (one model, one table) and make "
        f"{first['gets']:,} GetItems between them, started together; throughput ratio to the "
        "raw boto3 client with the same threads (one shared client, 50 pooled connections), "
        "taken per round, median and spread over the rounds. Client CPU is the whole "
        "process's, all threads.\n\n"
        "| client | ratio to raw boto3 | lowest–highest | GetItems/s | client CPU µs/op "
        "| requests/op |\n|---|---:|---:|---:|---:|---:|\n"
    )
    for client, e in agg.items():
        spread = "—" if e["ratio_min"] is None else f"{e['ratio_min']:.2f}–{e['ratio_max']:.2f}"
        reqs = "—" if e["requests_per_op"] is None else f"{e['requests_per_op']:.2f}"
        ratio = "—" if e["ratio"] is None else f"{e['ratio']:.2f}x"
        text += (
            f"| {names.get(client, client)} | {ratio} | {spread} | {e['per_s']:,.0f} | "
            f"{e['cpu_us']:,.0f} | {reqs.replace('.00', '')} |\n"
        )
    return text


def render_stream(stream: list[dict[str, Any]], names: dict[str, str]) -> str:
    if not stream:
        return ""
    text = (
        f"\n## Iterating {stream[0]['items']:,} items of one partition\n\n"
        "One Query over the whole partition (DynamoDB's 1 MB pages), each client in a fresh "
        "process with its streaming API, and dynorm's `list()` for contrast. Peak RSS is the "
        "process's maximum resident set size (`ru_maxrss`); baseline the RSS just before the "
        "iteration (client created, one request made); growth is peak minus baseline: it "
        "should stay about one page whatever the partition size.\n\n"
        "| client | how | items | items/s | CPU µs/item | baseline RSS MiB | peak RSS MiB "
        "| growth MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
    )
    for s in stream:
        how = "`list(qs)`" if s["how"] == "list" else STREAM_HOW.get(s["client"], s["how"])
        text += (
            f"| {names.get(s['client'], s['client'])} | {how} | {s['items']:,} | "
            f"{s['items_per_s']:,.0f} | {s['cpu_us_per_item']:.0f} | "
            f"{s['baseline_rss_mib']:.0f} | {s['peak_rss_mib']:.0f} | {s['growth_mib']:.0f} |\n"
        )
    return text
