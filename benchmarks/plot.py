"""Draw the two benchmark charts from results.json (run by run.py in benchmarks/.venvs/plot).

python benchmarks/plot.py benchmarks/results/results.json benchmarks/results/chart.png [CPU_PNG]

The first PNG is throughput relative to the raw boto3 client, the second (default: the first's
name with `-cpu` added, e.g. chart-cpu.png) client CPU per item or operation. Each is drawn to
be read at the width of a documentation page (about 700 CSS px: mkdocs-material with both
sidebars at 1280 px), at twice that in pixels for high-density screens: the work names head
their group of bars instead of taking the left third as axis labels, and no text is smaller
than 10 pt at 96 dpi (13 CSS px).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

COLORS = {
    "raw_boto3": "#7f7f7f",
    "resource_pydantic": "#9ecae1",
    "pynamodb": "#fdae6b",
    "simplesingletable": "#a1d99b",
    "pydynox": "#e7969c",
    "dynorm": "#3f51b5",
    "dynorm_http": "#1a237e",
}
WIDTH_IN = 7.2  # ~690 CSS px at 96 dpi: the page's content column
DPI = 192  # twice that, for high-density screens (and the full-size view)
BAR_IN = 0.16  # one bar's slot
HEADER_IN = 0.30  # a work's name above its bars
GAP_IN = 0.10  # between groups
VALUE_PT = 10
HEADER_PT = 11
LABEL_PT = 10.5
TITLE_PT = 12.5


def layout(data: dict[str, Any], metric: str) -> list[tuple[str, list[tuple[str, float]]]]:
    """Per work, in order: its label and the (client, value) pairs that were measured."""
    groups = []
    for work, label in data["works"].items():
        bars = [
            (client, float(data["aggregate"][work][client][metric]))
            for client in data["clients"]
            if data["aggregate"][work].get(client, {}).get(metric) is not None
        ]
        if bars:
            groups.append((label, bars))
    return groups


def draw(
    data: dict[str, Any],
    metric: str,
    title: str,
    subtitle: str,
    xlabel: str,
    header: Callable[[str, str], str],
    value: Callable[[float], str],
    log: bool,
    dst: str,
) -> None:
    works = {label: work for work, label in data["works"].items()}
    groups = layout(data, metric)
    bars_in = sum(len(bars) for _, bars in groups) * BAR_IN
    plot_in = bars_in + len(groups) * (HEADER_IN + GAP_IN)
    top_in, bottom_in = 1.20, 0.60  # title, subtitle and legend; x axis label
    fig = plt.figure(figsize=(WIDTH_IN, plot_in + top_in + bottom_in))
    ax: Axes = fig.add_axes(
        (0.02, bottom_in / fig.get_figheight(), 0.96, plot_in / fig.get_figheight())
    )

    values = [v for _, bars in groups for _, v in bars]
    if log:
        lo, hi = min(values) / 2.0, max(values) * 2.2
        ax.set_xscale("log")
    else:
        lo, hi = 0.0, max(max(values) * 1.15, 1.2)
    ax.set_xlim(lo, hi)

    y = plot_in  # inches from the bottom of the axes, going down
    for label, bars in groups:
        y -= GAP_IN
        ax.text(
            0,
            y - HEADER_IN / 2,
            header(label, works[label]),
            transform=ax.get_yaxis_transform(),
            fontsize=HEADER_PT,
            fontweight="bold",
            va="center",
            ha="left",
            zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6},
        )
        y -= HEADER_IN
        for client, v in bars:
            center = y - BAR_IN / 2
            ax.barh(
                center,
                v - (lo if log else 0),
                left=lo if log else 0,
                height=BAR_IN * 0.8,
                color=COLORS.get(client),
                edgecolor="none",
            )
            strong = client == "dynorm"
            ax.text(
                v * (1.04 if log else 1) + (0 if log else (hi - lo) * 0.008),
                center,
                value(v),
                fontsize=VALUE_PT,
                va="center",
                zorder=3,
                fontweight="bold" if strong else "normal",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6},
            )
            y -= BAR_IN
    ax.set_ylim(0, plot_in)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=LABEL_PT)
    ax.set_xlabel(xlabel, fontsize=LABEL_PT)
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    if metric == "ratio":
        ax.axvline(1.0, color="black", linewidth=0.9, linestyle="--", zorder=2)
    if log:  # plain numbers at 1-2-5 steps instead of powers of ten
        ticks = [t for t in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if lo <= t <= hi]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _pos: f"{t:,.0f}"))
        ax.xaxis.set_minor_locator(NullLocator())

    height = fig.get_figheight()
    fig.text(0.02, 1 - 0.15 / height, title, fontsize=TITLE_PT, fontweight="bold", va="top")
    fig.text(0.02, 1 - 0.42 / height, subtitle, fontsize=VALUE_PT, va="top", color="#444444")
    handles = [Patch(color=COLORS.get(c), label=name) for c, name in data["clients"].items()]
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.01, 1 - 0.62 / height),
        ncol=3,
        fontsize=VALUE_PT,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.2,
    )
    fig.savefig(dst, dpi=DPI, facecolor="white")
    plt.close(fig)


def main(src: str, dst: str, cpu_dst: str | None = None) -> None:
    data = json.loads(Path(src).read_text())
    cfg = data["config"]
    subtitle = (
        f"DynamoDB Local, ~1 KB orders, median of {cfg['rounds']} interleaved rounds "
        f"({cfg['date']})"
    )
    draw(
        data,
        "ratio",
        title="Throughput relative to the raw boto3 client",
        subtitle=subtitle,
        xlabel="times the raw boto3 client's throughput (higher is better; dashed: 1x)",
        header=lambda label, _work: label,
        value=lambda v: f"{v:.2f}x",
        log=False,
        dst=dst,
    )
    units = data.get("units", {})
    out = Path(dst)
    draw(
        data,
        "cpu_us",
        title="Client CPU per item or operation",
        subtitle=subtitle,
        xlabel="client CPU, µs, log scale (lower is better)",
        header=lambda label, work: (
            f"{label}: per {'operation' if units.get(work) == 'op' else 'item'}"
        ),
        value=lambda v: f"{v:,.0f} µs",
        log=True,
        dst=cpu_dst or str(out.with_name(f"{out.stem}-cpu{out.suffix}")),
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
