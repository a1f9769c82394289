"""Keeping the read tables current: catch up, rebuild, follow, status, verify."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from domain.events import DomainEvent
from ledger.app import LedgerApp, storage_errors
from ledger.collection import no_cycle_collection
from ledger.envelope import Header, decode_envelope, trusted_header
from ledger.errors import Conflict, VerificationError
from ledger.mapper import build_event, sealed_as_none
from projections.facts import FACT_COLUMNS, incident_facts
from projections.fold import apply_stored, fold
from projections.model import State
from projections.readstore import KINDS, LazyViews, ReadStore

# Events per transaction. SQLite writes every page a batch dirties to its WAL at commit,
# and an incident's rows go to four indexes keyed by random refs and streams, whose pages
# each batch dirties nearly all of again: 10,000 a batch spends ~7 us an event there where
# 2,000 spent ~18. PostgreSQL gains nothing from larger batches (its client spent more).
BATCHES = {"sqlite": 10_000, "postgresql": 2_000}
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
    batch: int | None = None,
) -> int:
    """Apply every leaf not yet applied, a batch per transaction; return how many."""
    with no_cycle_collection():  # each batch ends with a young-generation collection
        return _catch_up(app, read, progress, stop, batch or BATCHES[read.url.backend])


def _catch_up(
    app: LedgerApp, read: ReadStore, progress: Progress | None, stop: int | None, batch: int
) -> int:
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
        finally:
            gc.collect(0)
        if progress:
            progress(applied)


def _apply_batch(app: LedgerApp, read: ReadStore, start: int, stop: int) -> int:
    with storage_errors(app.store_url):
        rows = app.store.leaf_states(start, stop)
    decoded = []
    for leaf, stored in rows:
        if stored is None:
            raise VerificationError(
                f"leaf {leaf} has no event: run 'calm-ledger verify'", step="leaves"
            )
        decoded.append((leaf, *_decoded(stored)))
    state = read.lazy_state()
    _prefetch(state, [header.stream for _, header, _ in decoded])
    audit: list[tuple[Any, ...]] = []
    for leaf, header, data in decoded:
        apply_stored(state, header, data)  # actors, reports, catalogues: counted only
        audit.append(_audit_row(leaf, header, data, state))
    read.commit(state, audit, start, start + len(rows))
    return len(rows)


def _prefetch(state: State, streams: list[str]) -> None:
    """Load, a few queries per batch, the views its events look up one by one: the stream
    maps (every event's audit row asks them) and the incidents and authorisations that
    follow-up events change."""
    for streams_of, views_of in (
        ("incident_streams", "incidents"),
        ("authorisation_streams", "authorisations"),
    ):
        refs, views = getattr(state, streams_of), getattr(state, views_of)
        if isinstance(refs, LazyViews) and isinstance(views, LazyViews):
            refs.prefetch(streams)
            views.prefetch([ref for s in streams if (ref := refs.loaded.get(s)) is not None])


def _decoded(stored: bytes) -> tuple[Header, dict[str, Any]]:
    """The header and data as projections need them. Personal fields stay sealed (read as
    None), so no disclosure is decrypted and the read tables never hold personal data; and
    the header is not re-checked for canonical form, which is `verify`'s job, not a query's."""
    envelope = decode_envelope(stored)
    data = sealed_as_none(orjson.loads(envelope.data_bytes))
    header = trusted_header(envelope.header_bytes)
    return header, data


def _event(stored: bytes) -> tuple[DomainEvent, Header]:
    header, data = _decoded(stored)
    return build_event(header, data), header


def _audit_row(leaf: int, header: Header, data: dict[str, Any], state: State) -> tuple[Any, ...]:
    """The event's rm_audit row, in AUDIT_ROWS (and AuditRow) column order."""
    return (
        leaf,
        header.stream,
        header.version,
        header.type,
        header.actor,
        header.key_id,
        header.recorded_at,
        state.incident_streams.get(header.stream),
        data.get("person_id") or data.get("pseudonym"),
        header.service,
    )


def rebuild(app: LedgerApp, read: ReadStore, *, progress: Progress | None = None) -> int:
    """Drop the read tables and replay the whole log."""
    read.drop()
    applied = catch_up(app, read, progress=progress)
    read.analyse()
    return applied


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
    problems += _facts_problems(expected, read)
    audit_count = read.query("SELECT COUNT(*) FROM {p}rm_audit")[0][0]
    if int(audit_count) != stop:
        problems.append(f"audit rows: {audit_count}, expected {stop}")
    return problems


def _facts_problems(expected: State, read: ReadStore) -> list[str]:
    """The register's rows (rm_incidents) against the incidents folded from the log."""
    want = {i.ref: incident_facts(i) for i in expected.incidents.values()}
    columns = ", ".join(FACT_COLUMNS)
    have = {row[0]: row for row in read.query(f"SELECT {columns} FROM {{p}}rm_incidents")}
    return [
        f"rm_incidents[{ref}] differs from the log"
        for ref in sorted(set(want) | set(have))
        if want.get(ref) != have.get(ref)
    ]
