"""Charts for the HTML report: matplotlib (Agg), as inline SVG with a <title> and <desc>.

Colours are the Okabe-Ito palette (distinguishable with every common colour-vision
deficiency), and signals are told apart by marker shape as well as colour, so nothing depends
on colour alone. SVG ids are salted with a fixed string and the file carries no date, so the
same content renders to the same bytes with the same matplotlib.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from html import escape
from typing import Any

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
WIDTH_IN = 6.9  # fits an A4 page with 15 mm margins
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "calm-ledger",
            "svg.fonttype": "none",  # text stays text: selectable, searchable, smaller
            "font.family": "DejaVu Sans",
            "font.size": 8.5,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": cycler(color=list(OKABE_ITO.values())[1:]),
        }
    )
    return plt


def spc_chart(chart: dict[str, Any], chart_id: str) -> str:
    """An XmR chart: the values, the mean, the process limits and the signals."""
    plt = _pyplot()
    points = chart["points"]
    limits = chart["chart"]
    labels = [p["period"] for p in points]
    values = [p["value"] for p in points]
    xs = list(range(len(points)))
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.6))
    try:
        ax.plot(
            xs,
            [float("nan") if v is None else v for v in values],
            color=OKABE_ITO["blue"],
            marker="o",
            markersize=3.5,
            linewidth=1.4,
            label="value",
        )
        ax.axhline(limits["mean"], color=OKABE_ITO["black"], linewidth=1, label="mean")
        ax.axhline(
            limits["upper"],
            color=OKABE_ITO["black"],
            linewidth=0.9,
            linestyle="--",
            label="process limits",
        )
        ax.axhline(limits["lower"], color=OKABE_ITO["black"], linewidth=0.9, linestyle="--")
        marks = {
            "concern": (OKABE_ITO["vermillion"], "^", "special cause: concern"),
            "improvement": (OKABE_ITO["sky_blue"], "v", "special cause: improvement"),
        }
        for meaning, (colour, marker, legend) in marks.items():
            idx = sorted(
                {
                    labels.index(period)
                    for s in chart["signals"]
                    if s["meaning"] == meaning
                    for period in s["periods"]
                }
            )
            idx = [i for i in idx if values[i] is not None]
            if idx:
                ax.scatter(
                    idx,
                    [values[i] for i in idx],
                    s=42,
                    color=colour,
                    marker=marker,
                    edgecolors=OKABE_ITO["black"],
                    linewidths=0.6,
                    zorder=3,
                    label=legend,
                )
        step = -(-len(labels) // 8)  # at most 8 labels: no overlap on A4
        ax.set_xticks(xs[::step], labels[::step], rotation=0)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7.5)
        fig.tight_layout()
        svg = _svg(fig)
    finally:
        plt.close(fig)
    return _accessible(svg, chart_id, chart["title"], describe_spc(chart))


def bar_chart(
    title: str, rows: Sequence[dict[str, Any]], chart_id: str, *, horizontal: bool = False
) -> str:
    """Counts by category; suppressed cells ("*") are drawn as zero-height and labelled."""
    plt = _pyplot()
    labels = [str(r["label"]) for r in rows]
    counts = [r["count"] if isinstance(r["count"], int) else 0 for r in rows]
    height = 0.32 * len(rows) + 0.7 if horizontal else 2.3
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(1.4, height)))
    try:
        if horizontal:
            bars = ax.barh(labels[::-1], counts[::-1], color=OKABE_ITO["blue"])
            shown = [str(r["count"]) for r in rows][::-1]
        else:
            bars = ax.bar(labels, counts, color=OKABE_ITO["blue"])
            shown = [str(r["count"]) for r in rows]
        ax.bar_label(bars, labels=shown, padding=2, fontsize=7.5)
        ax.grid(axis="x" if horizontal else "y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        fig.tight_layout()
        svg = _svg(fig)
    finally:
        plt.close(fig)
    described = "; ".join(f"{r['label']}: {r['count']}" for r in rows)
    return _accessible(svg, chart_id, title, f"Bar chart of {title.lower()}. {described}.")


def describe_spc(chart: dict[str, Any]) -> str:
    """The chart in words: what a screen reader says (and the figure's alt text)."""
    limits = chart["chart"]
    values = ", ".join(
        f"{p['period']}: {'no value' if p['value'] is None else _n(p['value'])}"
        for p in chart["points"]
    )
    signals = " ".join(s["explanation"] for s in chart["signals"]) or "No special-cause signals."
    return (
        f"XmR chart of {chart['title'].lower()}. Mean {_n(limits['mean'])}, process limits"
        f" {_n(limits['lower'])} to {_n(limits['upper'])}. Values: {values}. {signals}"
    )


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inlined in HTML


def _accessible(svg: str, chart_id: str, title: str, description: str) -> str:
    match = _SVG_OPEN.search(svg)
    if match is None:
        raise AssertionError("matplotlib wrote no <svg> element")
    opening = match.group(0)
    attributes = (
        f' role="img" aria-labelledby="{chart_id}-title {chart_id}-desc"'
        f' id="{chart_id}" class="chart"'
    )
    tagged = opening[:-1] + attributes + ">"
    inner = (
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    svg = svg.replace(opening, tagged + inner, 1)
    # Dimensions in pt make the chart scale with the page; width 100% keeps it inside A4.
    return re.sub(r'(<svg[^>]*?) width="[^"]*" height="[^"]*"', r"\1", svg, count=1)


def _n(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")
