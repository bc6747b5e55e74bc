"""The cold-start row of benchmarks/run.py: what a fresh process (a Lambda) pays for one GetItem.

Each sample is a whole new process: import the library, define the Order model, configure the
table, one GetItem of a seeded order, exit. Wall time runs from before the process is spawned
until it has been reaped; peak RSS is the process's own VmHWM, which it reports on stderr as it
exits (not `ru_maxrss`, which keeps the driver's high-water mark across `exec`). Clients
alternate run by run (the order rotates) and the figure is the median over the runs. Before
the measured runs every command runs once unmeasured, so bytecode caches exist and the files
are in the page cache, as on a warm Lambda host; DynamoDB Local is warm from the rounds.

Also measured: the interpreter alone (`python -c pass`, the floor every row includes) and
`import dynorm` alone; and a `-X importtime` breakdown of each command's imports by top-level
package, written to importtime.md next to the results.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers"

#: Appended to every command: the process reports its own peak RSS (VmHWM, which `exec`
#: resets) on stderr. `ru_maxrss` from `wait4` would not do: Linux carries the high-water
#: mark of the process before `exec` over, so a child of this driver starts at its size.
_HWM = "import sys; sys.stderr.write(open('/proc/self/status').read())"

#: key -> (environment, client that must be selected, argv after the interpreter, label, env)
COLD: dict[str, tuple[str, str | None, list[str], str, dict[str, str]]] = {
    "python": ("main", None, ["-c", _HWM], "the interpreter alone (`python -c pass`)", {}),
    "import_dynorm": (
        "main",
        "dynorm",
        ["-c", f"import dynorm; {_HWM}"],
        "`import dynorm` alone",
        {},
    ),
    "raw_boto3": ("main", None, ["cold_raw_boto3.py"], "raw boto3 client", {}),
    "dynorm": ("main", "dynorm", ["cold_dynorm.py"], "dynorm (default boto3 transport)", {}),
    "dynorm_http": (
        "main",
        "dynorm",
        ["cold_dynorm.py"],
        'dynorm, `transport="http"`',
        {"BENCH_TRANSPORT": "http"},
    ),
    "pynamodb": ("pynamodb", "pynamodb", ["cold_pynamodb.py"], "PynamoDB", {}),
    "pydynox": ("pydynox", "pydynox", ["cold_pydynox.py"], "pydynox", {}),
}
BASELINE = "raw_boto3"


def _spawn(python: Path, argv: list[str], env: dict[str, str]) -> tuple[float, float, str, str]:
    """Run one process; return (wall ms, its peak RSS MiB, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(python), *argv], stdout=out, stderr=err, env=env, cwd=WORKERS)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {proc.returncode}): {stderr[-2000:]}")
    hwm = re.search(r"^VmHWM:\s+(\d+) kB", stderr, re.MULTILINE)
    if hwm is None:
        raise RuntimeError(f"{' '.join(argv)} did not report its VmHWM on stderr")
    return wall * 1000, int(hwm.group(1)) / 1024, stdout, stderr


def selected(clients: list[str]) -> list[str]:
    return [k for k, (_, need, *_rest) in COLD.items() if need is None or need in clients]


