"""Read tables: the projected views, stored as JSON rows with the columns queries filter on.

    rm_views     (kind, key, service_id, person_id, at, body)  one row per view
    rm_incidents (ref, stream, service_id, person_id, start, …) one row per incident: the
                                                                figures queries filter and
                                                                count on (projections.facts)
    rm_audit     (leaf, stream, version, type, actor, key_id, recorded_at,
                  incident_ref, person_id, service_id)         one row per event
    rm_position  (name, leaf)                                   next leaf to apply; the row
                                                                'schema' holds SCHEMA_VERSION

On SQLite the read tables live in their own file beside the ledger (`ledger.read.db`); on
PostgreSQL, in the ledger's schema. A catch-up applies a batch of events to lazily loaded
views and commits the changed rows, the audit rows and the new position in one transaction,
guarded by the position it started from: a batch is applied exactly once, however many
processes catch up at the same time, and a killed catch-up leaves nothing half-applied.

The read tables are a cache of the log: when SCHEMA_VERSION changes, the first process to
connect drops and recreates them, and the next catch-up replays the log.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import orjson

from ledger.errors import Conflict, StorageUnavailable
from ledger.store import StoreURL
from projections.facts import FACT_COLUMNS, incident_facts
from projections.metrics import Tally
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
from projections.viewcodec import decoder

if TYPE_CHECKING:
    from pydantic import TypeAdapter

V = TypeVar("V")
BULK_DECODE = 20_000  # views: 1.5-4 us more each through viewcodec than through pydantic
POSITION = "read-model"
SCHEMA = "schema"
SCHEMA_VERSION = 5  # 2: rm_incidents, rm_audit_actor_events, orjson bodies; 3: clustered;
# 4: the incident stream map is rm_incidents.stream, not a row per incident in rm_views;
# 5: on SQLite, rm_audit.leaf is the rowid
TABLES = ("rm_views", "rm_incidents", "rm_audit", "rm_position")
ACTOR_EVENT_TYPES = ("actor.enrolled", "actor.rekeyed", "actor.revoked")  # ledger.actors


@dataclass(frozen=True)
class Kind(Generic[V]):
    name: str
    view: Any  # the view's type, for pydantic to read bodies back
    service: Callable[[V], str | None] = lambda _v: None
    person: Callable[[V], str | None] = lambda _v: None
    at: Callable[[V], str | None] = lambda _v: None

    def decode(self, body: str | bytes) -> V:
        """The view a stored body holds, read without pydantic (projections.viewcodec)."""
        return cast(V, decoder(self.view)(orjson.loads(body)))

    def bulk_decoder(self, count: int) -> Callable[[str | bytes], V]:
        """What decodes `count` bodies fastest: beyond BULK_DECODE, pydantic's faster decoding
        per view pays for importing it and building its schema (60-90 ms); both give the
        same views (tests/test_viewcodec.py)."""
        return _adapter(self.view).validate_json if count > BULK_DECODE else self.decode


@cache
def _adapter(view: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(view)


KINDS: dict[str, Kind[Any]] = {
    "services": Kind("services", ServiceView, service=lambda v: v.service_id),
    "occupancy": Kind(
        "occupancy",
        OccupancyView,
        service=lambda v: v.service_id,
        at=lambda v: v.start.isoformat(),
    ),
    "people": Kind(
        "people",
        PersonView,
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
    ),
    "staff": Kind("staff", StaffView, service=lambda v: v.service_id),
    "incidents": Kind(
        "incidents",
        IncidentView,
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
        at=lambda v: v.start.isoformat(),
    ),
    "plans": Kind("plans", PlanView, person=lambda v: v.person_id),
    "authorisations": Kind(
        "authorisations",
        AuthorisationView,
        service=lambda v: v.service_id,
        person=lambda v: v.person_id,
    ),
    "erased_subjects": Kind("erased_subjects", bool),
    "authorisation_streams": Kind("authorisation_streams", str),
}

_SCHEMA = (
    "CREATE TABLE {p}rm_views (kind TEXT NOT NULL, key TEXT NOT NULL,"
    " service_id TEXT, person_id TEXT, at TEXT, body TEXT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX rm_views_service ON {p}rm_views (kind, service_id, at)",
    "CREATE TABLE {p}rm_audit (leaf BIGINT PRIMARY KEY, stream TEXT NOT NULL,"
    " version INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, key_id TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL, incident_ref TEXT, person_id TEXT, service_id TEXT)",
    "CREATE INDEX rm_audit_incident ON {p}rm_audit (incident_ref)",
    "CREATE INDEX rm_audit_person ON {p}rm_audit (person_id)",
    "CREATE INDEX rm_audit_actor ON {p}rm_audit (actor)",
    # Only the few actor events (`audit` verifies signatures with the keys they enrol).
    "CREATE INDEX rm_audit_actor_events ON {p}rm_audit (leaf) WHERE type IN "
    + str(ACTOR_EVENT_TYPES),
    "CREATE TABLE {p}rm_position (name TEXT PRIMARY KEY, leaf BIGINT NOT NULL)",
)


_INCIDENT_COLUMNS = (
    "ref TEXT NOT NULL, stream TEXT NOT NULL, service_id TEXT NOT NULL,"
    " person_id TEXT NOT NULL, start TEXT NOT NULL, day TEXT NOT NULL,"
    " minutes DOUBLE PRECISION NOT NULL, interventions INTEGER NOT NULL, types TEXT NOT NULL,"
    " techniques TEXT NOT NULL, staff TEXT NOT NULL, planned INTEGER NOT NULL,"
    " injuries INTEGER NOT NULL, prone INTEGER NOT NULL,"
    " prone_minutes DOUBLE PRECISION NOT NULL, debriefs INTEGER NOT NULL,"
    " signed_off INTEGER NOT NULL, immediate_debrief_us BIGINT, person_debrief_us BIGINT,"
    " review_us BIGINT"
)
_INCIDENTS = {
    # SQLite stores the register in (service, day) order, so `metrics` for a service reads
    # its days' rows from consecutive pages (at 10^6 events, 10^5 rows a year) instead of
    # one random row lookup per index entry.
    "sqlite": (
        f"CREATE TABLE {{p}}rm_incidents ({_INCIDENT_COLUMNS},"
        " PRIMARY KEY (service_id, day, ref)) WITHOUT ROWID",
        "CREATE UNIQUE INDEX rm_incidents_ref ON {p}rm_incidents (ref)",
    ),
    "postgresql": (
        f"CREATE TABLE {{p}}rm_incidents ({_INCIDENT_COLUMNS}, PRIMARY KEY (ref))",
        "CREATE INDEX rm_incidents_service ON {p}rm_incidents (service_id, day)",
    ),
}
_INCIDENT_INDEXES = (
    "CREATE INDEX rm_incidents_stream ON {p}rm_incidents (stream)",  # a catch-up's lookups
    "CREATE INDEX rm_incidents_day ON {p}rm_incidents (day)",
    "CREATE INDEX rm_incidents_person ON {p}rm_incidents (person_id, day)",
)


@dataclass(frozen=True)
class Table:
    """A read table as catch-up writes it: its columns with their PostgreSQL array types,
    and the key an upsert replaces on (none: insert only)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()


