"""Read tables: the projected views, stored as JSON rows with the columns queries filter on.

    rm_views    (kind, key, service_id, person_id, at, body)   one row per view
    rm_audit    (leaf, stream, version, type, actor, key_id, recorded_at,
                 incident_ref, person_id, service_id)          one row per event
    rm_position (name, leaf)                                    next leaf to apply

On SQLite the read tables live in their own file beside the ledger (`ledger.read.db`); on
PostgreSQL, in the ledger's schema. A catch-up applies a batch of events to lazily loaded
views and commits the changed rows, the audit rows and the new position in one transaction,
guarded by the position it started from: a batch is applied exactly once, however many
processes catch up at the same time, and a killed catch-up leaves nothing half-applied.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from ledger.errors import Conflict, StorageUnavailable
from ledger.store import StoreURL
from projections.model import (
    AuthorisationView,
    IncidentView,
    OccupancyView,
    PersonView,
    PlanView,
    ServiceView,
    StaffView,
    State,
)

V = TypeVar("V")
POSITION = "read-model"


@dataclass(frozen=True)
class Kind(Generic[V]):
    name: str
    adapter: TypeAdapter[V]
    service: Callable[[V], str | None] = lambda _v: None
    person: Callable[[V], str | None] = lambda _v: None
    at: Callable[[V], str | None] = lambda _v: None


KINDS: dict[str, Kind[Any]] = {
    "services": Kind("services", TypeAdapter(ServiceView), service=lambda v: v.service_id),
    "occupancy": Kind(
        "occupancy",
        TypeAdapter(OccupancyView),
        service=lambda v: v.service_id,
        at=lambda v: v.start.isoformat(),
    ),
    "people": Kind(
        "people",
        TypeAdapter(PersonView),
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
    ),
    "staff": Kind("staff", TypeAdapter(StaffView), service=lambda v: v.service_id),
    "incidents": Kind(
        "incidents",
        TypeAdapter(IncidentView),
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
        at=lambda v: v.start.isoformat(),
    ),
    "plans": Kind("plans", TypeAdapter(PlanView), person=lambda v: v.person_id),
    "authorisations": Kind(
        "authorisations",
        TypeAdapter(AuthorisationView),
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
    ),
    "erased_subjects": Kind("erased_subjects", TypeAdapter(bool)),
    "incident_streams": Kind("incident_streams", TypeAdapter(str)),
    "authorisation_streams": Kind("authorisation_streams", TypeAdapter(str)),
}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}rm_views (kind TEXT NOT NULL, key TEXT NOT NULL,"
    " service_id TEXT, person_id TEXT, at TEXT, body TEXT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX IF NOT EXISTS rm_views_service ON {p}rm_views (kind, service_id, at)",
    "CREATE INDEX IF NOT EXISTS rm_views_person ON {p}rm_views (kind, person_id, at)",
    "CREATE TABLE IF NOT EXISTS {p}rm_audit (leaf BIGINT PRIMARY KEY, stream TEXT NOT NULL,"
    " version INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, key_id TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL, incident_ref TEXT, person_id TEXT, service_id TEXT)",
    "CREATE INDEX IF NOT EXISTS rm_audit_incident ON {p}rm_audit (incident_ref)",
    "CREATE INDEX IF NOT EXISTS rm_audit_person ON {p}rm_audit (person_id)",
    "CREATE INDEX IF NOT EXISTS rm_audit_actor ON {p}rm_audit (actor)",
    "CREATE TABLE IF NOT EXISTS {p}rm_position (name TEXT PRIMARY KEY, leaf BIGINT NOT NULL)",
)


@dataclass(frozen=True)
class AuditRow:
    leaf: int
    stream: str
    version: int
    type: str
    actor: str
    key_id: str
    recorded_at: str
    incident_ref: str | None
    person_id: str | None
    service_id: str | None


class ReadStore:
    """The read tables of one ledger, on SQLite or PostgreSQL."""

    def __init__(self, store_url: StoreURL) -> None:
        self.url = store_url
        self.prefix = "" if store_url.backend == "sqlite" else f'"{store_url.pg_schema}".'
        self.mark = "?" if store_url.backend == "sqlite" else "%s"
        self._conn: Any = None

    # --- connection ------------------------------------------------------------------------

    def connect(self) -> Any:
        if self._conn is None:
            self._conn = self._open()
            if self._has_tables():
                return self._conn
            with self.transaction() as c:
                for statement in _SCHEMA:
                    c.execute(statement.format(p=self.prefix))
                # The position row always exists, so a catch-up can lock it.
                c.execute(
                    self.sql(
                        "INSERT INTO {p}rm_position (name, leaf) VALUES (?, 0)"
                        " ON CONFLICT (name) DO NOTHING"
                    ),
                    (POSITION,),
                )
        return self._conn

    def _has_tables(self) -> bool:
        """Whether the read tables exist already (one cheap query instead of eight DDLs)."""
        try:
            cur = self._conn.cursor()
            cur.execute(self.sql("SELECT leaf FROM {p}rm_position WHERE name = ?"), (POSITION,))
            found = cur.fetchone() is not None
        except Exception:  # no such table: sqlite3 or psycopg error alike
            found = False
        if self.url.backend == "postgresql":
            self._conn.rollback()
        return found

    def _open(self) -> Any:
        try:
            if self.url.backend == "sqlite":
                if self.url.sqlite_path is None:
                    raise AssertionError("sqlite store without a path")
                conn = sqlite3.connect(
                    read_path(self.url.sqlite_path), timeout=30, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                return conn
            import psycopg

            return psycopg.connect(
                host=self.url.pg_host,
                port=self.url.pg_port,
                user=self.url.pg_user,
                password=self.url.pg_password or None,
                dbname=self.url.pg_dbname,
                connect_timeout=5,
            )
        except (sqlite3.Error, OSError) as e:
            raise StorageUnavailable(f"cannot open the read tables: {e}") from e
        except Exception as e:  # psycopg.Error, without importing psycopg for SQLite
            raise StorageUnavailable(f"cannot open the read tables: {e}") from e

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        conn = self._conn
        if self.url.backend == "sqlite":
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        else:
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def sql(self, text: str) -> str:
        return text.format(p=self.prefix).replace("?", self.mark)

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        cur = conn.cursor()
        cur.execute(self.sql(text), params)
        rows = [tuple(r) for r in cur.fetchall()]
        if self.url.backend == "postgresql":
            conn.rollback()  # end the implicit read transaction
        return rows

    # --- position ------------------------------------------------------------------------------

    def position(self) -> int:
        rows = self.query("SELECT leaf FROM {p}rm_position WHERE name = ?", (POSITION,))
        return int(rows[0][0]) if rows else 0

    # --- state ----------------------------------------------------------------------------------

    def lazy_state(self) -> State:
        """A state whose mappings load rows on demand and remember what was written."""
        self.connect()
        views: dict[str, Any] = {name: LazyViews(self, kind) for name, kind in KINDS.items()}
        return State(**views)

    def commit(self, state: State, audit: Sequence[AuditRow], start: int, stop: int) -> None:
        """Write what changed, the audit rows and the new position, if still at `start`."""
        lock = "" if self.url.backend == "sqlite" else " FOR UPDATE"  # SQLite: BEGIN IMMEDIATE
        with self.transaction() as c:
            c.execute(
                self.sql("SELECT leaf FROM {p}rm_position WHERE name = ?" + lock), (POSITION,)
            )
            row = c.fetchone()
            current = int(row[0]) if row else 0
            if current != start:
                raise Conflict(
                    f"another catch-up moved the read tables to leaf {current}; retrying"
                )
            for name in KINDS:
                views = getattr(state, name)
                if isinstance(views, LazyViews):
                    views.flush(c)
            c.executemany(
                self.sql(
                    "INSERT INTO {p}rm_audit (leaf, stream, version, type, actor, key_id,"
                    " recorded_at, incident_ref, person_id, service_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [tuple(a.__dict__.values()) for a in audit],
            )
            c.execute(
                self.sql(
                    "INSERT INTO {p}rm_position (name, leaf) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET leaf = excluded.leaf"
                ),
                (POSITION, stop),
            )

    def drop(self) -> None:
        """Empty the read tables (before a rebuild)."""
        self.connect()
        with self.transaction() as c:
            for table in ("rm_views", "rm_audit"):
                c.execute(self.sql(f"DELETE FROM {{p}}{table}"))
            c.execute(self.sql("UPDATE {p}rm_position SET leaf = 0 WHERE name = ?"), (POSITION,))

    # --- queries ---------------------------------------------------------------------------------

    def views(self, name: str, *, where: str = "", params: Sequence[Any] = ()) -> list[Any]:
        kind = KINDS[name]
        rows = self.query(
            "SELECT body FROM {p}rm_views WHERE kind = ?" + where + " ORDER BY at, key",
            (name, *params),
        )
        return [kind.adapter.validate_json(body) for (body,) in rows]

    def load_state(
        self, *, service_id: str | None = None, start: str | None = None, end: str | None = None
    ) -> State:
        """An in-memory state for queries: all small views, and the incidents in range."""
        state = State()
        for name in KINDS:
            if name == "incidents":
                continue
            target = getattr(state, name)
            for key, body in self.query(
                "SELECT key, body FROM {p}rm_views WHERE kind = ?", (name,)
            ):
                target[key] = KINDS[name].adapter.validate_json(body)
        where, params = _incident_filter(service_id, None, start, end)
        for incident in self.views("incidents", where=where, params=params):
            state.incidents[incident.ref] = incident
        state.size = self.position()
        return state

    def audit(self, column: str, value: str) -> list[AuditRow]:
        if column not in ("incident_ref", "person_id", "actor", "stream"):
            raise AssertionError(f"no audit index on {column}")
        rows = self.query(
            f"SELECT leaf, stream, version, type, actor, key_id, recorded_at, incident_ref,"
            f" person_id, service_id FROM {{p}}rm_audit WHERE {column} = ? ORDER BY leaf",
            (value,),
        )
        return [AuditRow(*row) for row in rows]


def _incident_filter(
    service_id: str | None, person_id: str | None, start: str | None, end: str | None
) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("service_id", service_id), ("person_id", person_id)):
        if value is not None:
            clauses.append(f" AND {column} = ?")
            params.append(value)
    if start is not None:
        clauses.append(" AND at >= ?")
        params.append(start)
    if end is not None:
        clauses.append(" AND at < ?")
        params.append(end)
    return "".join(clauses), params


def incident_filter(
    service_id: str | None, person_id: str | None, start: str | None, end: str | None
) -> tuple[str, list[Any]]:
    return _incident_filter(service_id, person_id, start, end)


def read_path(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.stem + ".read.db")


class LazyViews(MutableMapping[str, V]):
    """Views of one kind, loaded by key on first use and written back on commit."""

    def __init__(self, store: ReadStore, kind: Kind[V]) -> None:
        self.store, self.kind = store, kind
        self.loaded: dict[str, V | None] = {}
        self.dirty: set[str] = set()

    def __getitem__(self, key: str) -> V:
        if key not in self.loaded:
            rows = self.store.query(
                "SELECT body FROM {p}rm_views WHERE kind = ? AND key = ?", (self.kind.name, key)
            )
            self.loaded[key] = self.kind.adapter.validate_json(rows[0][0]) if rows else None
        value = self.loaded[key]
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        self.loaded[key] = value
        self.dirty.add(key)

    def __delitem__(self, key: str) -> None:
        raise AssertionError("views are never deleted")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a catch-up never iterates all views; queries use load_state")

    def __len__(self) -> int:
        raise AssertionError("a catch-up never counts all views")

    def flush(self, cursor: Any) -> None:
        statement = self.store.sql(
            "INSERT INTO {p}rm_views (kind, key, service_id, person_id, at, body)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET"
            " service_id = excluded.service_id, person_id = excluded.person_id,"
            " at = excluded.at, body = excluded.body"
        )
        rows = []
        for key in sorted(self.dirty):
            value = self.loaded[key]
            if value is None:
                continue
            k = self.kind
            rows.append(
                (
                    k.name,
                    key,
                    k.service(value),
                    k.person(value),
                    k.at(value),
                    k.adapter.dump_json(value).decode(),
                )
            )
        cursor.executemany(statement, rows)
        self.dirty.clear()
