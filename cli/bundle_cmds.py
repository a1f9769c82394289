"""`calm-ledger export`, `verify-bundle` and `bundle …`: what regulators receive and check.

verify-bundle and bundle need nothing but the file and the trusted key: they never open a
ledger, a database or the network.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click

from cli.bootstrap import Context
from cli.files import read_text_file
from cli.output import emit, format_option, status
from cli.records import parse_time
from ledger import note
from ledger.bundle import BundleVerification, Disclosure, verify_bundle
from ledger.canonical import format_datetime
from ledger.errors import LedgerError, ValidationError, VerificationError
from projections.bundles import BundleState, MetricsFold, check_bundle_metrics

pass_context = click.make_pass_decorator(Context)


@click.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--from-checkpoint",
    "previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The recipient's previous checkpoint: export from there.",
)
@click.option("--to-size", type=click.IntRange(min=1), help="A signed checkpoint's size.")
@click.option("--scope", "scopes", multiple=True, help="service:ID (repeatable).")
@click.option(
    "--disclose",
    type=click.Choice([d.value for d in Disclosure]),
    default="data",
    show_default=True,
    help="Headers only; + data; + personal disclosures.",
)
@click.option("--recipient", default="regulator", show_default=True)
@pass_context
def export(
    ctx: Context,
    out: Path,
    previous: Path | None,
    to_size: int | None,
    scopes: tuple[str, ...],
    disclose: str,
    recipient: str,
) -> None:
    """Write a signed export bundle of a contiguous range of the log.

    Example: calm-ledger export --out q3.bundle --from-checkpoint q2-checkpoint.txt
             --scope service:ward-3 --disclose data --recipient cqc
    """
    from ledger.export import ExportRequest, export_bundle

    services = tuple(_service(s) for s in scopes)
    request = ExportRequest(
        out=out,
        scope=services,
        disclosure=Disclosure(disclose),
        recipient=recipient,
        previous_checkpoint=read_text_file(previous) if previous else None,
        to_size=to_size,
        created_at=format_datetime(datetime.now(UTC)),
        sign=ctx.unlock("log").sign,
    )
    folded = MetricsFold()  # the fold check 12 makes, so the stated figures are its own
    config = ctx.config
    manifest = export_bundle(
        ctx.app,
        config.origin,
        config.log_public_key,
        request,
        on_entry=folded.add_entry,
        metrics=folded.metrics,
    )
    status(
        f"exported leaves {manifest.first}..{manifest.size - 1} to {out}"
        f" ({manifest.counts['with_data']} with data, {manifest.counts['disclosures']}"
        f" disclosures)"
    )


def _service(scope: str) -> str:
    kind, _, ident = scope.partition(":")
    if kind != "service" or not ident:
        raise ValidationError(f"invalid --scope {scope!r}: use service:ID")
    return ident


def _verify(
    file: Path,
    trusted_key: str | None,
    previous: Path | None,
    witness_keys: tuple[str, ...],
    quorum: int,
) -> BundleVerification:
    if not trusted_key:
        raise ValidationError("no trusted key: pass --trusted-key (the log's verifier key)")
    trusted = note.parse_verifier_key(trusted_key)
    witnesses = [note.parse_verifier_key(k) for k in witness_keys]
    if quorum > len(witnesses):
        raise ValidationError(f"a quorum of {quorum} needs at least {quorum} --witness-key")
    fold = MetricsFold()  # check 12 folds the entries as they are checked: one read
    result = verify_bundle(
        file,
        trusted_key=trusted,
        previous_checkpoint=read_text_file(previous) if previous else None,
        witness_keys=witnesses,
        witness_quorum=quorum,
        on_event=fold,  # an EventFold: worker processes decode the events for it
    )
    check_bundle_metrics(file, result, fold)
    return result


def verification_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--trusted-key", help="The log's verifier key (name+id+key). Required."),
            click.option(
                "--previous-checkpoint",
                "previous",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="The last checkpoint you verified.",
            ),
            click.option(
                "--witness-key",
                "witness_keys",
                multiple=True,
                help="A witness's verifier key (repeatable).",
            ),
            click.option(
                "--witness-quorum",
                "quorum",
                type=click.IntRange(min=0),
                default=0,
                help="How many of those witnesses must have cosigned.",
            ),
        ]
    ):
        func = option(func)
    return func


@click.command("verify-bundle")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@verification_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def verify_bundle_cmd(
    file: Path,
    trusted_key: str | None,
    previous: Path | None,
    witness_keys: tuple[str, ...],
    quorum: int,
    fmt: str,
) -> None:
    """Verify an export bundle offline: exit 0 verified, 1 not verified, 2 unusable input.

    Example: calm-ledger verify-bundle q3.bundle --trusted-key "example.org/ward+1a2b3c4d+AX…"
             --previous-checkpoint q2-checkpoint.txt
    """
    result = _verify(file, trusted_key, previous, witness_keys, quorum)
    report = result.report
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        m = result.manifest
        span = f"leaves {m.first}..{m.size - 1} of {m.origin}" if m else "the bundle"
        click.echo(f"verified {span}" if report.verified else f"NOT VERIFIED: {span}")
    for failure in report.failures:
        click.echo(failure.line(), err=True)
    if not report.verified:
        raise click.exceptions.Exit(1)


class _FileFirstGroup(click.Group):
    """Lets the group's own options follow FILE (`bundle FILE --trusted-key K metrics`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = set(self.commands)
        if args and not args[0].startswith("-"):
            for i, token in enumerate(args[1:], 1):
                if token in names:
                    args = [*args[1:i], args[0], *args[i:]]
                    break
        return super().parse_args(ctx, args)