def run_cold(
    pythons: dict[str, Path],
    base_env: dict[str, str],
    endpoint: str,
    table: str,
    page: Path,
    clients: list[str],
    runs: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Median wall time and peak RSS over `runs` fresh processes per command."""
    first = json.loads(page.read_bytes())["Items"][0]
    env = {
        # Without bytecode caches every sample would compile the library from source.
        **{k: v for k, v in base_env.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "BENCH_ENDPOINT": endpoint,
        "BENCH_TABLE": table,
        "BENCH_CUSTOMER": first["customer_id"]["S"],
        "BENCH_ID": first["id"]["S"],
    }
    keys = selected(clients)
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in keys}
    for r in range(runs + 1):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            envname, _, argv, _, extra = COLD[key]
            wall, rss, stdout, _ = _spawn(pythons[envname], argv, {**env, **extra})
            if argv[0].endswith(".py") and stdout.strip() != env["BENCH_ID"]:
                raise RuntimeError(f"cold start {key} printed {stdout.strip()[:80]!r}")
            if r:  # the first pass is unmeasured
                samples[key].append((wall, rss))
        log(f"cold start: run {r}/{runs}{' (unmeasured)' if not r else ''}")
    out: dict[str, Any] = {}
    for key, values in samples.items():
        walls, rsss = [v[0] for v in values], [v[1] for v in values]
        out[key] = {
            "label": COLD[key][3],
            "runs": len(values),
            "wall_ms": statistics.median(walls),
            "wall_ms_min": min(walls),
            "wall_ms_max": max(walls),
            "peak_rss_mib": statistics.median(rsss),
        }
    base = out.get(BASELINE)
    for entry in out.values():
        entry["wall_ratio"] = entry["wall_ms"] / base["wall_ms"] if base else None
        entry["rss_ratio"] = entry["peak_rss_mib"] / base["peak_rss_mib"] if base else None
    out["_importtime"] = importtime(pythons, env, keys, min(3, runs))
    return out


def _by_package(stderr: str) -> dict[str, float]:
    """Self import time in ms per top-level package from `-X importtime` output."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _, name = (part.strip() for part in line.replace("|", ":", 2).split(":", 3))
        top = name.split(".")[0]
        totals[top] = totals.get(top, 0.0) + int(self_us) / 1000
    return totals


def importtime(
    pythons: dict[str, Path], env: dict[str, str], keys: list[str], runs: int
) -> dict[str, Any]:
    """Per command: total import ms and the packages by self time (median of `runs`)."""
    out: dict[str, Any] = {}
    for key in keys:
        if key == "python":
            continue
        envname, _, argv, label, extra = COLD[key]
        per_run = [
            _by_package(_spawn(pythons[envname], ["-X", "importtime", *argv], {**env, **extra})[3])
            for _ in range(runs)
        ]
        names = set().union(*per_run)
        medians = {n: statistics.median([p.get(n, 0.0) for p in per_run]) for n in names}
        ranked = sorted(medians.items(), key=lambda kv: -kv[1])
        out[key] = {
            "label": label,
            "total_ms": sum(medians.values()),
            "packages": [{"package": n, "self_ms": ms} for n, ms in ranked],
        }
    return out


def render_cold(cold: dict[str, Any]) -> str:
    rows = {k: v for k, v in cold.items() if not k.startswith("_")}
    if not rows:
        return ""
    runs = next(iter(rows.values()))["runs"]
    text = (
        "\n## Cold start: a new process, one GetItem\n\n"
        "A fresh process imports the library, defines the Order model, configures the table "
        "and does one GetItem of a seeded order. Wall time from spawn to exit and the "
        f"process's peak RSS, median of {runs} runs (clients alternating); ratio to the raw "
        "boto3 client's process (lower is better). The interpreter alone and `import dynorm` "
        "alone are shown for reference; where the import time goes: `importtime.md`.\n\n"
        "| process | wall ms | wall vs raw boto3 | lowest–highest ms | peak RSS MiB "
        "| RSS vs raw boto3 |\n|---|---:|---:|---:|---:|---:|\n"
    )
    for entry in rows.values():
        wr, rr = entry["wall_ratio"], entry["rss_ratio"]
        text += (
            f"| {entry['label']} | {entry['wall_ms']:,.0f} | "
            f"{'—' if wr is None else f'{wr:.2f}x'} | "
            f"{entry['wall_ms_min']:,.0f}–{entry['wall_ms_max']:,.0f} | "
            f"{entry['peak_rss_mib']:.0f} | {'—' if rr is None else f'{rr:.2f}x'} |\n"
        )
    return text


def render_importtime(cold: dict[str, Any], top: int = 10) -> str:
    data = cold.get("_importtime") or {}
    parts = [
        "# Where a cold start's import time goes\n",
        "`python -X importtime` of each cold-start command (see results.md), self time summed "
        "by top-level package (a package's own modules, not what they import from other "
        "packages), median of a few runs. `dynorm_models`, `pynamodb_models`, "
        "`pydynox_models` are the benchmark's Order model definitions; `cold_*` the scripts. "
        "Figures from a busy machine are inflated, not reordered much.\n",
    ]
    for entry in data.values():
        parts.append(f"\n## {entry['label']}: {entry['total_ms']:,.0f} ms of imports\n")
        parts.append("| package | self ms | share |\n|---|---:|---:|")
        total = entry["total_ms"] or 1.0
        for pkg in entry["packages"][:top]:
            parts.append(
                f"| `{pkg['package']}` | {pkg['self_ms']:,.1f} | {pkg['self_ms'] / total:.0%} |"
            )
        rest = sum(p["self_ms"] for p in entry["packages"][top:])
        parts.append(f"| everything else | {rest:,.1f} | {rest / total:.0%} |")
    return "\n".join(parts) + "\n"
