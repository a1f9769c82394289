"""`calm-ledger report governance` and `report verify`: issue a signed governance report, and
check an issued report file against the ledger or an export bundle."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import click

from cli.bootstrap import Context
from cli.output import status
from cli.records import parse_day
from domain.reports import ReportFormat
from ledger.errors import ValidationError, VerificationError

if TYPE_CHECKING:
    from ledger.reporting import ReportingService
    from projections.schedules import Period

pass_context = click.make_pass_decorator(Context)
FORMAT_NAMES = ", ".join(f.value for f in ReportFormat)


def parse_formats(text: str) -> tuple[ReportFormat, ...]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ValidationError(f"--format needs at least one of: {FORMAT_NAMES}")
    formats = []
    for name in names:
        try:
            fmt = ReportFormat(name)
        except ValueError:
            raise ValidationError(
                f"unknown --format {name!r}; choose from: {FORMAT_NAMES}"
            ) from None
        if fmt not in formats:
            formats.append(fmt)
    return tuple(formats)


def parse_scope(service: str | None, all_services: bool) -> str | None:
    if bool(service) == all_services:
        raise ValidationError("say which services: --service ID or --all (one of them)")
    return service


def reporting_service(ctx: Context) -> ReportingService:
    from ledger.reporting import ReportingService

    return ReportingService(ctx.app, ctx.signer(), ctx.config.log_public_key)


def reading_service(ctx: Context) -> ReportingService:
    """For reads: no key is unlocked, and its signer is no enrolled actor (writes refused)."""
    from ledger.keys import SigningKey
    from ledger.mapper import Signer
    from ledger.reporting import ReportingService

    nobody = Signer("", SigningKey(bytes(32)))
    return ReportingService(ctx.app, nobody, ctx.config.log_public_key)


@click.group("report")
def report() -> None:
    """Governance reports: issue one (a signed fact in the ledger), or verify an issued file."""


@report.command("governance")
@click.option("--service", help="A service id.")
@click.option("--all", "all_services", is_flag=True, help="Every service.")
@click.option("--period", help="2026-10 (month), 2026-W41 (ISO week), 2026-Q4 or 2026.")
@click.option("--from", "start", help="First day, YYYY-MM-DD (with --to, instead of --period).")
@click.option("--to", "end", help="Last day, YYYY-MM-DD.")
@click.option(
    "--format",
    "formats",
    default="html,json",
    show_default=True,
    help=f"Comma-separated: {FORMAT_NAMES}.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--baseline-from", help="Baseline start (default: 12 months before the period).")
@click.option("--baseline-to", help="Baseline end.")
@click.option("--no-baseline", is_flag=True, help="Compare with no baseline.")
@click.option(
    "--target-reduction",
    type=click.IntRange(0, 100),
    help="Target: this % fewer interventions per 1,000 person-days than the baseline.",
)
@click.option("--publish", is_flag=True, help="Mark for publication: disclosure control.")
@click.option(
    "--checkpoint",
    "checkpoint_size",
    type=click.IntRange(min=1),
    help="A stored checkpoint's size (default: the latest).",
)
@click.option(
    "--new-checkpoint", is_flag=True, help="Sign a checkpoint of the log first (log key)."
)
@pass_context
def governance(
    ctx: Context,
    service: str | None,
    all_services: bool,
    period: str | None,
    start: str | None,
    end: str | None,
    formats: str,
    out: Path,
    baseline_from: str | None,
    baseline_to: str | None,
    no_baseline: bool,
    target_reduction: int | None,
    publish: bool,
    checkpoint_size: int | None,
    new_checkpoint: bool,
) -> None:
    """Issue a governance report, computed as of a signed checkpoint, and record it as a
    signed `report.issued` event before writing its files to --out.

    Example: calm-ledger --as lee report governance --service ward-3 --period 2026-10
             --format html,md,csv,json --out reports/
    """
    from projections.issuing import (
        ReportOptions,
        anchor_of,
        choose_checkpoint,
        issue_report,
        prepare_out_dir,
        render_report,
        report_parameters,
        state_at,
    )

    # Everything the user typed is checked before anything is read, signed or written.
    options = ReportOptions(
        parse_scope(service, all_services), parse_formats(formats), target_reduction, publish
    )
    chosen = parse_report_period(period, start, end)
    baseline = _baseline(baseline_from, baseline_to, no_baseline)
    if checkpoint_size is not None and new_checkpoint:
        raise ValidationError("give --checkpoint SIZE or --new-checkpoint, not both")

    issuer = reporting_service(ctx)
    issuer.authorise("report.issued")
    config = ctx.config
    log_key = ctx.unlock("log") if new_checkpoint else None
    checkpoint = choose_checkpoint(
        ctx.app, config.origin, config.log_public_key, size=checkpoint_size, log_key=log_key
    )
    with_head = ctx.app.store.head().size
    if with_head > checkpoint.size and not new_checkpoint:
        status(
            f"note: {with_head - checkpoint.size} event(s) recorded since checkpoint"
            f" {checkpoint.size} are not in this report (sign a checkpoint first, or pass"
            " --new-checkpoint)"
        )
    state = state_at(ctx.app, checkpoint.size)
    parameters = report_parameters(state, options, chosen, baseline)
    prepare_out_dir(out)
    report_id = uuid4()
    anchor = anchor_of(checkpoint)
    rendered = render_report(state, report_id, parameters, anchor, options.formats)
    paths = issue_report(issuer, report_id, parameters, anchor, rendered, out)
    for path in paths:
        click.echo(str(path))
    status(
        f"issued report {report_id} (governance, {parameters.service_id or 'all services'},"
        f" {parameters.label}) as of checkpoint {anchor.size}; content sha256 {rendered.digest}"
    )


def parse_report_period(period: str | None, start: str | None, end: str | None) -> Period:
    from projections.schedules import parse_period, range_period

    if period and (start or end):
        raise ValidationError("give --period, or --from and --to, not both")
    if period:
        return parse_period(period)
    if not (start and end):
        raise ValidationError("say which period: --period 2026-10, or --from DAY --to DAY")
    return range_period(parse_day(start, "--from"), parse_day(end, "--to"))


def _baseline(start: str | None, end: str | None, none: bool) -> tuple[date, date] | bool:
    if none:
        if start or end:
            raise ValidationError("--no-baseline cannot be combined with --baseline-from/-to")
        return False
    if not start and not end:
        return True
    if not (start and end):
        raise ValidationError("give both --baseline-from and --baseline-to")
    first, last = parse_day(start, "--baseline-from"), parse_day(end, "--baseline-to")
    if last < first:
        raise ValidationError(f"--baseline-to ({last}) is before --baseline-from ({first})")
    return first, last


@report.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify against an export bundle (from leaf 0) instead of the ledger.",
)
@click.option("--trusted-key", help="With --bundle: the log's verifier key.")
@pass_context
def verify(ctx: Context, file: Path, bundle: Path | None, trusted_key: str | None) -> None:
    """Check that FILE is a report the ledger issued and that its figures follow from the log
    at its checkpoint: recompute it and compare. Exit 1, naming what differs, if not.

    Example: calm-ledger report verify reports/governance-ward-3-2026-10-1a2b3c4d.html
    """
    from projections.issuing import read_report_file

    raw, fmt, report_id = read_report_file(file)
    if trusted_key and not bundle:
        raise ValidationError("--trusted-key goes with --bundle")
    if bundle is not None:
        lines = _verify_with_bundle(raw, fmt, report_id, bundle, trusted_key)
    else:
        lines = _verify_with_ledger(ctx, raw, fmt, report_id)
    for line in lines:
        click.echo(line)
    click.echo(f"verified: {file.name} is report {report_id} as issued")


def _verify_with_ledger(ctx: Context, raw: bytes, fmt: ReportFormat, report_id: UUID) -> list[str]:
    from projections.issuing import root_at, state_at, verify_with

    event = reading_service(ctx).issued(report_id)
    size = event.checkpoint_size
    root = root_at(ctx.app, size)
    state = state_at(ctx.app, size)
    return verify_with(raw, fmt, event, ctx.config.origin, state, root).lines


def _verify_with_bundle(
    raw: bytes, fmt: ReportFormat, report_id: UUID, bundle: Path, trusted_key: str | None
) -> list[str]:
    from domain.reports import as_issued
    from ledger import note
    from ledger.bundle import verify_bundle
    from projections.bundles import BundleState, entry_event
    from projections.issuing import issued_event_in, root_of_headers, verify_with

    if not trusted_key:
        raise ValidationError("no trusted key: pass --trusted-key (the log's verifier key)")
    result = verify_bundle(bundle, trusted_key=note.parse_verifier_key(trusted_key))
    if not result.report.verified or result.manifest is None:
        failures = "; ".join(f.line() for f in result.report.failures[:3])
        raise VerificationError(f"the bundle does not verify: {failures}", step="bundle")
    if result.manifest.first != 0:
        raise ValidationError(
            f"the bundle starts at leaf {result.manifest.first}: recomputing a report needs"
            " the log from leaf 0 (export without --from-checkpoint)"
        )
    events = result.events
    n = issued_event_in(events, report_id)
    header, data = events[n]
    event = as_issued(entry_event(header, data or b""))
    if event is None:
        raise AssertionError("a report.issued entry is a report.issued event")
    size = event.checkpoint_size
    if size > n:
        raise VerificationError(
            f"the report states checkpoint {size} but was issued at leaf {n}", step="checkpoint"
        )
    root = root_of_headers((h for h, _ in events), size)
    state = BundleState().add_all(events[:size])
    lines = verify_with(raw, fmt, event, result.manifest.origin, state, root).lines
    return [f"0. bundle: {bundle.name} verifies against the trusted key", *lines]
