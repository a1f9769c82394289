"""Reading a ledger's stored events and subject keys without opening the ledger application.

Read-side commands that look at a few rows (`audit`, `incidents show`) need neither the
library's application nor its recorder: on PostgreSQL a query or two on one connection, on
SQLite on the ledger file opened read-only. The table names are the ones the library gives
the events table (a test checks them against the stores').
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.errors import NotFound, StorageUnavailable
from ledger.store import StoreURL

EVENTS_TABLE = {"sqlite": "stored_events", "postgresql": "calm_ledger_events"}
LEVEL_BITS = 6  # as ledger.store.base (which imports eventsourcing): a leaf's node is leaf << 6
CHUNK = 500  # leaves per query (SQLite's bound-parameter limit is far above)


def require_ledger_database(store_url: StoreURL) -> None:
    """An SQLite ledger's file must exist (PostgreSQL is checked on connecting)."""
    path = store_url.sqlite_path
    if path is not None and not _is_sqlite_file(path):
        raise NotFound(f"no ledger database at {path} (run 'calm-ledger init' first)")


def _is_sqlite_file(path: Path) -> bool:
    """Only an existing SQLite file: never let SQLite turn some other file into a database."""
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


class LogReader:
    """Read-only queries on the ledger's own tables, on one connection: the caller's
    PostgreSQL connection if given (not closed here), else one of its own."""

    def __init__(self, url: StoreURL, pg_connection: Any = None) -> None:
        self.url = url
        self._postgres = url.backend == "postgresql"
        self._own = pg_connection is None
        if self._postgres:
            schema = f'"{url.pg_schema}".'
            self._conn = pg_connection or connect_postgres(url)
        else:
            schema = ""
            require_ledger_database(url)
            with self._errors():
                self._conn = sqlite3.connect(f"file:{url.sqlite_path}?mode=ro", uri=True)
        self._events = schema + EVENTS_TABLE[url.backend]
        self._tree, self._keys = f"{schema}merkle_tree", f"{schema}subject_keys"
        self._nid = "notification_id" if self._postgres else "rowid"

    def close(self) -> None:
        if self._own:
            self._conn.close()

    def leaf_states(self, leaves: Iterable[int]) -> dict[int, bytes | None]:
        """Each leaf's stored event bytes; None for a leaf whose event is gone, and no entry
        for a leaf the log does not hold."""
        found: dict[int, bytes | None] = {}
        wanted = sorted(set(leaves))
        for start in range(0, len(wanted), CHUNK):
            nodes = [leaf << LEVEL_BITS for leaf in wanted[start : start + CHUNK]]
            rows = self._query(
                f"SELECT t.node, e.state FROM {self._tree} t LEFT JOIN {self._events} e"
                f" ON e.{self._nid} = t.notification_id WHERE t.node IN ({self._marks(nodes)})",
                nodes,
            )
            for node, state in rows:
                found[int(node) >> LEVEL_BITS] = None if state is None else bytes(state)
        return found

    def stream_states(self, stream: UUID) -> list[bytes]:
        """A stream's stored events, in version order."""
        rows = self._query(
            f"SELECT state FROM {self._events} WHERE originator_id = {self._mark}"
            " ORDER BY originator_version",
            [stream if self._postgres else stream.hex],
        )
        return [bytes(state) for (state,) in rows]

    # SubjectKeys (ledger.mapper), for reading: one query per subject, never a new key.

    def data_key(self, subject: str, *, create: bool) -> bytes | None:
        if create:
            raise AssertionError("a log reader makes no keys")
        rows = self._query(
            f"SELECT data_key FROM {self._keys} WHERE subject = {self._mark}", [subject]
        )
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def prefetch_keys(self, subjects: Iterable[str]) -> None:
        pass  # a show or an audit reads a handful of subjects

    @property
    def _mark(self) -> str:
        return "%s" if self._postgres else "?"

    def _marks(self, values: Sequence[object]) -> str:
        return ", ".join([self._mark] * len(values))

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        with self._errors():
            if not self._postgres:
                return self._conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]
            try:
                with self._conn.cursor() as cursor:
                    cursor.execute(sql, params)
                    return [tuple(row) for row in cursor.fetchall()]
            finally:
                self._conn.rollback()  # end the implicit read transaction

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise StorageUnavailable(f"cannot read the log at {self.url.describe()}: {e}") from e
        except Exception as e:
            if type(e).__module__.startswith("psycopg"):
                raise StorageUnavailable(
                    f"cannot read the log at {self.url.describe()}: {first_line(e)}"
                ) from e
            raise


def connect_postgres(url: StoreURL) -> Any:
    """A psycopg connection to the store's database; StorageUnavailable (exit 3) with the
    server's own reason if it cannot be reached."""
    import psycopg

    try:
        return psycopg.connect(
            host=url.pg_host,
            port=url.pg_port,
            user=url.pg_user,
            password=url.pg_password or None,
            dbname=url.pg_dbname,
            connect_timeout=5,
        )
    except psycopg.Error as e:
        raise StorageUnavailable(
            f"cannot reach the database {url.describe()}: {first_line(e)}"
        ) from None


def first_line(error: BaseException) -> str:
    """A database error's first line, for a one-line message."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
