"""Keeping the read tables current: catch up, rebuild, follow, status, verify."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.events import DomainEvent
from ledger.app import LedgerApp, storage_errors
from ledger.envelope import Header, decode_envelope
from ledger.errors import Conflict, VerificationError
from ledger.mapper import build_event, sealed_as_none
from projections.fold import apply, fold
from projections.readstore import KINDS, AuditRow, ReadStore

BATCH = 1000
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Status:
    log_size: int
    position: int

    @property
    def lag(self) -> int:
        return self.log_size - self.position


def status(app: LedgerApp, read: ReadStore) -> Status:
    with storage_errors(app.store_url):
        return Status(app.store.head().size, read.position())


def catch_up(
    app: LedgerApp,
    read: ReadStore,
    *,
    progress: Progress | None = None,
    stop: int | None = None,
    batch: int = BATCH,
) -> int:
    """Apply every leaf not yet applied, a batch per transaction; return how many."""
    applied = 0
    while True:
        start = read.position()
        with storage_errors(app.store_url):
            end = app.store.head().size if stop is None else stop
        if start >= end:
            return applied
        try:
            applied += _apply_batch(app, read, start, min(end, start + batch))
        except Conflict:
            continue  # another process applied this batch first: start again from its end
        if progress:
            progress(applied)


def _apply_batch(app: LedgerApp, read: ReadStore, start: int, stop: int) -> int:
    state = read.lazy_state()
    audit: list[AuditRow] = []
    with storage_errors(app.store_url):
        rows = list(app.store.iter_leaves(start=start, stop=stop))
    for row in rows:
        if row.event is None:
            raise VerificationError(
                f"leaf {row.leaf_index} has no event: run 'calm-ledger verify'", step="leaves"
            )
        event, header = _event(row.event.state)
        apply(state, event, header.actor)
        audit.append(_audit_row(row.leaf_index, header, event, state))
    read.commit(state, audit, start, start + len(rows))
    return len(rows)


def _event(state: bytes) -> tuple[DomainEvent, Header]:
    """The event as projections need it: personal fields stay sealed (read as None), so no
    disclosure is decrypted and the read tables never hold personal data."""
    envelope = decode_envelope(state)
    header = envelope.header()
    return build_event(header, sealed_as_none(envelope.data())), header


def _audit_row(leaf: int, header: Any, event: DomainEvent, state: Any) -> AuditRow:
    incident_ref = state.incident_streams.get(header.stream)
    person = getattr(event, "person_id", None) or getattr(event, "pseudonym", None)
    return AuditRow(
        leaf=leaf,
        stream=header.stream,
        version=header.version,
        type=header.type,
        actor=header.actor,
        key_id=header.key_id,
        recorded_at=header.recorded_at,
        incident_ref=incident_ref,
        person_id=person,
        service_id=header.service,
    )


def rebuild(app: LedgerApp, read: ReadStore, *, progress: Progress | None = None) -> int:
    """Drop the read tables and replay the whole log."""
    read.drop()
    return catch_up(app, read, progress=progress)


def follow(
    app: LedgerApp,
    read: ReadStore,
    *,
    interval: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Progress | None = None,
) -> None:
    """Keep catching up until told to stop. On PostgreSQL it waits for the NOTIFY every
    append sends (a subscription); on SQLite, which has none, it polls the log head."""
    wait = _pg_waiter(app, interval) if app.store_url.backend == "postgresql" else None
    while not should_stop():
        applied = catch_up(app, read)
        if applied and on_batch:
            on_batch(applied)
        if not applied:
            wait() if wait else time.sleep(interval)


def _pg_waiter(app: LedgerApp, interval: float) -> Callable[[], None]:
    import psycopg

    url = app.store_url
    conn = psycopg.connect(
        host=url.pg_host,
        port=url.pg_port,
        user=url.pg_user,
        password=url.pg_password or None,
        dbname=url.pg_dbname,
        autocommit=True,
    )
    channel = app.recorder.channel_name  # type: ignore[attr-defined]
    conn.execute(f'LISTEN "{channel}"')

    def wait() -> None:
        for _ in conn.notifies(timeout=interval, stop_after=1):
            pass

    return wait


def verify_read_model(app: LedgerApp, read: ReadStore) -> list[str]:
    """Recompute the state from the log and compare it with the read tables; return the
    differences (empty when they agree)."""
    with storage_errors(app.store_url):
        stop = read.position()
        events = []
        for row in app.store.iter_leaves(stop=stop):
            if row.event is None:
                return [f"leaf {row.leaf_index} has no event"]
            event, header = _event(row.event.state)
            events.append((event, header.actor))
    expected = fold(events)
    stored = read.load_state()
    problems = []
    for name in KINDS:
        want, have = dict(getattr(expected, name)), dict(getattr(stored, name))
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                problems.append(f"{name}[{key}] differs from the log")
    audit_count = read.query("SELECT COUNT(*) FROM {p}rm_audit")[0][0]
    if int(audit_count) != stop:
        problems.append(f"audit rows: {audit_count}, expected {stop}")
    return problems
