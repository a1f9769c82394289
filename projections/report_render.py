"""Rendering a report's content (`projections.governance`) as JSON, CSV, Markdown or HTML.

JSON is the content itself with sorted keys (its canonical form is what the content digest is
taken over). Markdown and HTML come from jinja2 templates in `projections/templates/`, with
StrictUndefined (a missing value is an error, never a blank) and, for HTML, autoescaping. Each
format names its report id in a fixed place, so `calm-ledger report verify FILE` can find the
signed `report.issued` event it belongs to.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import orjson

from domain.reports import ReportFormat
from projections.disclosure import SUPPRESSED

SHARE_METRICS = frozenset(
    {
        "prone_share",
        "immediate_debrief_within_24h",
        "person_debrief_within_72h",
        "post_incident_review_within_7d",
        "top10pct_share",
    }
)
REPORT_ID_MARK = "calm-ledger-report-id"
_ID = re.compile(REPORT_ID_MARK + r"""["':,= ]+(?:content=")?([0-9a-f]{8}-[0-9a-f-]{27})""")


def render(content: dict[str, Any], digest: str, fmt: ReportFormat) -> bytes:
    renderers: dict[ReportFormat, Callable[[dict[str, Any], str], bytes]] = {
        ReportFormat.JSON: lambda c, _d: render_json(c),
        ReportFormat.CSV: render_csv,
        ReportFormat.MD: render_md,
        ReportFormat.HTML: render_html,
    }
    return renderers[fmt](content, digest)


def file_name(content: dict[str, Any], fmt: ReportFormat) -> str:
    """`governance-ward-3-2026-10-1a2b3c4d.html`: kind, scope, period, the id's first 8."""
    scope = content["scope"]["service_id"] or "all"
    label = re.sub(r"[^A-Za-z0-9-]+", "_", content["period"]["label"])
    return f"governance-{scope}-{label}-{content['report']['id'][:8]}.{fmt.value}"


