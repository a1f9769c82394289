"""The production store: the library's PostgreSQL recorder plus the ledger tables.

Appends take the library's `LOCK TABLE … IN EXCLUSIVE MODE` on the events table, insert the
events and advance the Merkle tree in the same transaction, so leaf order is commit order.
Triggers reject UPDATE, DELETE and TRUNCATE on the events and tree tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow, dict_row
from psycopg.sql import SQL, Identifier

from ledger.store.base import APPEND_ONLY_TABLES, LedgerTables, stored_head

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {s}.ledger_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.merkle_tree ("
    " node bigint PRIMARY KEY CHECK (node >= 0), hash bytea NOT NULL,"
    " notification_id bigint,"
    " CHECK (((node & 63) = 0) = (notification_id IS NOT NULL)))",
    "CREATE UNIQUE INDEX IF NOT EXISTS merkle_tree_leaf_events"
    " ON {s}.merkle_tree (notification_id) WHERE notification_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS {s}.checkpoints (size bigint PRIMARY KEY, note text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.cosignatures ("
    " size bigint NOT NULL, line text NOT NULL, PRIMARY KEY (size, line))",
    "CREATE TABLE IF NOT EXISTS {s}.subject_keys (subject text PRIMARY KEY, data_key bytea)",
    "CREATE OR REPLACE FUNCTION {s}.calm_ledger_append_only() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';"
    " END $$",
)


def _triggers(schema: str, table: str) -> list[str]:
    q = f"{schema}.{_quote(table)}"
    row, truncate = _quote(f"{table}_append_only"), _quote(f"{table}_no_truncate")
    return [
        f"DROP TRIGGER IF EXISTS {row} ON {q}",
        f"CREATE TRIGGER {row} BEFORE UPDATE OR DELETE ON {q}"
        f" FOR EACH ROW EXECUTE FUNCTION {schema}.calm_ledger_append_only()",
        f"DROP TRIGGER IF EXISTS {truncate} ON {q}",
        f"CREATE TRIGGER {truncate} BEFORE TRUNCATE ON {q}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {schema}.calm_ledger_append_only()",
    ]


class LedgerPostgresRecorder(LedgerTables, PostgresApplicationRecorder):
    """Inserts events and advances the Merkle tree in one locked PostgreSQL transaction."""

    placeholder = "%s"
    notification_column = "notification_id"
    # Envelopes come back in binary: in text the server hex-encodes every byte and the
    # client decodes it again (reading 10^5 envelopes took twice as long).
    READ_BYTES: Mapping[str, Any] = MappingProxyType({"binary": True})

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = self._quoted_schema()
        self.events_table = f"{schema}.{_quote(events_table_name)}"
        self._sql.clear()  # nothing memoised with the unqualified name
        statements = [t.format(s=schema) for t in _SCHEMA]
        for table in (events_table_name, *APPEND_ONLY_TABLES):
            statements += _triggers(schema, table)
        self.sql_create_statements += [SQL(s) for s in statements]  # type: ignore[misc]
        # Column arrays in binary, not the library's array of composites: psycopg writes
        # those as text in Python, escaping every byte of every envelope (a fifth of an
        # append's client CPU at 100 events a transaction).
        self._insert_returning = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING originator_id, originator_version, notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )

    def _quoted_schema(self) -> str:
        return _quote(self.datastore.schema)

    def stream_param(self, stream: Any) -> Any:
        return stream  # a uuid column

    def table(self, name: str) -> str:
        return f"{self._quoted_schema()}.{name}"

    def table_exists(self, cursor: Any, name: str) -> bool:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (self.table(name),))
        return bool(cursor.fetchone()["found"])

    def lock_for_upgrade(self, cursor: Any) -> None:
        cursor.execute(f"LOCK TABLE {self.events_table} IN EXCLUSIVE MODE")

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Cursor[DictRow]]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def stream_rows(self, query: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        # A server-side cursor: libpq would otherwise buffer the whole result client-side.
        with (
            self.datastore.transaction(commit=False) as c,
            c.connection.cursor(name="calm_ledger_stream") as named,
        ):
            named.itersize = 5000
            named.execute(query, params)
            yield from named

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        columns = [
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        ]
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline(),  # outside the transaction, so its COMMIT joins the tree rows
            conn.transaction(),
        ):
            # Round trip 1: lock, insert, and one statement for everything else read under
            # the lock. Round trip 2: one statement for the tree rows, and the commit. Each
            # statement whose rows are read has its own cursor: a cursor with two statements
            # in flight may be handed the first's result when waiting for the second's. (No
            # explicit `Pipeline.sync()`: with a large batch still in libpq's send buffer it
            # waited for results the server could not send; fetching flushes first.)
            curs, inserting, reading = (conn.cursor(row_factory=dict_row) for _ in range(3))
            self._lock_table(curs)
            inserting.execute(self._insert_returning, columns)
            new_keys = self.take_used_keys()
            reading.execute(self._under_the_lock, self._under_the_lock_params(new_keys))
            returned = {
                (str(r["originator_id"]), int(r["originator_version"])): int(r["notification_id"])
                for r in inserting.fetchall()
            }
            state = reading.fetchone()
            if state is None:
                raise AssertionError("the read under the lock returned no row")
            self.check_signer_versions(state["signer_versions"] or (), stored_events)
            self.new_keys_clashed({s for s, _ in new_keys} - set(state["keys_stored"] or ()))
            head = stored_head(int(state["size"]), state["border"] or ())
            ids = [returned[(str(e.originator_id), e.originator_version)] for e in stored_events]
            self.write_tree(curs, head, stored_events, ids)
        self.tree_committed(False)  # the head is read in the statement above every time
        self.appended()
        return ids

    @property
    def _under_the_lock(self) -> str:
        """Store the new subjects' keys (unless a subject has one), notify listeners, and read
        the log head (its size from the greatest node key, its border the nodes of the set
        bits of the size: `merkle.border_indexes` and `node_key` in SQL) and the signer's
        actor versions after the one it was authorised from."""
        return self.sql(
            "WITH keys_stored AS ("
            " INSERT INTO {subject_keys} (subject, data_key)"
            " SELECT * FROM unnest(%b::text[], %b::bytea[])"
            " ON CONFLICT (subject) DO NOTHING RETURNING subject),"
            " head AS (SELECT COALESCE((max(node) >> 6) + 1, 0) AS size FROM {merkle_tree})"
            " SELECT head.size,"
            " (SELECT array_agg(t.hash ORDER BY t.node) FROM {merkle_tree} t"
            "  WHERE t.node IN (SELECT ((((head.size >> k) << k) - 1) << 6) | k"
            "  FROM generate_series(0, 62) AS k WHERE ((head.size >> k) & 1) = 1)) AS border,"
            " (SELECT array_agg(originator_version) FROM {events}"
            "  WHERE originator_id = %s AND originator_version > %s) AS signer_versions,"
            " (SELECT array_agg(subject) FROM keys_stored) AS keys_stored,"
            " pg_notify(%s, '') AS notified"
            " FROM head"
        )

    def _under_the_lock_params(self, new_keys: list[tuple[str, bytes]]) -> list[Any]:
        stream, version = self._signer_guard or (None, 0)
        subjects, keys = _columns(new_keys, 2)
        return [subjects, keys, stream, version, self.channel_name]

    def insert_tree_rows(self, cursor: Any, rows: list[tuple[int, bytes, int | None]]) -> None:
        """One statement over arrays (one INSERT per row cost a third more), sent in binary:
        in text every hash travels hex-escaped (the tree's overhead at 100 events a
        transaction was +12-13% that way, +5-8% in binary; docs/benchmarks.md §7.9)."""
        cursor.execute(
            self.sql(
                "INSERT INTO {merkle_tree} (node, hash, notification_id)"
                " SELECT * FROM unnest(%b::bigint[], %b::bytea[], %b::bigint[])"
            ),
            _columns(rows, 3),
        )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as column arrays, for `unnest`."""
    return [[row[i] for row in rows] for i in range(width)] if rows else [[]] * width


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class LedgerPostgresFactory(PostgresFactory):
    application_recorder_class = LedgerPostgresRecorder


