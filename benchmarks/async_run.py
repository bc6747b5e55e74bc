"""The async benchmark: dynorm's async API against aioboto3, one DynamoDB Local, one run.

    python benchmarks/async_run.py --rounds 3     # about 5 minutes on a 2-core machine

1000 GetItem and 1000 PutItem with 32 in flight, and a Query of 1000 items -> models, for:
aioboto3 (its own virtualenv, pinned: benchmarks/requirements-aioboto3.txt), dynorm's async
API on each transport (`http`: the lean path; `boto3`: the boto3 client), the sync dynorm
on 32 threads, and, for GetItem only, the bare candidate transport (aiohttp + botocore's
SigV4 signer, no models). Rounds are interleaved, each client in a fresh process; ratios
are against aioboto3 in the same run. Writes benchmarks/results/async/results.{md,json}.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
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
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                env, worker, mode, works = CLIENTS[name]
                for work in works:
                    if mode == "aiohttp":
                        mode_arg = f"aiohttp:{keys_file}"
                    else:
                        mode_arg = mode
                    out = subprocess.run(
                        [
                            str(pythons[env]),
                            str(WORKERS / worker),
                            *("--endpoint", endpoint, "--table", table, "--work", work),
                            *("--n", str(args.n), "--mode", mode_arg),
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{name} {work} failed:\n{out.stderr[-3000:]}")
                    got = json.loads(out.stdout.strip().splitlines()[-1])
                    results[name].setdefault(work, []).append(got)
                    bench.log(f"round {rnd + 1} {name} {work}: {got['per_s']:.0f}/s")
    finally:
        if proc is not None:
            proc.terminate()
    write_report(results, args, kind)
    return 0


def write_report(results: dict[str, Any], args: argparse.Namespace, kind: str) -> None:
    def med(name: str, work: str, key: str) -> float | None:
        runs = results[name].get(work)
        return statistics.median(r[key] for r in runs) if runs else None

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
        f"{args.rounds} interleaved rounds, one process per client per work, {kind}. "
        "Throughput ratio = items (or requests) per second / aioboto3's, same run; the "
        "per-round spread of the ratio in brackets; client CPU per item in µs.",
        "",
        *table(
            lambda name, work, ratios: (
                f"{statistics.median(ratios):.2f}x {spread(ratios)}; "
                f"{med(name, work, 'per_s'):.0f}/s; {med(name, work, 'cpu_us'):.0f} µs"
            )
        ),
    ]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    # The docs' Async page includes this compact table (pymdownx.snippets).
    summary = [
        f"From one run, {args.rounds} interleaved round(s), {kind}; median ratio to aioboto3 "
        "(per-round range), then client CPU per request or item.",
        "",
        *table(
            lambda name, work, ratios: (
                f"**{statistics.median(ratios):.2f}x** {spread(ratios)}, "
                f"{med(name, work, 'cpu_us'):.0f} µs"
            )
        ),
    ]
    (OUT / "summary.md").write_text("\n".join(summary) + "\n")
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