@click.group("bundle", cls=_FileFirstGroup)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@verification_options
@click.pass_context
def bundle(
    click_ctx: click.Context,
    file: Path,
    trusted_key: str | None,
    previous: Path | None,
    witness_keys: tuple[str, ...],
    quorum: int,
) -> None:
    """Explore a bundle offline, after verifying it (an unverified bundle is refused).

    Example: calm-ledger bundle q3.bundle --trusted-key "…" metrics --service ward-3
    """
    result = _verify(file, trusted_key, previous, witness_keys, quorum)
    if not result.report.verified:
        for failure in result.report.failures:
            click.echo(failure.line(), err=True)
        raise VerificationError("the bundle does not verify; refusing to read it")
    state = BundleState()
    state.add_all(result.events)
    click_ctx.obj = (result, state.state)


@bundle.command("metrics")
@click.option("--service")
@click.option("--by", type=click.Choice(["week", "month", "quarter", "year"]), default="month")
@format_option
@click.pass_obj
def bundle_metrics_cmd(obj: Any, service: str | None, by: str, fmt: str | None) -> None:
    """Reduction metrics computed from the bundle's events alone (no disclosure control)."""
    from projections.metrics import Period, as_rows, compute_metrics, incident_date

    _, state = obj
    incidents = state.incidents_of(service)
    if not incidents:
        raise LedgerError(
            "no incidents with data in the bundle" + (f" for {service}" if service else "")
        )
    days = [incident_date(i) for i in incidents]
    period = cast(Period, by)
    rows = as_rows(
        compute_metrics(state, service_id=service, start=min(days), end=max(days), by=period)
    )
    emit(rows, fmt, list(rows[0]))


@bundle.command("incidents")
@click.option("--service")
@format_option
@click.pass_obj
def bundle_incidents(obj: Any, service: str | None, fmt: str | None) -> None:
    """The incident register of the bundle."""
    _, state = obj
    rows = [
        {
            "incident": i.ref,
            "service": i.service_id,
            "person": i.person_id,
            "start": i.start.isoformat(),
            "minutes": round(i.minutes, 1),
            "types": [v.type.value for v in i.interventions],
            "planned": i.planned,
        }
        for i in state.incidents_of(service)
    ]
    emit(rows, fmt, ["incident", "service", "person", "start", "minutes", "types", "planned"])


@bundle.command("audit")
@click.argument("what", type=click.Choice(["incident"]))
@click.argument("ref")
@format_option
@click.pass_obj
def bundle_audit(obj: Any, what: str, ref: str, fmt: str | None) -> None:
    """Every event of an incident in the bundle, with its signer and key (all verified)."""
    result, state = obj
    incident = state.incidents.get(ref)
    if incident is None:
        raise LedgerError(f"no incident {ref!r} with data in the bundle")
    rows = [
        {
            "version": h.version,
            "type": h.type,
            "signed_by": h.actor,
            "key_id": h.key_id,
            "recorded_at": h.recorded_at,
            "signature": "valid",
        }
        for h, _ in result.events
        if h.stream == incident.stream
    ]
    emit(rows, fmt, ["version", "type", "signed_by", "key_id", "recorded_at", "signature"])


@bundle.command("compliance")
@click.option("--as-of", "as_of", required=True, help="The time findings are computed at.")
@click.option("--service")
@format_option
@click.pass_obj
def bundle_compliance(obj: Any, as_of: str, service: str | None, fmt: str | None) -> None:
    """Compliance findings from the bundle's events, as of a stated time."""
    from projections.compliance import evaluate

    _, state = obj
    findings = evaluate(state, parse_time(as_of, "--as-of"), service_id=service)
    rows = [f.row() for f in findings]
    emit(rows, fmt, ["rule", "status", "service", "subject", "due", "message"])
