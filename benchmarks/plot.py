"""Draw chart.png from results.json (run by run.py in the benchmarks/.venvs/plot virtualenv).

python benchmarks/plot.py benchmarks/results/results.json benchmarks/results/chart.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "raw_boto3": "#7f7f7f",
    "resource_pydantic": "#9ecae1",
    "pynamodb": "#fdae6b",
    "simplesingletable": "#a1d99b",
    "dynorm": "#3f51b5",
}


def main(src: str, dst: str) -> None:
    data = json.loads(Path(src).read_text())
    agg = data["aggregate"]
    clients = list(data["clients"])
    works = list(data["works"])
    labels = [data["works"][w] for w in works]
    cfg = data["config"]

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.9 * len(works) + 2.4), sharey=True)
    height = 0.8 / len(clients)
    for i, client in enumerate(clients):
        ys = [len(works) - 1 - k + (len(clients) / 2 - i - 0.5) * height for k in range(len(works))]
        ratios = [agg[w][client]["ratio"] or 0 for w in works]
        cpus = [agg[w][client]["cpu_us"] or 0 for w in works]
        name = data["clients"][client]
        color = COLORS.get(client, None)
        left.barh(ys, ratios, height=height, color=color, label=name)
        right.barh(ys, cpus, height=height, color=color, label=name)
        for y, r in zip(ys, ratios):
            if r:
                left.text(r + 0.02, y, f"{r:.2f}x", va="center", fontsize=7)
        for y, c in zip(ys, cpus):
            if c:
                right.text(c * 1.05, y, f"{c:,.0f}", va="center", fontsize=7)
    left.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    left.set_yticks(range(len(works)))
    left.set_yticklabels(list(reversed(labels)), fontsize=9)
    left.set_xlabel("throughput relative to the raw boto3 client (higher is better)")
    left.set_xlim(0, max(1.2, max((agg[w][c]["ratio"] or 0) for w in works for c in clients) * 1.2))
    right.set_xscale("log")
    right.set_xlabel("client CPU µs per item or op, log scale (lower is better)")
    xmax = max((agg[w][c]["cpu_us"] or 1) for w in works for c in clients)
    xmin = min((agg[w][c]["cpu_us"] or xmax) for w in works for c in clients)
    right.set_xlim(xmin / 2, xmax * 2.5)
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(clients), fontsize=9, frameon=False)
    fig.suptitle(
        f"dynorm and peers on DynamoDB Local, ~1 KB orders, median of {cfg['rounds']} "
        f"interleaved rounds ({cfg['date']})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(dst, dpi=130)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
