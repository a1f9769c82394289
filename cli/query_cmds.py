"""`calm-ledger metrics`, `spc` and `compliance`: the questions boards and leads ask."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

import click

from cli.bootstrap import Context
from cli.output import emit, format_option, status
from cli.records import now, parse_day, parse_time
from ledger.collection import no_cycle_collection
from ledger.errors import NotFound, ValidationError
from projections.metrics import (
    DEFAULT_WINDOWS,
    METRIC_NAMES,
    Period,
    PeriodMetrics,
    as_rows,
    change_against_baseline,
    metric_series,
    metrics_from_tallies,
)

pass_context = click.make_pass_decorator(Context)
PERIODS = ["week", "month", "quarter", "year"]


def _metrics(
    ctx: Context, service: str | None, first: date, last: date, by: str
) -> list[PeriodMetrics]:
    """compute_metrics over the read tables: the database adds up each day's incidents and
    only occupancy records are decoded (tests/test_query_cli.py checks both agree)."""
    read = ctx.read_model()
    if service is not None and not read.knows_service(service):
        raise NotFound(f"no service {service!r} in the ledger")
    days = read.metric_tallies(service, first, last, DEFAULT_WINDOWS.limits_us())
    return metrics_from_tallies(
        days, read.occupancy(), service_id=service, start=first, end=last, by=cast(Period, by)
    )


def _range(start: str | None, end: str | None) -> tuple[date, date]:
    today = now().date()
    last = parse_day(end, "--to") if end else today
    first = parse_day(start, "--from") if start else date(last.year - 1, last.month, 1)
    if last < first:
        raise ValidationError(f"--to ({last}) is before --from ({first})")
    return first, last


@click.command()
@click.option("--service", help="A service id (default: every service).")
@click.option("--from", "start", help="First day, YYYY-MM-DD (default: 12 months back).")
@click.option("--to", "end", help="Last day, YYYY-MM-DD (default: today).")
@click.option("--by", type=click.Choice(PERIODS), default="month", show_default=True)
@click.option("--baseline-from", help="Baseline period start, to report change against it.")
@click.option("--baseline-to", help="Baseline period end.")
@click.option("--publish", is_flag=True, help="Apply statistical disclosure control (MHSDS).")
@format_option
@pass_context
def metrics(
    ctx: Context,
    service: str | None,
    start: str | None,
    end: str | None,
    by: str,
    baseline_from: str | None,
    baseline_to: str | None,
    publish: bool,
    fmt: str | None,
) -> None:
    """Reduction metrics per period: counts, people, rate per 1,000 person-days, prone share,
    durations, injuries, planned vs emergency, debrief timeliness, concentration.

    Example: calm-ledger metrics --service ward-3 --from 2026-01-01 --to 2026-10-31 --by month
    """
    first, last = _range(start, end)
    b_first, b_last = (
        _range(baseline_from, baseline_to) if baseline_from or baseline_to else (first, last)
    )
    rows = _metrics(ctx, service, first, last, by)
    if publish:
        from projections.disclosure import MHSDS, protect_rows

        out: list[dict[str, Any]] = protect_rows(rows, MHSDS)
    else:
        out = as_rows(rows)
    emit(out, fmt, list(out[0]) if out else ["label"])
    if baseline_from or baseline_to:
        baseline = _metrics(ctx, service, b_first, b_last, by)
        for name, change in change_against_baseline(rows, baseline).items():
            shown = "n/a" if change is None else f"{change:+.1%}"
            status(f"change against baseline in {name}: {shown}")


@click.command()
@click.argument("metric", type=click.Choice(METRIC_NAMES))
@click.option("--service")
@click.option("--from", "start")
@click.option("--to", "end")
@click.option("--by", type=click.Choice(PERIODS), default="month", show_default=True)
@click.option("--baseline", help="Fix the limits on periods FIRST:LAST (indexes, from 0).")
@click.option("--run-length", type=click.IntRange(min=2), default=7, show_default=True)
@click.option("--trend-length", type=click.IntRange(min=2), default=7, show_default=True)
@format_option
@pass_context
def spc(
    ctx: Context,
    metric: str,
    service: str | None,
    start: str | None,
    end: str | None,
    by: str,
    baseline: str | None,
    run_length: int,
    trend_length: int,
    fmt: str | None,
) -> None:
    """An XmR chart of one metric with NHS Making Data Count signals.

    Example: calm-ledger spc rate_per_1000 --service ward-3 --baseline 0:11
    """
    from projections.spc import xmr

    first, last = _range(start, end)
    rows = _metrics(ctx, service, first, last, by)
    chart = xmr(
        metric_series(rows, metric),
        baseline=_baseline(baseline),
        run_length=run_length,
        trend_length=trend_length,
    )
    points = [
        {
            "period": p.label,
            "value": p.value,
            "mean": round(chart.mean, 3),
            "lower": round(chart.lower, 3),
            "upper": round(chart.upper, 3),
            "signal": ",".join(s.kind.value for s in chart.signals if i in s.indexes),
        }
        for i, p in enumerate(chart.points)
    ]
    emit(points, fmt, ["period", "value", "mean", "lower", "upper", "signal"])
    for signal in chart.signals:
        status(f"signal: {signal.explanation}")
    if not chart.signals:
        status("no signals: common-cause variation only")


def _baseline(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, sep, last = text.partition(":")
    if not (sep and first.isdigit() and last.isdigit()):
        raise ValidationError(f"invalid --baseline {text!r}: use FIRST:LAST, e.g. 0:11")
    return int(first), int(last)


@click.command()
@click.option("--as-of", "as_of", help="Compute findings as at this time (default: now).")
@click.option("--service")
@click.option("--open", "only_open", is_flag=True, help="Only findings not yet due.")
@click.option("--overdue", "only_overdue", is_flag=True, help="Only overdue findings.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=90,
    show_default=True,
    help="Look at incidents that started in this many days before --as-of.",
)
@format_option
@pass_context
def compliance(
    ctx: Context,
    as_of: str | None,
    service: str | None,
    only_open: bool,
    only_overdue: bool,
    days: int,
    fmt: str | None,
) -> None:
    """Compliance findings under each service's jurisdiction profiles. The same events and
    the same --as-of always give the same findings.

    Example: calm-ledger compliance --overdue --as-of 2026-11-01T00:00Z --days 365
    """
    from projections.compliance import Status, evaluate

    when = parse_time(as_of, "--as-of") if as_of else now()
    since = (when - timedelta(days=days)).date().isoformat()
    with no_cycle_collection():  # millions of objects, no cycles (ledger.collection)
        state = ctx.read_model().load_state(
            service_id=service,
            start=since,
            kinds=("services", "people", "staff", "plans", "authorisations", "incidents"),
        )
        findings = evaluate(state, when, service_id=service)
    wanted = {Status.OPEN} if only_open else {Status.OVERDUE} if only_overdue else None
    rows = [f.row() for f in findings if wanted is None or f.status in wanted]
    emit(rows, fmt, ["rule", "status", "service", "subject", "due", "message"], texts_only=True)
    status(f"{len(rows)} finding(s) as of {when.isoformat()}")
