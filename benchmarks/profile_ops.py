"""Where a single-item request's client CPU goes, per part, against a live DynamoDB Local.

    python benchmarks/profile_ops.py --endpoint http://127.0.0.1:8000
    python benchmarks/profile_ops.py --endpoint URL --clients dynorm_http --ops get --n 2000

For each client (raw boto3, dynorm on the boto3 transport, dynorm on `transport="http"`) and
each work (GetItem, PutItem / `save()`), runs `--n` requests under cProfile with a
process-CPU timer (the server's CPU is not counted) and adds every function's own time to the
part its module belongs to: botocore's request pipeline, urllib3 / http.client / sockets,
dynorm, pydantic, JSON, the rest of the standard library. Prints one Markdown table per work:
µs of client CPU per request for each part and client. The profiler's own overhead inflates
every part roughly alike; read shares and differences, not absolute figures (run.py's
timings, without the profiler, are the absolute ones).

Seeds its own table (`bench_profile`) with the benchmark's orders through the raw client.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "workers"))

from common import make_orders  # noqa: E402
from dynorm_worker import DynormClient  # noqa: E402
from raw_boto3 import RawClient  # noqa: E402

#: (part, substrings of a profiled function's file name), first match wins.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("botocore pipeline", ("/botocore/", "/boto3/", "/s3transfer/", "/jmespath/")),
    ("urllib3 / http.client / socket", ("/urllib3/", "/http/client.py", "socket.py", "ssl.py")),
    ("dynorm", ("/dynorm/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("json", ("/json/",)),
    ("HTTP header parsing (email)", ("/email/",)),
    ("signing: hmac / hashlib / datetime", ("/hmac.py", "/hashlib.py", "/datetime.py")),
    ("logging", ("/logging/",)),
    ("threading / queue / selectors", ("/threading.py", "/queue.py", "/selectors.py")),
    ("urllib.parse", ("/urllib/parse.py",)),
    ("workers (the benchmark's own code)", ("/benchmarks/",)),
)
#: Built-in (C) functions, by a substring of their profiled name, first match wins.
BUILTINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("C: socket send / receive / poll", ("socket", "select", "poll")),
    ("C: hashing, hmac", ("_hashlib", "hmac", "sha256", "openssl")),
    (
        "C: pydantic-core, orjson",
        ("pydantic_core", "orjson", "SchemaValidator", "SchemaSerializer"),
    ),
)
BUILTIN = "C: other built-in calls"
OTHER = "standard library, other"

CLIENTS = ("raw_boto3", "dynorm", "dynorm_http")
OPS = ("get", "put")
TITLES = {"get": "GetItem", "put": "PutItem / save()"}


def part_of(filename: str, name: str) -> str:
    if filename == "~":
        for part, needles in BUILTINS:
            if any(n in name for n in needles):
                return part
        return BUILTIN
    for part, needles in PARTS:
        if any(n in filename for n in needles):
            return part
    return OTHER


def make_client(name: str, endpoint: str, table: str) -> Any:
    if name == "raw_boto3":
        return RawClient(endpoint, table)
    return DynormClient(endpoint, table, transport="http" if name == "dynorm_http" else "boto3")


def profile(
    client: Any, name: str, op: str, orders: list[dict[str, Any]], n: int
) -> dict[str, float]:
    """µs of client CPU per request, per part, for `n` requests of `op`."""
    if op == "get":
        keys = [client.prepare_key(o) for o in orders]
        warm = [(client.get, k) for k in keys[:50]]
        calls = [(client.get, keys[i % len(keys)]) for i in range(n)]
    else:  # new orders every time: each put creates an item (raw boto3's put is conditional)
        fresh = client.prepare_put(make_orders(f"{name}-{time.time_ns()}", "CPROFILE-PUT", n + 50))
        warm = [(client.put, o) for o in fresh[:50]]
        calls = [(client.put, o) for o in fresh[50:]]
    for fn, arg in warm:  # warm up: connections, service model, caches
        fn(arg)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for fn, arg in calls:
        fn(arg)
    profiler.disable()
    parts: dict[str, float] = {}
    stats: Any = pstats.Stats(profiler).stats
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        key = part_of(filename, name)
        parts[key] = parts.get(key, 0.0) + tottime
    return {k: v / n * 1e6 for k, v in parts.items()}


def table(op: str, results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    order = [p for p, _ in PARTS] + [p for p, _ in BUILTINS] + [BUILTIN, OTHER]
    lines = [
        f"**{TITLES[op]}**, µs of client CPU per request under cProfile:",
        "",
        "| part | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for part in order:
        if any(results[c].get(part, 0.0) >= 0.5 for c in names):
            cells = " | ".join(f"{results[c].get(part, 0.0):.0f}" for c in names)
            lines.append(f"| {part} | {cells} |")
    totals = " | ".join(f"**{sum(results[c].values()):.0f}**" for c in names)
    lines.append(f"| **total** | {totals} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--endpoint", required=True, help="a running DynamoDB Local")
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--n", type=int, default=1000, help="requests per client and work")
    p.add_argument("--table", default="bench_profile")
    p.add_argument("--out", help="also write the tables to this Markdown file (profile_ops.md)")
    args = p.parse_args()
    clients = [c for c in args.clients.split(",") if c]
    for c in clients:
        if c not in CLIENTS:
            raise SystemExit(f"--clients: {c!r} is not one of {', '.join(CLIENTS)}")
    raw = RawClient(args.endpoint, args.table)
    try:
        raw.create_table()
    except Exception as exc:  # an existing table from an earlier run is fine
        if "ResourceInUse" not in type(exc).__name__ + str(exc):
            raise
    orders = make_orders("profile", "CPROFILE", 200)
    raw.seed(orders)
    tables = []
    for op in [o for o in args.ops.split(",") if o]:
        results = {
            c: profile(make_client(c, args.endpoint, args.table), c, op, orders, args.n)
            for c in clients
        }
        tables.append(table(op, results))
    text = (
        f"From `python benchmarks/profile_ops.py --n {args.n}` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}), {args.n} requests per client "
        "and work.\n\n" + "\n\n".join(tables) + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