def report_id_in(raw: bytes, fmt: ReportFormat) -> str | None:
    """The report id a rendered file names, or None."""
    if fmt is ReportFormat.JSON:
        try:
            found = orjson.loads(raw)["report"]["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return found if isinstance(found, str) else None
    match = _ID.search(raw.decode("utf-8", errors="replace"))
    return match.group(1) if match else None


# --- JSON ------------------------------------------------------------------------------------


def render_json(content: dict[str, Any]) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


# --- CSV -------------------------------------------------------------------------------------


def render_csv(content: dict[str, Any], digest: str) -> bytes:
    """One long table (section, item, measure, value): easy to filter in a spreadsheet."""
    rows: list[tuple[str, str, str, object]] = []
    add = rows.append
    r, period, cp = content["report"], content["period"], content["checkpoint"]
    for item, value in (
        (REPORT_ID_MARK, r["id"]),
        ("kind", r["kind"]),
        ("title", r["title"]),
        ("service", content["scope"]["service_id"] or "all"),
        ("period", period["label"]),
        ("start", period["start"]),
        ("end", period["end"]),
        ("checkpoint_origin", cp["origin"]),
        ("checkpoint_size", cp["size"]),
        ("checkpoint_root", cp["root"]),
        ("published", content["publication"]["published"]),
        ("content_sha256", digest),
    ):
        add(("report", item, "", value))
    for m in content["headline"]:
        for measure in ("value", "baseline", "change"):
            add(("headline", m["metric"], measure, m[measure]))
    target = content["target"]
    for key in ("reduction_percent", "rate_per_1000", "met"):
        if key in target:
            add(("target", key, "", target[key]))
    for chart in content["spc"]:
        section = f"spc:{chart['metric']}"
        for point in chart.get("points", ()):
            add((section, point["period"], "value", point["value"]))
        if chart["chart"] is not None:
            for key in ("mean", "lower", "upper"):
                add((section, key, "", chart["chart"][key]))
            for n, signal in enumerate(chart["signals"], 1):
                add((section, f"signal {n}", signal["meaning"], signal["explanation"]))
        add((section, "summary", "", chart["summary"]))
    for dimension in ("type", "technique", "position", "time_of_day", "day_of_week"):
        for row in content["breakdowns"][dimension]:
            add((f"interventions by {dimension}", row["key"], "count", row["count"]))
    conc = content["concentration"]
    for key in ("people", "people_with_3_or_more", "top10pct_share"):
        add(("concentration", key, "", conc[key]))
    for person in conc["most"]:
        add(("concentration", person["person"], "interventions", person["interventions"]))
    comp = content["compliance"]
    add(("compliance", "all rules", "open", comp["open"]))
    add(("compliance", "all rules", "overdue", comp["overdue"]))
    for rule in comp["by_rule"]:
        add(("compliance", rule["rule"], "open", rule["open"]))
        add(("compliance", rule["rule"], "overdue", rule["overdue"]))
    for d in content["debriefs"]:
        for key in ("incidents", "on_time", "late", "declined", "not_held", "on_time_share"):
            add(("debriefs", d["debrief"], key, d[key]))
    loop = content["learning_loop"]
    for key in (
        "incidents",
        "followed_by_plan_change",
        "missing_plan_change",
        "person_has_no_plan",
    ):
        add(("learning loop", key, "", loop[key]))
    training = content["training"]
    for key in ("staff", "current", "expiring", "expired", "none", "current_share"):
        add(("training", key, "", training[key]))
    for w in content["data_quality"]:
        add(("data quality", w["code"], w["service"] or "all", w["message"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("section", "item", "measure", "value"))
    for section, item, measure, value in rows:
        writer.writerow((section, item, measure, _csv_value(value)))
    return buffer.getvalue().encode("utf-8")


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- Markdown and HTML -------------------------------------------------------------------------


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("projections", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["figure"] = figure
    env.filters["change"] = change
    env.filters["mdcell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    env.globals["SUPPRESSED"] = SUPPRESSED
    env.globals["REPORT_ID_MARK"] = REPORT_ID_MARK
    return env


def render_md(content: dict[str, Any], digest: str) -> bytes:
    template = _environment().get_template("governance.md.j2")
    return str(template.render(r=content, digest=digest)).encode("utf-8")


def render_html(content: dict[str, Any], digest: str) -> bytes:
    from markupsafe import Markup

    from projections.report_charts import bar_chart, spc_chart

    charts: dict[str, Markup] = {}
    for chart in content["spc"]:
        if chart["chart"] is not None:
            charts[f"spc-{chart['metric']}"] = Markup(
                spc_chart(chart, f"chart-spc-{chart['metric'].replace('_', '-')}")
            )
    breakdowns = content["breakdowns"]
    for dimension, title, horizontal in (
        ("type", "Interventions by type", True),
        ("time_of_day", "Interventions by time of day (UTC)", False),
        ("day_of_week", "Interventions by day of the week", False),
    ):
        rows = breakdowns[dimension]
        if rows and any(isinstance(row["count"], int) and row["count"] for row in rows):
            charts[dimension] = Markup(
                bar_chart(
                    title, rows, f"chart-{dimension.replace('_', '-')}", horizontal=horizontal
                )
            )
    template = _environment().get_template("governance.html.j2")
    return str(template.render(r=content, digest=digest, charts=charts)).encode("utf-8")


def figure(value: object, metric: str = "") -> str:
    """A figure for people: "*" stays "*", None is "n/a", shares are percentages."""
    if value is None:
        return "n/a"
    if value == SUPPRESSED:
        return SUPPRESSED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if metric in SHARE_METRICS or metric.endswith("share"):
            return f"{value * 100:.1f}%"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def change(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    return f"{value * 100:+.1f}%"


def lines_differing(a: bytes, b: bytes, limit: int = 5) -> list[str]:
    """Up to `limit` descriptions of lines that differ between two renderings."""
    left, right = (
        a.decode("utf-8", "replace").splitlines(),
        b.decode("utf-8", "replace").splitlines(),
    )
    found = []
    for n, (x, y) in enumerate(_pairs(left, right), 1):
        if x != y:
            found.append(f"line {n}: the file has {_clip(x)!r}, the ledger gives {_clip(y)!r}")
            if len(found) == limit:
                break
    return found


def _pairs(left: Sequence[str], right: Sequence[str]) -> Iterable[tuple[str, str]]:
    for n in range(max(len(left), len(right))):
        yield (left[n] if n < len(left) else "", right[n] if n < len(right) else "")


def _clip(text: str, width: int = 120) -> str:
    text = text.strip()
    return text if len(text) <= width else text[: width - 1] + "…"
