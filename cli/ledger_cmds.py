"""Ledger-wide commands: init, log, verify, erase."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.bootstrap import Context, passphrase
from cli.output import emit, format_option, status
from ledger.actors import check_actor_name
from ledger.app import storage_errors
from ledger.config import DEFAULT_DB, check_origin
from ledger.envelope import decode_envelope
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from ledger.verify_store import verify_store

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.option("--origin", required=True, help="The log's name, e.g. example.org/restraint-ledger.")
@click.option("--admin", required=True, help="Name of the first administrator actor.")
@click.option("--db", "db_url", default=None, help=f"Store URL (default {DEFAULT_DB} in --dir).")
@pass_context
def init(ctx: Context, origin: str, admin: str, db_url: str | None) -> None:
    """Create a ledger: its store, the organisation's log key and the first admin.

    Passphrases come from CALM_LEDGER_PASSPHRASE or are asked for.

    Example: calm-ledger --dir ward-ledger init --origin example.org/ward --admin ada
    """
    check_origin(origin)
    check_actor_name(admin)
    db = db_url or ctx.db_override or DEFAULT_DB
    parse_store_url(db, base=ctx.directory)
    log_pass = passphrase("Passphrase for the organisation's log key", confirm=True)
    admin_pass = passphrase(f"Passphrase for {admin}", confirm=True)
    created = init_ledger(
        ctx.directory,
        origin=origin,
        db=db,
        admin=admin,
        log_passphrase=log_pass,
        admin_passphrase=admin_pass,
    )
    status(f"created ledger {origin} in {ctx.directory} ({parse_store_url(db).backend})")
    status(f"log key {created.log_key.key_id}; admin {admin!r} key {created.admin_key.key_id}")


@click.command()
@format_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N entries.")
@click.option("--start", type=click.IntRange(min=0), default=0, help="First leaf index.")
@pass_context
def log(ctx: Context, fmt: str | None, limit: int | None, start: int) -> None:
    """List envelopes in log order: leaf, type, stream, version, actor, time.

    Example: calm-ledger log --limit 20 --format table
    """
    stop = None if limit is None else start + limit
    rows: list[dict[str, Any]] = []
    with storage_errors(ctx.store_url):
        for leaf in ctx.app.store.iter_leaves(start=start, stop=stop):
            rows.append(_log_row(leaf.leaf_index, leaf.notification_id, leaf.event))
    emit(rows, fmt, ["leaf", "notification", "type", "stream", "version", "actor", "recorded_at"])


def _log_row(leaf: int, notification: int, event: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"leaf": leaf, "notification": notification}
    if event is None:
        return {**row, "type": "(missing event)"}
    header = decode_envelope(event.state).header()
    return {
        **row,
        "type": header.type,
        "stream": header.stream,
        "version": header.version,
        "actor": header.actor,
        "key_id": header.key_id,
        "recorded_at": header.recorded_at,
    }


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def verify(ctx: Context, fmt: str) -> None:
    """Re-check every signature, signer, chain, digest, disclosure, leaf, the tree and every
    checkpoint. Exit 0 when all hold, 1 when anything fails (each failure named on stderr).

    Example: calm-ledger verify
    """
    config = ctx.config
    report = verify_store(
        ctx.app,
        origin=config.origin,
        log_name=config.origin,
        log_public_key=config.log_public_key,
    )
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        click.echo("verified" if report.verified else "NOT VERIFIED")
    for failure in report.failures:
        status(failure.line())
    if not report.verified:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("subject")
@click.option("--reason", required=True, help="Why (e.g. retention period ended, DSAR).")
@pass_context
def erase(ctx: Context, subject: str, reason: str) -> None:
    """Erase a subject's personal data: destroy their data key and record a signed erasure.

    Every signature and proof still verifies; sealed fields read as erased.

    Example: calm-ledger --as ada erase P-7F3A --reason "retention period ended"
    """
    erasure = ctx.service().erase_subject(subject, reason)
    status(f"erased {subject}: data key destroyed; erasure recorded as {erasure}")