def least_privilege_sql(schema: str, app_role: str, reader_role: str | None = None) -> list[str]:
    """GRANTs for an application role that can append but never rewrite, and a reader role.

    The app role gets UPDATE on the events table only because PostgreSQL requires it for
    `LOCK TABLE … IN EXCLUSIVE MODE`; the append-only trigger still rejects every UPDATE.
    Run as the schema's owner after `calm-ledger init`.
    """
    s = _quote(schema)
    app = _quote(app_role)
    events = f'{s}."calm_ledger_events"'
    tree = ", ".join(f"{s}.{t}" for t in APPEND_ONLY_TABLES)
    statements = [
        f"GRANT USAGE ON SCHEMA {s} TO {app}",
        f"GRANT SELECT, INSERT ON {events}, {tree} TO {app}",
        f"GRANT UPDATE ON {events} TO {app}",
        f"GRANT SELECT, INSERT, UPDATE ON {s}.subject_keys TO {app}",
        f'GRANT USAGE ON SEQUENCE {s}."calm_ledger_events_notification_id_seq" TO {app}',
        f"GRANT USAGE ON TYPE {s}.stored_event_uuid TO {app}",
    ]
    if reader_role:
        reader = _quote(reader_role)
        statements += [
            f"GRANT USAGE ON SCHEMA {s} TO {reader}",
            f"GRANT SELECT ON {events}, {tree} TO {reader}",
        ]
    return statements
