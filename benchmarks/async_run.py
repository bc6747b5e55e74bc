"""The async benchmark: dynorm's async API against aioboto3, one DynamoDB Local, one run.

    python benchmarks/async_run.py --rounds 5     # about 4 minutes on a 2-core machine

1000 GetItem and 1000 PutItem with 32 in flight, and a Query of 1000 items -> models (run
`--query-repeats` times a pass, one after another), for:
aioboto3 (its own virtualenv, pinned: benchmarks/requirements-aioboto3.txt), dynorm's async
API on each transport (`http`: the lean path; `boto3`: the boto3 client), the sync dynorm
on 32 threads, and, for GetItem only, the bare candidate transport (aiohttp + botocore's
SigV4 signer, no models), and, for PutItem only, aioboto3 sending the request dynorm's
save() sends for a new object (a put conditional on no item being there). Rounds are
interleaved, each client in a fresh process; ratios are against aioboto3 in the same run.
Beside each client's own CPU per item, the DynamoDB Local process's CPU per item over the
same worker (its warm-up pass and its measured pass), when this script started Local:
what the server spends is the part of the time no client can shorten. Writes
benchmarks/results/async/results.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "workers"))
sys.path.insert(0, str(HERE / "async_workers"))
import run as bench  # noqa: E402  (DynamoDB Local, virtualenvs: the main runner's)
from common import make_orders  # noqa: E402

WORKERS = HERE / "async_workers"
OUT = HERE / "results" / "async"

#: client -> (environment, worker, mode, works)
CLIENTS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "aioboto3": ("aioboto3", "aioboto3_worker.py", "", ("get", "put", "query")),
    "aioboto3, conditional put": ("aioboto3", "aioboto3_worker.py", "conditional", ("put",)),
    "aiohttp+SigV4 (bare transport)": ("aioboto3", "aioboto3_worker.py", "aiohttp", ("get",)),
    "dynorm async, http": ("main", "dynorm_async_worker.py", "async:http", ("get", "put", "query")),
    "dynorm async, boto3": (
        "main",
        "dynorm_async_worker.py",
        "async:boto3",
        ("get", "put", "query"),
    ),
    "dynorm sync, 32 threads, http": (
        "main",
        "dynorm_async_worker.py",
        "threads:http",
        ("get", "put", "query"),
    ),
    "dynorm sync, 32 threads, boto3": (
        "main",
        "dynorm_async_worker.py",
        "threads:boto3",
        ("get", "put", "query"),
    ),
}
BASELINE = "aioboto3"
LABELS = {
    "get": "1000 GetItem, 32 in flight",
    "put": "1000 PutItem / save(), 32 in flight",
    "query": "Query, 1000 items -> models",
}


def seed(endpoint: str, table: str, keys_file: Path) -> None:
    """Create the table and the items the workers read (with dynorm's own layout)."""
    import boto3
    from dynorm_async_worker import Order  # type: ignore[import-not-found]

    import dynorm

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="dynorm",
        aws_secret_access_key="dynorm",
    )
    client.create_table(
        TableName=table,
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
    dynorm.configure(table_name=table, endpoint_url=endpoint, region_name="us-east-1")
    gets = [Order(**o) for o in make_orders("async-get", "bench-get", 200)]
    Order.objects.bulk_create(gets, overwrite=True)
    Order.objects.bulk_create(
        [Order(**o) for o in make_orders("async-query", "bench-query", 1000)], overwrite=True
    )
    keys_file.write_text(
        "\n".join(
            json.dumps({"pk": {"S": o.dynamo_key["pk"]}, "sk": {"S": o.dynamo_key["sk"]}})
            for o in gets
        )
    )


def server_cpu(pid: int | None) -> float | None:
    """The CPU seconds process `pid` has used (Linux's /proc), or None where unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup-rounds", type=int, default=1, help="run first, not counted")
    parser.add_argument("--query-repeats", type=int, default=5, help="Queries of 1000 a pass")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--endpoint", default=None)
    args = parser.parse_args()

    pythons = {
        "main": bench.main_python(),
        "aioboto3": bench.ensure_venv("aioboto3", bench.requirements("aioboto3")),
    }
    proc = None
    if args.endpoint:
        endpoint, kind = args.endpoint, "given endpoint"
    else:
        endpoint, proc, kind = bench.start_dynamodb_local(pythons["main"])
    OUT.mkdir(parents=True, exist_ok=True)
    table = f"async-bench-{int(time.time())}"
    bench.CACHE.mkdir(exist_ok=True)
    keys_file = bench.CACHE / "async-keys.jsonl"
    results: dict[str, dict[str, list[dict[str, float]]]] = {c: {} for c in CLIENTS}
    try:
        seed(endpoint, table, keys_file)
        names = list(CLIENTS)
        server_pid = proc.pid if proc is not None else None  # Local's CPU is ours to read
        # Round 0 warms DynamoDB Local's JIT up on every request it will see, and is not
        # counted: in a cold Local the first worker's server CPU per item was 2-4x the
        # later rounds' (1,910 µs a PutItem against ~500).
        for rnd in range(-args.warmup_rounds, args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                env, worker, mode, works = CLIENTS[name]
                for work in works:
                    # A Query pass reads the 1000 items `--query-repeats` times: one Query
                    # (~0.1 s) alone is too short a sample against the server's pauses.
                    units = args.n * (args.query_repeats if work == "query" else 1)
                    if mode == "aiohttp":
                        mode_arg = f"aiohttp:{keys_file}"
                    else:
                        mode_arg = mode
                    before = server_cpu(server_pid)
                    out = subprocess.run(
                        [
                            str(pythons[env]),
                            str(WORKERS / worker),
                            *("--endpoint", endpoint, "--table", table, "--work", work),
                            *("--n", str(units), "--mode", mode_arg),
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{name} {work} failed:\n{out.stderr[-3000:]}")
                    got = json.loads(out.stdout.strip().splitlines()[-1])
                    after = server_cpu(server_pid)
                    if before is not None and after is not None:  # warm-up + measured pass
                        got["server_us"] = (after - before) / (2 * units) * 1e6
                    if rnd >= 0:
                        results[name].setdefault(work, []).append(got)
                    bench.log(f"round {rnd + 1} {name} {work}: {got['per_s']:.0f}/s")
    finally:
        if proc is not None:
            proc.terminate()
    write_report(results, args, kind)
    return 0


def write_report(results: dict[str, Any], args: argparse.Namespace, kind: str) -> None:
    def med(name: str, work: str, key: str) -> float | None:
        runs = [r for r in results[name].get(work, []) if key in r]
        return statistics.median(r[key] for r in runs) if runs else None

    def server(name: str, work: str) -> str:
        us = med(name, work, "server_us")
        return "" if us is None else f" + Local {us:.0f} µs"

    def table(cell: Any) -> list[str]:
        """The works x clients table; `cell(name, work, ratios)` renders one measured cell."""
        rows = ["| work | " + " | ".join(CLIENTS) + " |", "|---|" + "---|" * len(CLIENTS)]
        for work, label in LABELS.items():
            base_runs = results[BASELINE].get(work, [])
            cells = []
            for name in CLIENTS:
                runs = results[name].get(work)
                if not runs:
                    cells.append("—")
                    continue
                ratios = [r["per_s"] / b["per_s"] for r, b in zip(runs, base_runs)]
                cells.append(cell(name, work, ratios))
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
        return rows

    def spread(ratios: list[float]) -> str:
        return f"({min(ratios):.2f}–{max(ratios):.2f})"

    lines = [
        "# Async benchmark",
        "",
        f"{args.rounds} interleaved rounds (after {args.warmup_rounds} uncounted warm-up "
        f"round(s)), one process per client per work, {kind}. "
        "Throughput ratio = items (or requests) per second / aioboto3's, same run; the "
        "per-round spread of the ratio in brackets; client CPU per item in µs, then DynamoDB "
        "Local's CPU per item over the same worker (its warm-up and measured passes).",
        "",
        *table(
            lambda name, work, ratios: (
                f"{statistics.median(ratios):.2f}x {spread(ratios)}; "
                f"{med(name, work, 'per_s'):.0f}/s; {med(name, work, 'cpu_us'):.0f} µs"
                f"{server(name, work)}"
            )
        ),
    ]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    # The docs' Async page includes this compact table (pymdownx.snippets).
    summary = [
        f"From one run, {args.rounds} interleaved round(s), {kind}; median ratio to aioboto3 "
        "(per-round range), then client CPU per request or item, then DynamoDB Local's.",
        "",
        *table(
            lambda name, work, ratios: (
                f"**{statistics.median(ratios):.2f}x** {spread(ratios)}, "
                f"{med(name, work, 'cpu_us'):.0f} µs{server(name, work)}"
            )
        ),
    ]
    (OUT / "summary.md").write_text("\n".join(summary) + "\n")
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
