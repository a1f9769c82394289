"""`calm-ledger schedule add | list | remove | run-due`: report schedules, kept as signed events.

`run-due` is what cron or a systemd timer calls: it issues every due report exactly once,
catching up periods missed while the machine was off (see docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.bootstrap import Context
from cli.output import emit, format_option, status
from cli.records import now, parse_time
from cli.report_cmds import parse_formats, parse_scope, reading_service, reporting_service
from domain.reports import PeriodKind, ReportKind
from ledger.errors import ValidationError

pass_context = click.make_pass_decorator(Context)


@click.group("schedule")
def schedule() -> None:
    """Report schedules: cron expressions (UTC) that say when reports fall due."""


@schedule.command("add")
@click.argument("name")
@click.option("--cron", required=True, help='5 fields, UTC: "0 7 1 * *" is 07:00 on the 1st.')
@click.option(
    "--report",
    "kind",
    type=click.Choice([k.value for k in ReportKind]),
    default="governance",
    show_default=True,
)
@click.option("--service", help="A service id.")
@click.option("--all", "all_services", is_flag=True, help="Every service.")
@click.option(
    "--period",
    type=click.Choice([p.value for p in PeriodKind]),
    help="What each report covers (default: inferred from --cron, e.g. monthly → month).",
)
@click.option("--format", "formats", default="html,json", show_default=True)
@click.option(
    "--out",
    required=True,
    help="Output directory; a relative one is taken from the ledger directory (--dir).",
)
@click.option("--target-reduction", type=click.IntRange(0, 100))
@click.option("--publish", is_flag=True, help="Mark the reports for publication.")
@click.option(
    "--since", help="Periods that ended before this time are never issued (default: now)."
)
@pass_context
def add(
    ctx: Context,
    name: str,
    cron: str,
    kind: str,
    service: str | None,
    all_services: bool,
    period: str | None,
    formats: str,
    out: str,
    target_reduction: int | None,
    publish: bool,
    since: str | None,
) -> None:
    """Add a schedule (a signed `schedule.added` event).

    Example: calm-ledger --as lee schedule add board-monthly --cron "0 7 1 * *"
             --report governance --service ward-3 --format html,csv --out reports
    """
    from domain.reports import ScheduleParameters
    from projections.schedules import check_cron, infer_period

    expression = check_cron(cron)
    scope = parse_scope(service, all_services)
    chosen = PeriodKind(period) if period else infer_period(expression)
    if chosen is None:
        raise ValidationError(
            f"cannot tell which period {expression!r} reports on: pass --period"
            " week|month|quarter|year"
        )
    report_formats = parse_formats(formats)
    start = parse_time(since, "--since") if since else now()
    issuer = reporting_service(ctx)
    issuer.add_schedule(
        name,
        expression,
        ReportKind(kind),
        ScheduleParameters(
            service_id=scope,
            period=chosen,
            target_reduction_percent=target_reduction,
            publish=publish,
        ),
        report_formats,
        out,
        start,
    )
    click.echo(name)
    status(f"schedule {name!r} added: {chosen.value}ly reports, due at {expression!r} (UTC)")


@schedule.command("list")
@click.option("--removed", is_flag=True, help="Include removed schedules.")
@format_option
@pass_context
def list_schedules(ctx: Context, removed: bool, fmt: str | None) -> None:
    """Every schedule.

    Example: calm-ledger schedule list --format table
    """
    rows = []
    for s in reading_service(ctx).schedules(include_removed=removed):
        p = s.parameters
        if p is None or s.since is None:
            raise AssertionError("a schedule's added event sets its parameters")
        rows.append(
            {
                "name": s.name,
                "cron": s.cron,
                "report": s.kind.value,
                "period": p.period.value,
                "service": p.service_id or "all",
                "formats": ",".join(f.value for f in s.formats),
                "out": s.out_dir,
                "publish": p.publish,
                "since": s.since.isoformat().replace("+00:00", "Z"),
                "removed": s.removed,
            }
        )
    columns = ["name", "cron", "report", "period", "service", "formats", "out", "since"]
    emit(rows, fmt, [*columns, "removed"] if removed else columns)


@schedule.command("remove")
@click.argument("name")
@click.option("--reason", required=True)
@pass_context
def remove(ctx: Context, name: str, reason: str) -> None:
    """Remove a schedule (a signed `schedule.removed` event); reports issued stay issued.

    Example: calm-ledger --as lee schedule remove board-monthly --reason "replaced by quarterly"
    """
    reporting_service(ctx).remove_schedule(name, reason)
    status(f"schedule {name!r} removed")


@schedule.command("run-due")
@click.option("--now", "at", help="The time to run as (default: the clock); for catch-up tests.")
@click.option("--new-checkpoint", is_flag=True, help="Sign a checkpoint of the log first.")
@pass_context
def run_due_cmd(ctx: Context, at: str | None, new_checkpoint: bool) -> None:
    """Issue every due report exactly once: each period that has ended and whose cron time
    has come, including periods missed while the machine was off. Safe to run often and
    concurrently. Prints one line per report issued.

    Example: calm-ledger --as lee schedule run-due --new-checkpoint
    """
    from projections.issuing import IssuedByRun, run_due

    when = parse_time(at, "--now") if at else now()
    issuer = reporting_service(ctx)

    def show(issued: IssuedByRun) -> None:
        names = " ".join(str(p) for p in issued.paths)
        click.echo(f"{issued.schedule}\t{issued.label}\t{issued.report_id}\t{names}")

    log_key = ctx.unlock("log") if new_checkpoint else None
    summary = run_due(
        issuer, ctx.config.origin, when, Path(ctx.directory), log_key=log_key, on_issued=show
    )
    for name, label in summary.taken:
        status(f"{name} {label}: issued meanwhile by another run; skipped")
    for name, label, error in summary.failed:
        status(f"{name} {label}: not issued: {error.diagnostics()}")
    anchored = f" as of checkpoint {summary.checkpoint}" if summary.checkpoint else ""
    status(f"{len(summary.issued)} report(s) issued{anchored}")
    if summary.failed:
        raise summary.failed[0][2]
