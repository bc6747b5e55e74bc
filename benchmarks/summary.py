"""The docs' summary of a benchmark run: the rows the Benchmarks page includes (summary.md).

    python benchmarks/summary.py benchmarks/results/results.json   # rewrite its summary.md

`run.py` writes it with every report; run this to re-render it from a results.json without
measuring again. docs/benchmarks.md includes the file (pymdownx.snippets), so the page's
cold-start, threads and iteration figures always come from the committed run. A row the run
did not measure says so instead of showing numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def render_summary(data: dict[str, Any]) -> str:
    cfg, names = data["config"], data["clients"]
    names = {**names, "python": "the interpreter alone", "import_dynorm": "`import dynorm` alone"}
    parts = [
        f"From `{cfg['command']}` ({cfg['date']}, load average {cfg.get('loadavg', '?')} at "
        f"the start, {cfg.get('loadavg_end', '?')} at the end); the full report is "
        "`benchmarks/results/results.md`.\n"
    ]
    parts.append(render_operations(data))
    cold = {k: v for k, v in (data.get("cold") or {}).items() if not k.startswith("_")}
    parts.append("**Cold start** (a new process: import, one model, configure, one GetItem):\n")
    if cold:
        runs = next(iter(cold.values()))["runs"]
        parts.append(
            f"| process (median of {runs} runs) | wall ms | vs raw boto3 | peak RSS MiB "
            "| vs raw boto3 |\n|---|---:|---:|---:|---:|\n"
            + "".join(
                f"| {e['label']} | {e['wall_ms']:,.0f} | {_ratio(e['wall_ratio'])} | "
                f"{e['peak_rss_mib']:.0f} | {_ratio(e['rss_ratio'])} |\n"
                for e in cold.values()
            )
        )
        source = (data.get("cold") or {}).get("_rss_source")
        if source:
            parts.append(f"Cold-start {source}.\n")
    else:
        parts.append("Not measured in this run.\n")
    threads = data.get("threads") or {}
    parts.append("**GetItem from 16 threads** sharing one client, ratio to raw boto3:\n")
    if threads:
        first = next(iter(threads.values()))
        parts.append(
            f"| client ({first['threads']} threads, {first['gets']:,} GetItems) | ratio "
            "| per-round range | client CPU µs/op |\n|---|---:|---:|---:|\n"
            + "".join(
                f"| {names.get(c, c)} | **{_ratio(e['ratio'])}** | "
                + ("—" if e["ratio_min"] is None else f"{e['ratio_min']:.2f}–{e['ratio_max']:.2f}")
                + f" | {e['cpu_us']:,.0f} |\n"
                for c, e in threads.items()
            )
        )
    else:
        parts.append("Not measured in this run.\n")
    parts.append(render_targets(data))
    stream = data.get("stream") or []
    parts.append("**Iterating one partition** with each client's streaming API:\n")
    if stream:
        parts.append(
            f"| client, {stream[0]['items']:,} items | how | items/s | client CPU µs/item "
            "| peak RSS MiB | growth MiB |\n|---|---|---:|---:|---:|---:|\n"
            + "".join(
                f"| {names.get(s.get('client', 'dynorm'), s.get('client'))} | "
                f"{'`list()`' if s['how'] == 'list' else 'streaming'} | "
                f"{s['items_per_s']:,.0f} | {s['cpu_us_per_item']:,.0f} | "
                f"{s['peak_rss_mib']:.0f} | {s['growth_mib']:.0f} |\n"
                for s in stream
            )
        )
        source = data.get("_stream_source")
        if source:
            parts.append(f"Iteration figures {source}.\n")
    else:
        parts.append("Not measured in this run.\n")
    return "\n".join(parts)


#: The per-operation rows the docs show: work in `aggregate`, label.
OPERATIONS = (
    ("query", "Query, 1000 items -> models, paginated"),
    ("get", "GetItem"),
    ("put", "PutItem / `save()`"),
    ("bulk", "Bulk write, 1000 items"),
    ("decode", "Decode a recorded 1 MB Query page (CPU only)"),
    ("replay", "Query, recorded 1 MB page replayed (client only)"),
)


def render_operations(data: dict[str, Any]) -> str:
    """Throughput ratio to the raw client and client CPU, per operation and client."""
    names, aggregate = data["clients"], data.get("aggregate") or {}
    clients = list(names)
    if not aggregate:
        return "**Per operation**: not measured in this run.\n"
    head = "| work | " + " | ".join(names[c] for c in clients) + " |\n"
    rule = "|---|" + "---:|" * len(clients) + "\n"

    def rows(cell: Any) -> str:
        out = ""
        for work, label in OPERATIONS:
            entries = aggregate.get(work) or {}
            out += f"| {label} | " + " | ".join(cell(entries.get(c)) for c in clients) + " |\n"
        return out

    def ratio(e: Any) -> str:
        return "—" if not e or e.get("ratio") is None else f"{e['ratio']:.2f}x"

    def cpu(e: Any) -> str:
        return "—" if not e or e.get("cpu_us") is None else f"{e['cpu_us']:,.0f}"

    return (
        "**Per operation**, throughput relative to the raw boto3 client (higher is better), "
        "median of the rounds:\n\n"
        + head
        + rule
        + rows(ratio)
        + "\nClient CPU per item (Query, bulk, decode, replay) or per operation (GetItem, "
        "PutItem), µs (lower is better):\n\n" + head + rule + rows(cpu)
    )


#: The performance issue's targets: (row, work in `aggregate`, the least ratio to raw boto3).
THROUGHPUT_TARGETS = (
    ("GetItem", "get", 2.0),
    ("PutItem / `save()`", "put", 2.0),
    ("Bulk write, 1000 items", "bulk", 2.5),
    ("Query, 1000 items -> models", "query", 3.5),
)
DYNORMS = ("dynorm", "dynorm_http")


def _verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    if (value >= target) if higher_is_better else (value <= target):
        return "**met**"
    reached = value / target if higher_is_better else target / value
    return f"missed: {reached:.0%} of the target"


def _best(
    values: dict[str, float | None], higher_is_better: bool = True
) -> tuple[str, float | None]:
    known = {k: v for k, v in values.items() if v is not None}
    if not known:
        return "", None
    pick = max if higher_is_better else min
    name = pick(known, key=lambda k: known[k])
    return name, known[name]


def render_targets(data: dict[str, Any]) -> str:
    """One row per target of the performance issue: what this run measured, and the verdict."""
    names = data["clients"]
    rows = []
    aggregate = data.get("aggregate") or {}
    for label, work, target in THROUGHPUT_TARGETS:
        entries = aggregate.get(work) or {}
        values = {c: (entries.get(c) or {}).get("ratio") for c in DYNORMS if c in entries}
        _, best = _best(values)
        shown = "; ".join(f"{names.get(c, c)} {_ratio(v)}" for c, v in values.items()) or "—"
        rows.append((label, f">= {target:.1f}x raw boto3", shown, _verdict(best, target)))
    cold = data.get("cold") or {}
    base = cold.get("raw_boto3")
    for what, key in (("wall time", "wall_ratio"), ("peak RSS", "rss_ratio")):
        values = {c: (cold.get(c) or {}).get(key) for c in DYNORMS if c in cold}
        _, best = _best(values, higher_is_better=False)
        shown = "; ".join(f"{names.get(c, c)} {_ratio(v)}" for c, v in values.items()) or "—"
        rows.append(
            (
                f"Cold start, {what}",
                "<= 0.60x raw boto3",
                shown,
                _verdict(best, 0.6, higher_is_better=False) if base else "not measured",
            )
        )
    pydynox = cold.get("pydynox")
    if pydynox and base:
        for what, key in (("wall time", "wall_ms"), ("peak RSS", "peak_rss_mib")):
            values = {c: (cold.get(c) or {}).get(key) for c in DYNORMS if c in cold}
            _, best = _best(values, higher_is_better=False)
            unit = "ms" if key == "wall_ms" else "MiB"
            shown = "; ".join(f"{names.get(c, c)} {v:,.0f} {unit}" for c, v in values.items() if v)
            rows.append(
                (
                    f"Cold start, {what}, against pydynox",
                    f"< pydynox's {pydynox[key]:,.0f} {unit}",
                    shown,
                    _verdict(best, pydynox[key], higher_is_better=False),
                )
            )
    threads = data.get("threads") or {}
    values = {c: (threads.get(c) or {}).get("ratio") for c in DYNORMS if c in threads}
    _, best = _best(values)
    shown = "; ".join(f"{names.get(c, c)} {_ratio(v)}" for c, v in values.items()) or "—"
    rows.append(
        (
            "GetItem from 16 threads",
            ">= 2.0x raw boto3",
            shown,
            _verdict(best, 2.0) if threads else "not measured",
        )
    )
    return (
        "**Targets** of the performance work, against this run (the best of dynorm's two "
        "transports decides; where the time still goes: `benchmarks/results/profile_ops.md`):\n\n"
        "| work | target | measured | verdict |\n|---|---|---|---|\n"
        + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    path = Path(argv[0])
    (path.parent / "summary.md").write_text(render_summary(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