VIEW_ROWS = Table(
    "rm_views",
    tuple((c, "text") for c in ("kind", "key", "service_id", "person_id", "at", "body")),
    key=("kind", "key"),
)
_FACT_TYPES = {  # the rest are text
    **dict.fromkeys(("minutes", "prone_minutes"), "float8"),
    **dict.fromkeys(("interventions", "planned", "injuries", "prone"), "int4"),
    **dict.fromkeys(("debriefs", "signed_off"), "int4"),
    **dict.fromkeys(("immediate_debrief_us", "person_debrief_us", "review_us"), "int8"),
}
FACT_ROWS = Table(
    "rm_incidents", tuple((c, _FACT_TYPES.get(c, "text")) for c in FACT_COLUMNS), key=("ref",)
)
AUDIT_ROWS = Table(
    "rm_audit",
    (
        ("leaf", "int8"),
        ("stream", "text"),
        ("version", "int4"),
        ("type", "text"),
        ("actor", "text"),
        ("key_id", "text"),
        ("recorded_at", "text"),
        ("incident_ref", "text"),
        ("person_id", "text"),
        ("service_id", "text"),
    ),
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


SQLITE_BUSY_SECONDS = 30


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch a read-table file to WAL (once per file: the mode persists). Processes that
    open a new file at the same moment can each be refused with "database is locked" at
    once, without SQLite's busy wait, while another one switches it: try again until the
    busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _log_head_unreadable(error: Exception) -> StorageUnavailable:
    """Why the log's size could not be read; a ledger in the storage layout before the
    single tree table has no `merkle_tree` (`calm-ledger db upgrade` moves it)."""
    if "merkle_tree" in str(error):
        return StorageUnavailable(
            f"cannot read the log head ({error}): a ledger written by an earlier version"
            " keeps its tree in older tables; run 'calm-ledger db upgrade' once, as the"
            " database's owner"
        )
    return StorageUnavailable(f"cannot read the log head: {error}")


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
            if self._schema_version() != SCHEMA_VERSION:
                self._create()
        return self._conn

    def _schema_version(self) -> int | None:
        """The version the read tables were made with; None when there are none (one cheap
        query instead of the DDL, which every CLI query would otherwise pay for)."""
        try:
            cur = self._conn.cursor()
            cur.execute(self.sql("SELECT leaf FROM {p}rm_position WHERE name = ?"), (SCHEMA,))
            row = cur.fetchone()
            found = int(row[0]) if row else 0
        except Exception:  # no such table: sqlite3 or psycopg error alike
            found = None
        if self.url.backend == "postgresql":
            self._conn.rollback()
        return found

    def _create(self) -> None:
        """(Re)create the read tables, one process at a time: two first connects must not
        both run the DDL (on PostgreSQL the loser fails on the catalogue's unique index)."""
        with self.transaction() as c:
            if self.url.backend == "postgresql":  # SQLite: BEGIN IMMEDIATE serialises already
                c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_name(),))
            if self._version_in(c) == SCHEMA_VERSION:
                return  # another process made them while this one waited for the lock
            for table in TABLES:
                c.execute(self.sql(f"DROP TABLE IF EXISTS {{p}}{table}"))
            for statement in (*_SCHEMA, *_INCIDENTS[self.url.backend], *_INCIDENT_INDEXES):
                if self.url.backend == "sqlite":  # the leaf as the rowid: one b-tree fewer
                    statement = statement.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY")
                c.execute(statement.format(p=self.prefix))
            # The position row always exists, so a catch-up can lock it.
            c.executemany(
                self.sql("INSERT INTO {p}rm_position (name, leaf) VALUES (?, ?)"),
                [(POSITION, 0), (SCHEMA, SCHEMA_VERSION)],
            )

    def _version_in(self, cursor: Any) -> int | None:
        try:
            cursor.execute("SAVEPOINT probe")  # a failed probe must not end the transaction
            cursor.execute(self.sql("SELECT leaf FROM {p}rm_position WHERE name = ?"), (SCHEMA,))
            row = cursor.fetchone()
            cursor.execute("RELEASE SAVEPOINT probe")
        except Exception:  # no such table
            cursor.execute("ROLLBACK TO SAVEPOINT probe")
            return None
        return int(row[0]) if row else None

    def _lock_name(self) -> str:
        return f"calm-ledger read tables {self.url.pg_schema}"

    def _open(self) -> Any:
        try:
            if self.url.backend == "sqlite":
                if self.url.sqlite_path is None:
                    raise AssertionError("sqlite store without a path")
                conn = sqlite3.connect(
                    read_path(self.url.sqlite_path),
                    timeout=SQLITE_BUSY_SECONDS,
                    isolation_level=None,
                )
                _use_wal(conn)
                # WAL with NORMAL still commits atomically, in order; a power cut may lose
                # the last batches, which the next catch-up applies again from the log.
                conn.execute("PRAGMA synchronous=NORMAL")
                # A catch-up updates four indexes per incident: keep their pages in memory.
                conn.execute("PRAGMA cache_size=-65536")  # KiB
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

    def query_in(
        self, text: str, params: Sequence[Any], keys: Sequence[str]
    ) -> list[tuple[Any, ...]]:
        """`text` (ending in a column) restricted to `keys`: on PostgreSQL one array
        parameter, on SQLite an IN list."""
        if self.url.backend == "postgresql":
            return self.query(text + " = ANY(?)", (*params, list(keys)))
        return self.query(f"{text} IN ({', '.join('?' * len(keys))})", (*params, *keys))

    # --- position ------------------------------------------------------------------------------

    def position(self) -> int:
        rows = self.query("SELECT leaf FROM {p}rm_position WHERE name = ?", (POSITION,))
        return int(rows[0][0]) if rows else 0

    def log_size(self) -> int:
        """The log's size, read straight from its tree table (the greatest node key's leaf
        plus one: `ledger.store.base.size_of_top_key`), so a query whose read tables are
        current never opens the ledger application."""
        head = "SELECT (max(node) >> 6) + 1 FROM {p}merkle_tree"
        if self.url.backend == "postgresql":
            try:
                rows = self.query(head)
            except Exception as e:  # psycopg.Error, e.g. a renamed table: let the app say
                self._conn.rollback()
                raise _log_head_unreadable(e) from e
        else:
            if self.url.sqlite_path is None:
                raise AssertionError("sqlite store without a path")
            try:
                conn = sqlite3.connect(f"file:{self.url.sqlite_path}?mode=ro", uri=True)
                try:
                    rows = conn.execute(head.format(p="")).fetchall()
                finally:
                    conn.close()
            except sqlite3.Error as e:
                raise _log_head_unreadable(e) from e
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    # --- state ----------------------------------------------------------------------------------

    def lazy_state(self) -> State:
        """A state whose mappings load rows on demand and remember what was written."""
        self.connect()
        views: dict[str, Any] = {name: LazyViews(self, kind) for name, kind in KINDS.items()}
        return State(**views, incident_streams=IncidentStreams(self))

    def commit(self, state: State, audit: Sequence[tuple[Any, ...]], start: int, stop: int) -> None:
        """Write what changed, the audit rows (tuples in AUDIT_ROWS order) and the new
        position, if still at `start`."""
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
            self.insert(c, AUDIT_ROWS, audit)
            c.execute(
                self.sql(
                    "INSERT INTO {p}rm_position (name, leaf) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET leaf = excluded.leaf"
                ),
                (POSITION, stop),
            )

    def insert(self, cursor: Any, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert (or, with a key, upsert) rows in one statement per table: on PostgreSQL
        one INSERT … SELECT FROM unnest(arrays), where executemany costs a statement per
        row, with the arrays sent in binary (%b: the text format escapes every quote of
        every JSON body through a regular expression); on SQLite, executemany."""
        if not rows:
            return
        columns = ", ".join(name for name, _ in table.columns)
        conflict = ""
        if table.key:
            updates = [f"{n} = excluded.{n}" for n, _ in table.columns if n not in table.key]
            conflict = f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {', '.join(updates)}"
        into = f"INSERT INTO {self.prefix}{table.name} ({columns})"
        if self.url.backend == "sqlite":
            marks = ", ".join("?" * len(table.columns))
            cursor.executemany(f"{into} VALUES ({marks}){conflict}", rows)
            return
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in table.columns)
        by_column = [list(column) for column in zip(*rows, strict=True)]
        cursor.execute(f"{into} SELECT * FROM unnest({arrays}){conflict}", by_column)

    def drop(self) -> None:
        """Empty the read tables (before a rebuild). On PostgreSQL TRUNCATE, not DELETE: a
        DELETE leaves every row behind as a dead tuple, and after a few rebuilds the planner,
        misled, scanned rm_views by kind instead of by key (130 ms a lookup)."""
        self.connect()
        empty = "DELETE FROM" if self.url.backend == "sqlite" else "TRUNCATE"
        with self.transaction() as c:
            for table in ("rm_views", "rm_incidents", "rm_audit"):
                c.execute(self.sql(f"{empty} {{p}}{table}"))
            c.execute(self.sql("UPDATE {p}rm_position SET leaf = 0 WHERE name = ?"), (POSITION,))

    def analyse(self) -> None:
        """After a bulk load on PostgreSQL: store the register in (service, day) order, as
        SQLite's clustered table always is, and refresh the planner's statistics (autovacuum
        would, later). A replay writes incidents in log order, every service's interleaved,
        so a service's year was spread over every page of the table: at 10^6 events each of
        the four `metrics` scans read all 23,000 pages (~150 ms), and reads 1/10 of them
        clustered (5 s once, for a rebuild of several minutes). Later incidents are appended
        unclustered until the next rebuild. SQLite's planner needs none of this."""
        if self.url.backend == "postgresql":
            with self.transaction() as c:
                c.execute(self.sql("CLUSTER {p}rm_incidents USING rm_incidents_service"))
                for table in TABLES:
                    c.execute(self.sql(f"ANALYZE {{p}}{table}"))

    # --- queries ---------------------------------------------------------------------------------

    def views(self, name: str, *, where: str = "", params: Sequence[Any] = ()) -> list[Any]:
        kind = KINDS[name]
        rows = self.query(
            "SELECT body FROM {p}rm_views WHERE kind = ?" + where + " ORDER BY at, key",
            (name, *params),
        )
        decode = kind.bulk_decoder(len(rows))
        return [decode(body) for (body,) in rows]

    def load_state(
        self,
        *,
        service_id: str | None = None,
        start: str | None = None,
        end: str | None = None,
        kinds: Iterable[str] = KINDS,
    ) -> State:
        """An in-memory state for queries: the small views of `kinds`, and the incidents in
        range if `kinds` names them. Queries name the kinds they read: the stream maps alone
        hold a row per incident."""
        state = State()
        for name in kinds:
            if name == "incidents":
                for incident in self._incidents(service_id, start, end):
                    state.incidents[incident.ref] = incident
                continue
            target = getattr(state, name)
            rows = self.query("SELECT key, body FROM {p}rm_views WHERE kind = ?", (name,))
            decode = KINDS[name].bulk_decoder(len(rows))
            for key, body in rows:
                target[key] = decode(body)
        state.size = self.position()
        return state

    def _incidents(
        self, service_id: str | None, start: str | None, end: str | None
    ) -> list[IncidentView]:
        """The incident views whose `at` (start, as text) is in [start, end), oldest first.
        A window is found through the register's day index (rm_incidents holds one row per
        incident view, with `start` the same text as `at`): rm_views' index cannot range
        over `at` without a service, and walking its 10^6 entries took ~150 ms at 10^6
        events even when the window held no incident."""
        if start is None and end is None:
            where, params = _incident_filter(service_id, None, None, None)
            return self.views("incidents", where=where, params=params)
        refs, params = "SELECT ref FROM {p}rm_incidents WHERE 1 = 1", []
        if service_id is not None:
            refs += " AND service_id = ?"
            params.append(service_id)
        # `day` is the UTC date; a start written with an offset is dated up to a day apart.
        if start is not None:
            refs += " AND day >= ? AND start >= ?"
            params += [_shift_day(start, -1), start]
        if end is not None:
            refs += " AND day <= ? AND start < ?"
            params += [_shift_day(end, 1), end]
        return self.views("incidents", where=f" AND key IN ({refs})", params=params)

    def knows_service(self, service_id: str) -> bool:
        """Registered, or named by an incident or an occupancy record (as metrics ask)."""
        return bool(
            self.query(
                "SELECT 1 FROM {p}rm_views WHERE kind IN ('services', 'occupancy')"
                " AND service_id = ? UNION ALL"
                " SELECT 1 FROM {p}rm_incidents WHERE service_id = ? LIMIT 1",
                (service_id, service_id),
            )
        )

    def occupancy(self) -> list[OccupancyView]:
        """Every occupancy record, read without pydantic (four plain fields)."""
        found = []
        for (body,) in self.query("SELECT body FROM {p}rm_views WHERE kind = 'occupancy'"):
            o = orjson.loads(body)
            start, end = date.fromisoformat(o["start"]), date.fromisoformat(o["end"])
            found.append(OccupancyView(o["service_id"], start, end, int(o["person_days"])))
        return found

    def incident_facts(
        self, service_id: str | None, person_id: str | None, start: str | None, end: str | None
    ) -> list[dict[str, Any]]:
        """The register's rows (rm_incidents) in range, oldest first, as column → value."""
        where, params = _incident_filter(service_id, person_id, None, None)
        # The day bounds, implied by those on `start` (one day of slack, as in _incidents),
        # let the (service, day), (person, day) and day indexes range over the period alone
        # instead of reading every incident of the service (at 10^6 events on PostgreSQL,
        # 100,000 rows scattered over the whole table for one month's 8,333).
        for bound, op, day_op, shift in ((start, ">=", ">=", -1), (end, "<", "<=", 1)):
            if bound is not None:
                where += f" AND day {day_op} ? AND start {op} ?"
                params += [_shift_day(bound, shift), bound]
        rows = self.query(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM {{p}}rm_incidents WHERE 1 = 1{where}"
            " ORDER BY start, ref",
            params,
        )
        return [dict(zip(FACT_COLUMNS, row, strict=True)) for row in rows]

    def metric_tallies(
        self, service_id: str | None, first: date, last: date, limits_us: Sequence[int]
    ) -> list[tuple[date, Tally]]:
        """Per day from `first` to `last` (UTC dates of incident starts), the tallies metrics
        are computed from, added up by the database: four grouped queries instead of
        decoding every incident."""
        where = " WHERE day >= ? AND day <= ?"
        params: list[Any] = [first.isoformat(), last.isoformat()]
        if service_id is not None:
            where += " AND service_id = ?"
            params.append(service_id)
        days: dict[str, Tally] = {}
        timely = ", ".join(
            f"SUM(CASE WHEN {c} <= ? THEN 1 ELSE 0 END)"
            for c in ("immediate_debrief_us", "person_debrief_us", "review_us")
        )
        for day, service, n, planned, injuries, prone, *on_time in self.query(
            "SELECT day, service_id, COUNT(*), SUM(planned), SUM(injuries), SUM(prone),"
            f" {timely} FROM {{p}}rm_incidents{where} GROUP BY day, service_id",
            [*limits_us, *params],
        ):
            tally = days.setdefault(day, Tally())
            tally.incidents += int(n)
            tally.services.add(service)
            tally.planned += int(planned)
            tally.injuries += int(injuries)
            tally.prone += int(prone)
            tally.prone_minutes.append(0.0)  # the sum is a float once there are incidents
            tally.on_time = [a + int(b) for a, b in zip(tally.on_time, on_time, strict=True)]
        for day, person, interventions in self.query(
            "SELECT day, person_id, SUM(interventions)"
            f" FROM {{p}}rm_incidents{where} GROUP BY day, person_id",
            params,
        ):
            days[day].per_person[person] += int(interventions)
        for day, minutes, n in self.query(
            f"SELECT day, minutes, COUNT(*) FROM {{p}}rm_incidents{where} GROUP BY day, minutes",
            params,
        ):
            days[day].minutes += [float(minutes)] * int(n)
        for day, _start, _ref, minutes in sorted(
            self.query(
                "SELECT day, start, ref, prone_minutes"
                f" FROM {{p}}rm_incidents{where} AND prone_minutes <> 0",
                params,
            ),
            key=lambda row: (row[1], row[2]),
        ):
            days[day].prone_minutes.append(float(minutes))
        return sorted((date.fromisoformat(day), tally) for day, tally in days.items())

    def actor_leaves(self) -> list[int]:
        """The leaves of actor events (enrolments, re-keys, revocations), in log order."""
        rows = self.query(
            f"SELECT leaf FROM {{p}}rm_audit WHERE type IN {ACTOR_EVENT_TYPES} ORDER BY leaf"
        )
        return [int(leaf) for (leaf,) in rows]

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


def _shift_day(bound: str, days: int) -> str:
    """The date `days` from the date a bound (a date or a time, as text) starts with."""
    return (date.fromisoformat(bound[:10]) + timedelta(days=days)).isoformat()


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
            self.prefetch((key,))
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

    def prefetch(self, keys: Iterable[str]) -> None:
        """Load the views of these keys in one query (those not stored read as missing)."""
        wanted = sorted(set(keys) - self.loaded.keys())
        for chunk in _chunks(wanted, 500):
            rows = self._select(chunk)
            self.loaded.update(dict.fromkeys(chunk))
            self.loaded.update(rows)

    def _select(self, keys: Sequence[str]) -> list[tuple[str, V]]:
        """(key, view) of the stored views among these keys."""
        rows = self.store.query_in(
            "SELECT key, body FROM {p}rm_views WHERE kind = ? AND key", (self.kind.name,), keys
        )
        return [(key, self.kind.decode(body)) for key, body in rows]

    def flush(self, cursor: Any) -> None:
        changed = [(key, self.loaded[key]) for key in sorted(self.dirty)]
        rows = [self._row(key, value) for key, value in changed if value is not None]
        self.store.insert(cursor, VIEW_ROWS, rows)
        if self.kind.name == "incidents":
            facts = [incident_facts(cast(IncidentView, v)) for _, v in changed if v]
            self.store.insert(cursor, FACT_ROWS, facts)
        self.dirty.clear()

    def _row(self, key: str, value: V) -> tuple[Any, ...]:
        k = self.kind
        return (k.name, key, k.service(value), k.person(value), k.at(value), _body(value))


class IncidentStreams(LazyViews[str]):
    """Incident stream → ref, read from the register's `stream` column: the register row
    that records an incident (written beside its view) says which stream it is on, so the
    map costs no rows of its own (it had one per incident, a fourth row per event)."""

    def __init__(self, store: ReadStore) -> None:
        super().__init__(store, Kind("incident_streams", str))

    def _select(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        rows = self.store.query_in("SELECT stream, ref FROM {p}rm_incidents WHERE stream", (), keys)
        return [(str(stream), str(ref)) for stream, ref in rows]

    def flush(self, cursor: Any) -> None:
        """Nothing to write: every stream set here belongs to an incident view set in the
        same batch, whose register row carries it (projections.fold._recorded)."""
        self.dirty.clear()


def _body(value: Any) -> str:
    """A view as JSON: orjson writes dataclasses, enums, dates and tuples as pydantic reads
    them back (times in UTC with +00:00), several times faster than pydantic's serialiser."""
    return orjson.dumps(value).decode()


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
