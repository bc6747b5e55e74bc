"""Profile one client's Query path on the recorded 1 MB page, CPU only (no server needed).

    python benchmarks/profile_query.py                  # dynorm
    python benchmarks/profile_query.py --client raw_boto3 --reps 20 --top 30

Replays benchmarks/.cache/page-common.json (written by run.py's setup) through the worker's
`query()` under cProfile with a process-CPU timer, and prints the functions with the most
own time and the most cumulative time. Runs in this interpreter: the dynorm, raw_boto3 and
resource_pydantic workers only (use a peer's .venvs python for the others).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "workers"))

from common import QUERY_CUSTOMER, Replay, strip_last_key  # noqa: E402

MODULES = {
    "dynorm": ("dynorm_worker", "DynormClient"),
    "raw_boto3": ("raw_boto3", "RawClient"),
    "resource_pydantic": ("resource_pydantic", "ResourceClient"),
    "pynamodb": ("pynamodb_worker", "PynamoClient"),
    "simplesingletable": ("simplesingletable_worker", "SSTClient"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--client", default="dynorm", choices=sorted(MODULES))
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    module, cls = MODULES[args.client]
    client = getattr(importlib.import_module(module), cls)("http://127.0.0.1:9", "replayed")
    layout = "simplesingletable" if args.client == "simplesingletable" else "common"
    page = HERE / ".cache" / f"page-{layout}.json"
    if not page.exists():
        raise SystemExit(f"{page} is missing: run `python benchmarks/run.py --quick` once first")
    body = strip_last_key(page.read_bytes())
    with Replay(body):
        items = len(client.query(QUERY_CUSTOMER))  # warm up: client, service model
        profiler = cProfile.Profile(time.process_time)
        c0 = time.process_time()
        profiler.enable()
        for _ in range(args.reps):
            client.query(QUERY_CUSTOMER)
        profiler.disable()
        cpu = time.process_time() - c0
    print(
        f"{args.client}: {args.reps} x Query of {items} items replayed; "
        f"{cpu / (args.reps * items) * 1e6:.0f} µs CPU per item under the profiler"
    )
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
