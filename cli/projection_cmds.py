"""`calm-ledger projections …` and `calm-ledger audit …`: the read tables and audit trails."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from cli.bootstrap import Context
from cli.output import emit, format_option, status
from ledger.config import LOG_ACTOR
from ledger.envelope import decode_envelope, signing_input
from ledger.errors import LedgerError, VerificationError
from ledger.keys import actor_key_id, failing_signatures

# projections.runtime (the fold, every event model, eventsourcing: ~300 ms) is imported by the
# commands that replay the log, not at the top: `audit` reads the audit table and the leaves.

if TYPE_CHECKING:
    from projections.readstore import ReadStore

pass_context = click.make_pass_decorator(Context)


@click.group()
def projections() -> None:
    """The read tables: status, catch-up, rebuild, follow, verify."""


@projections.command("status")
@format_option
@pass_context
def show_status(ctx: Context, fmt: str | None) -> None:
    """How far the read tables are behind the log.

    Example: calm-ledger projections status
    """
    from projections.runtime import status as read_status

    s = read_status(ctx.app, ctx.read_model(current=False))
    emit(
        [{"log_size": s.log_size, "applied": s.position, "lag": s.lag}],
        fmt,
        ["log_size", "applied", "lag"],
    )


@projections.command("rebuild")
@pass_context
def rebuild_cmd(ctx: Context) -> None:
    """Drop the read tables and replay the whole log (with a progress bar).

    Example: calm-ledger projections rebuild
    """
    from projections.runtime import rebuild

    read = ctx.read_model(current=False)
    total = ctx.app.store.head().size
    with click.progressbar(length=total, label="replaying the log", file=sys.stderr) as bar:
        done = [0]

        def advance(applied: int) -> None:
            bar.update(applied - done[0])
            done[0] = applied

        applied = rebuild(ctx.app, read, progress=advance)
    status(f"rebuilt the read tables from {applied} events")


@projections.command("follow")
@click.option(
    "--interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between polls (SQLite) or the longest wait for a NOTIFY (PostgreSQL).",
)
@pass_context
def follow_cmd(ctx: Context, interval: float) -> None:
    """Keep the read tables current until interrupted (Ctrl-C or SIGTERM).

    Example: calm-ledger projections follow
    """
    from projections.runtime import follow

    read = ctx.read_model(current=False)
    stopping = [False]

    def stop(*_: Any) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status("following the log; Ctrl-C to stop")
    follow(
        ctx.app,
        read,
        interval=interval,
        should_stop=lambda: stopping[0],
        on_batch=lambda n: status(f"applied {n} events"),
    )


@projections.command("verify")
@pass_context
def verify_cmd(ctx: Context) -> None:
    """Recompute the read tables from the log and compare; exit 1 if they differ.

    Example: calm-ledger projections verify || calm-ledger projections rebuild
    """
    from projections.runtime import verify_read_model

    read = ctx.read_model()
    problems = verify_read_model(ctx.app, read)
    for problem in problems[:50]:
        status(f"FAIL {problem}")
    if problems:
        raise VerificationError(
            f"{len(problems)} read-table entries differ from the log; run"
            " 'calm-ledger projections rebuild'",
            step="projections",
        )
    click.echo("read tables agree with the log")


@click.group()
def audit() -> None:
    """Audit trails: every event about an incident, a person, or by an actor."""


def _audit(ctx: Context, column: str, value: str, fmt: str | None) -> None:
    read = ctx.read_model()
    rows = read.audit(column, value)
    if not rows:
        raise LedgerError(f"no events for {value!r}")
    actor_leaves = read.actor_leaves()
    states = _log_states(ctx, read, [*actor_leaves, *(row.leaf for row in rows)])
    keys = _actor_keys(ctx, [states.get(leaf) for leaf in actor_leaves])
    statuses = _signature_statuses([states.get(row.leaf) for row in rows], keys)
    out = []
    for row, signature in zip(rows, statuses, strict=True):
        out.append(
            {
                "leaf": row.leaf,
                "recorded_at": row.recorded_at,
                "type": row.type,
                "signed_by": row.actor,
                "role": ",".join(keys.get(row.actor, ({}, ()))[1]),
                "key_id": row.key_id,
                "stream": row.stream,
                "version": row.version,
                "signature": signature,
            }
        )
    emit(out, fmt, ["leaf", "recorded_at", "type", "signed_by", "role", "key_id", "signature"])


def _log_states(ctx: Context, read: ReadStore, leaves: list[int]) -> dict[int, bytes | None]:
    """The stored events at these leaves, in one read, without opening the ledger
    application (eventsourcing, the mapper and every event model: ~100 ms of start-up)."""
    from ledger.store.reads import LogReader

    pg = read.connect() if ctx.store_url.backend == "postgresql" else None
    reader = LogReader(ctx.store_url, pg)
    try:
        return reader.leaf_states(leaves)
    finally:
        reader.close()


def _actor_keys(
    ctx: Context, states: list[bytes | None]
) -> dict[str, tuple[dict[str, bytes], tuple[str, ...]]]:
    """Every key each actor has held (by key id), and its current roles: from the actor
    events alone, found through the audit table instead of a scan of the whole log."""
    import base64

    found: dict[str, tuple[dict[str, bytes], tuple[str, ...]]] = {
        LOG_ACTOR: ({actor_key_id(ctx.config.log_public_key): ctx.config.log_public_key}, ("log",))
    }
    names: dict[str, str] = {}
    for state in states:
        if state is None:
            continue
        envelope = decode_envelope(state)
        data, header = envelope.data(), envelope.header()
        if not header.type.startswith("actor."):
            continue
        if header.type == "actor.enrolled":
            names[header.stream] = data["name"]
            found[data["name"]] = ({}, tuple(data["roles"]))
        name = names.get(header.stream)
        if name and "public_key" in data:
            key = base64.b64decode(data["public_key"])
            found[name][0][actor_key_id(key)] = key
    return found


def _signature_statuses(states: list[bytes | None], keys: dict[str, Any]) -> list[str]:
    """Each stored event's signature: valid, INVALID, missing (no event at the leaf) or
    unknown key. Checked together: a long trail's signatures on every CPU at once."""
    statuses: list[str] = []
    checks: list[tuple[bytes, bytes, bytes]] = []
    checked_at: list[int] = []
    for state in states:
        if state is None:
            statuses.append("missing")
            continue
        envelope = decode_envelope(state)
        header = envelope.header()
        key = keys.get(header.actor, ({}, ()))[0].get(header.key_id)
        if key is None:
            statuses.append("unknown key")
            continue
        checked_at.append(len(statuses))
        statuses.append("valid")
        checks.append((key, signing_input(header.raw), envelope.signature))
    for index in failing_signatures(checks):
        statuses[checked_at[index]] = "INVALID"
    return statuses


@audit.command("incident")
@click.argument("ref")
@format_option
@pass_context
def audit_incident(ctx: Context, ref: str, fmt: str | None) -> None:
    """Every event of an incident, with signer, role, key and whether the signature verifies.

    Example: calm-ledger audit incident INC-1A2B3C4D5E6F
    """
    _audit(ctx, "incident_ref", ref, fmt)


@audit.command("person")
@click.argument("person_id")
@format_option
@pass_context
def audit_person(ctx: Context, person_id: str, fmt: str | None) -> None:
    """Every event about a person (registration, plans, incidents).

    Example: calm-ledger audit person P-7F3A
    """
    _audit(ctx, "person_id", person_id, fmt)


@audit.command("actor")
@click.argument("name")
@format_option
@pass_context
def audit_actor(ctx: Context, name: str, fmt: str | None) -> None:
    """Every event an actor signed.

    Example: calm-ledger audit actor sam
    """
    _audit(ctx, "actor", name, fmt)
