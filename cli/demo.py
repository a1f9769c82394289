"""`calm-ledger demo`: a year of restrictive practice in three services, end to end.

It uses only what the other commands use: it records through the application service, catches
up the read tables, prints the metrics, findings and SPC signals a board would see, signs a
checkpoint, has a regulator's witness cosign it, exports a bundle and verifies it offline.
Every key's passphrase is "demo": the directory is marked as a demo and is for exploring only.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from cli.output import status, table
from domain.roles import Role
from ledger import note
from ledger.app import LedgerApp, open_app
from ledger.errors import ValidationError
from ledger.keys import Argon2Cost, SigningKey, write_keystore
from ledger.mapper import Signer
from ledger.recording import RecordingService
from ledger.setup import init_ledger
from ledger.store import parse_store_url

MARKER = ".calm-ledger-demo"
PASSPHRASE = "demo"
ORIGIN = "example.org/demo-ledger"
ACTORS = (
    ("lee", Role.SAFEGUARDING_LEAD),
    ("mo", Role.MANAGER),
    ("quinn", Role.AUTHORISER),
    ("sam", Role.RECORDER),
)
STEPS = 10


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-ledger"),
    show_default=True,
    help="Where to build the demo.",
)
@click.option(
    "--size",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="small ≈ 700 incidents; medium about 10 times more; large 100 times.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Same seed, same events, same metrics, same tree root.",
)
def demo(directory: Path, size: str, seed: int) -> None:
    """Build a demo ledger of a year in three services and show every part working.

    Example: calm-ledger demo --dir /tmp/demo --seed 7
    """
    from cli.demo_history import END, START, DemoHistory, Signers
    from domain.events import clock

    started = time.perf_counter()
    _clear(directory)
    rng = random.Random(seed)
    keys = {name: SigningKey(rng.randbytes(32)) for name in ("log", "ada", *dict(ACTORS))}
    step = _Steps()

    clock.fixed = START - timedelta(days=60)  # set-up is signed at a fixed, seeded time
    step("creating the ledger (the organisation's log key, first admin 'ada')")
    made = init_ledger(
        directory,
        origin=ORIGIN,
        db="sqlite:///ledger.db",
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        keys=(keys["log"], keys["ada"]),
        cost=_DEMO_KDF,
    )
    (directory / MARKER).write_text("made by 'calm-ledger demo'; safe to delete\n")
    app = open_app(parse_store_url("sqlite:///ledger.db", base=directory))
    app.envelope_mapper.random_bytes = rng.randbytes  # seeded salts and nonces

    step("enrolling a safeguarding lead, a manager, an authoriser and a recorder")
    admin = _service(app, "ada", keys, made.log_key.public_key)
    for name, role in ACTORS:
        write_keystore(
            directory / "keys" / f"{name}.key", name, keys[name], PASSPHRASE, cost=_DEMO_KDF
        )
        admin.enrol_actor(name, (role,), keys[name].public_key)

    step(f"recording 12 months in three services (seed {seed}, size {size})")
    signers = Signers(
        *(_service(app, n, keys, made.log_key.public_key) for n in ("lee", "sam", "mo", "quinn"))
    )
    with _bar("incidents") as advance:
        outcome = DemoHistory(signers, seed, size, progress=advance).build()
    clock.fixed = END + timedelta(days=7)  # the checkpoint and export follow the year

    step("catching up the read tables")
    from projections.readstore import ReadStore
    from projections.runtime import catch_up

    read = ReadStore(app.store_url)
    with _bar("events", total=app.store.head().size) as advance:
        catch_up(app, read, progress=_cumulative(advance))
    state = read.load_state()
    read.close()

    step("what a board would see")
    as_of = END + timedelta(days=7)
    _summary(state, as_of)
    click.echo(
        f"  learning loop: {outcome.revised_person}'s plan was revised on"
        f" {outcome.revised_at:%d %b %Y}; their use fell afterwards"
    )

    step("signing a checkpoint with the log key")
    from ledger.checkpoints import add_cosignatures, sign_checkpoint

    checkpoint = sign_checkpoint(app, ORIGIN, made.log_key)
    click.echo(f"  checkpoint: size {checkpoint.size}, root {checkpoint.checkpoint.root_hash}")

    step("issuing the board's governance report for October 2026 (a signed event)")
    paths = _report(app, keys["lee"], made.log_key.public_key, checkpoint, directory / "reports")
    click.echo(f"  {paths[0]}  (and {len(paths) - 1} more formats)")

    step("a regulator's witness checks and cosigns it")
    witness = SigningKey(rng.randbytes(32))
    line = note.cosign_with(
        note.format_checkpoint(checkpoint.checkpoint),
        "regulator.example",
        witness.public_key,
        witness.sign,
        int(as_of.timestamp()),
    )
    witness_vkey = note.format_verifier_key(
        "regulator.example", witness.public_key, note.SignatureType.COSIGNATURE_V1
    )
    add_cosignatures(
        app, ORIGIN, made.log_key.public_key, line, note.parse_verifier_key(witness_vkey)
    )

    step("exporting a regulator bundle (data level) and verifying it offline")
    bundle = directory / "regulator.bundle"
    _export(app, made.log_key, bundle)
    app.close()
    clock.fixed = None
    report = _verify(bundle, made.log_key.public_key, witness_vkey)
    for text in report.lines():
        click.echo(f"  {text}")
    log_vkey = note.format_verifier_key(ORIGIN, made.log_key.public_key)
    click.echo(
        f"\n{'verified' if report.verified else 'NOT VERIFIED'}: {outcome.incidents}"
        f" incidents, {checkpoint.size} signed events, in"
        f" {time.perf_counter() - started:.1f} s. Explore (passphrase 'demo'):"
    )
    for command in (
        "incidents list --service ward-3 --type 01",
        "metrics --service ward-3 --from 2025-11-01 --to 2026-10-31",
        "spc rate_per_1000 --service ward-3 --from 2025-11-01 --to 2026-10-31",
        "compliance --overdue --as-of 2026-11-08T00:00Z",
        f"audit person {outcome.revised_person}",
        f"report verify {paths[-1]}",
        "verify",
    ):
        click.echo(f"  calm-ledger --dir {directory} {command}")
    click.echo(f"  calm-ledger verify-bundle {bundle} --trusted-key '{log_vkey}'")
    if not report.verified:
        raise click.exceptions.Exit(1)


# Demo keys are protected by a known passphrase anyway; a light KDF keeps the demo quick.
_DEMO_KDF = Argon2Cost(memory_kib=8192, iterations=1, lanes=1)


def _service(
    app: LedgerApp, name: str, keys: dict[str, SigningKey], log_public_key: bytes
) -> RecordingService:
    return RecordingService(app, Signer(name, keys[name]), log_public_key)


def _summary(state: Any, as_of: Any) -> None:
    from projections.compliance import Status, evaluate
    from projections.metrics import compute_metrics, metric_series
    from projections.spc import xmr

    rows = []
    for service_id in sorted(state.services):
        months = compute_metrics(
            state,
            service_id=service_id,
            start=as_of.date().replace(year=as_of.year - 1, day=1),
            end=(as_of - timedelta(days=8)).date(),
            by="month",
        )
        total = sum(m.interventions for m in months)
        last = months[-1]
        chart = xmr(metric_series(months, "rate_per_1000"))
        rows.append(
            {
                "service": service_id,
                "interventions (12 mo)": total,
                "people": len({i.person_id for i in state.incidents_of(service_id)}),
                "rate/1,000 (last mo)": _round(last.rate_per_1000, 1),
                "prone share": _round(last.prone_share, 3),
                "SPC signals": len(chart.signals),
            }
        )
        for signal in chart.signals[:2]:
            status(f"  SPC {service_id}: {signal.explanation}")
    click.echo(table(rows, list(rows[0])))
    findings = [f for f in evaluate(state, as_of) if f.status is not Status.MET_LATE]
    by_rule: dict[str, int] = {}
    for f in findings:
        by_rule[f.rule_id] = by_rule.get(f.rule_id, 0) + 1
    top = sorted(by_rule.items(), key=lambda kv: -kv[1])[:5]
    click.echo("  top findings: " + ", ".join(f"{rule} ({n})" for rule, n in top))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _report(
    app: LedgerApp, lead: SigningKey, log_public_key: bytes, checkpoint: Any, out: Path
) -> list[Path]:
    from uuid import UUID

    from cli.report_cmds import parse_formats
    from ledger.reporting import ReportingService
    from projections.issuing import (
        ReportOptions,
        anchor_of,
        issue_report,
        prepare_out_dir,
        render_report,
        report_parameters,
        state_at,
    )
    from projections.schedules import parse_period

    issuer = ReportingService(app, Signer("lee", lead), log_public_key)
    options = ReportOptions("ward-3", parse_formats("html,md,csv,json"), 20, False)
    state = state_at(app, checkpoint.size)
    parameters = report_parameters(state, options, parse_period("2026-10"), True)
    prepare_out_dir(out)
    report_id = UUID(int=checkpoint.size, version=4)  # deterministic for a seed
    anchor = anchor_of(checkpoint)
    rendered = render_report(state, report_id, parameters, anchor, options.formats)
    return list(issue_report(issuer, report_id, parameters, anchor, rendered, out))


def _export(app: LedgerApp, log_key: SigningKey, out: Path) -> None:
    from datetime import UTC, datetime

    from ledger.bundle import Disclosure
    from ledger.canonical import format_datetime
    from ledger.export import ExportRequest, export_bundle
    from projections.bundles import MetricsFold

    folded = MetricsFold()  # what verify-bundle's check 12 folds
    request = ExportRequest(
        out=out,
        scope=(),
        disclosure=Disclosure.DATA,
        recipient="regulator",
        previous_checkpoint=None,
        to_size=None,
        created_at=format_datetime(datetime.now(UTC)),
        sign=log_key.sign,
    )
    export_bundle(
        app,
        ORIGIN,
        log_key.public_key,
        request,
        on_entry=folded.add_entry,
        metrics=folded.metrics,
    )


def _verify(bundle: Path, log_public_key: bytes, witness_vkey: str) -> Any:
    from ledger.bundle import verify_bundle
    from projections.bundles import MetricsFold, check_bundle_metrics

    fold = MetricsFold()  # as verify-bundle does: the metrics folded as the entries are checked
    result = verify_bundle(
        bundle,
        trusted_key=note.NoteVerifierKey(ORIGIN, log_public_key),
        witness_keys=[note.parse_verifier_key(witness_vkey)],
        witness_quorum=1,
        on_event=fold.add,
    )
    check_bundle_metrics(bundle, result, fold)
    return result.report


class _Steps:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, text: str) -> None:
        self.n += 1
        click.echo(f"[{self.n}/{STEPS}] {text}")


class _bar:
    """A progress bar on stderr; the body gets a function to advance it."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.bar = click.progressbar(
            length=total or 0,
            label=f"  {label}",
            file=sys.stderr,
            show_pos=True,
            show_percent=total is not None,
        )

    def __enter__(self) -> Callable[[int], None]:
        self.bar.__enter__()
        return self.bar.update

    def __exit__(self, *args: object) -> None:
        self.bar.__exit__(*args)  # type: ignore[arg-type]


def _cumulative(advance: Callable[[int], None]) -> Callable[[int], None]:
    done = [0]

    def update(total: int) -> None:
        advance(total - done[0])
        done[0] = total

    return update


def _clear(directory: Path) -> None:
    """Reuse a previous demo's directory; never touch anything else."""
    if not directory.exists():
        return
    if (directory / MARKER).exists():
        shutil.rmtree(directory)
    elif any(directory.iterdir()):
        raise ValidationError(f"{directory} exists and is not a demo ledger: choose another --dir")
