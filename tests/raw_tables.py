"""Rows of a ledger's tables as a database superuser sees them (triggers bypassed): read them
all, delete, insert and replace single rows, and put a whole snapshot back in one transaction.

Used by the tamper matrix (damage one row, verify, restore) and the crash tests (read what a
killed writer left behind).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import Superuser

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]

# Every table the ledger writes, its columns, and the columns that identify a row. "nid" is the
# events table's notification id: `rowid` on SQLite, `notification_id` on PostgreSQL.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "events": ("nid", "originator_id", "originator_version", "topic", "state"),
    "ledger_meta": ("key", "value"),
    "merkle_tree": ("node", "hash", "notification_id"),
    "checkpoints": ("size", "note"),
    "cosignatures": ("size", "line"),
    "subject_keys": ("subject", "data_key"),
}
KEYS: Mapping[str, tuple[str, ...]] = {
    "events": ("nid",),
    "ledger_meta": ("key",),
    "merkle_tree": ("node",),
    "checkpoints": ("size",),
    "cosignatures": ("size", "line"),
    "subject_keys": ("subject",),
}


class RawTables(Superuser):
    """Whole rows, as dicts keyed by the names in COLUMNS."""

    def column(self, name: str) -> str:
        return self.nid if name == "nid" else name

    def _columns(self, table: str) -> str:
        return ", ".join(self.column(c) for c in COLUMNS[table])

    def rows(self, table: str) -> list[Row]:
        with self.connection(write=False) as run:
            return self._rows(run, table)

    def snapshot(self) -> Snapshot:
        """Every table's rows, read in one transaction."""
        with self.connection(write=False) as run:
            return {table: self._rows(run, table) for table in COLUMNS}

    def _rows(self, run: Any, table: str) -> list[Row]:
        order = ", ".join(self.column(c) for c in KEYS[table])
        found = run(f"SELECT {self._columns(table)} FROM {self.table(table)} ORDER BY {order}", ())
        return [_plain(dict(zip(COLUMNS[table], row, strict=True))) for row in found.fetchall()]

    def delete(self, table: str, row: Row) -> None:
        with self.connection() as run:
            run(*self._delete(table, row))

    def insert(self, table: str, row: Row) -> None:
        with self.connection() as run:
            run(*self._insert(table, row))

    def replace(self, table: str, row: Row, **changes: Any) -> None:
        """Change columns of one row in place (the triggers that forbid it are off)."""
        sets = ", ".join(f"{self.column(c)} = ?" for c in changes)
        where, params = self._where(table, row)
        with self.connection() as run:
            run(
                f"UPDATE {self.table(table)} SET {sets} WHERE {where}", (*changes.values(), *params)
            )

    def swap(self, table: str, a: Row, b: Row, column: str) -> None:
        """Exchange one column's values between two rows (in one transaction, so unique
        columns can be swapped too)."""
        with self.connection() as run:
            run(*self._delete(table, a))
            run(*self._delete(table, b))
            run(*self._insert(table, {**a, column: b[column]}))
            run(*self._insert(table, {**b, column: a[column]}))

    def restore(self, snapshot: Snapshot) -> None:
        """Put every table back exactly as in `snapshot`."""
        with self.connection() as run:
            for table, rows in snapshot.items():
                run(f"DELETE FROM {self.table(table)}", ())
                for row in rows:
                    run(*self._insert(table, row))

    def _where(self, table: str, row: Row) -> tuple[str, tuple[Any, ...]]:
        keys = KEYS[table]
        return " AND ".join(f"{self.column(k)} = ?" for k in keys), tuple(row[k] for k in keys)

    def _delete(self, table: str, row: Row) -> tuple[str, tuple[Any, ...]]:
        where, params = self._where(table, row)
        return f"DELETE FROM {self.table(table)} WHERE {where}", params

    def _insert(self, table: str, row: Row) -> tuple[str, tuple[Any, ...]]:
        names = [c for c in COLUMNS[table] if c in row]
        marks = ", ".join("?" for _ in names)
        columns = ", ".join(self.column(c) for c in names)
        sql = f"INSERT INTO {self.table(table)} ({columns}) VALUES ({marks})"
        return sql, tuple(row[c] for c in names)

    @contextmanager
    def connection(self, *, write: bool = True) -> Iterator[Any]:
        """One transaction, with the triggers off when it writes; yields run(sql, params)."""
        if self.is_sqlite:
            path = self.url.sqlite_path
            if not isinstance(path, Path):
                raise AssertionError("an SQLite store has a path")
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA synchronous = OFF")  # a test database: no fsync needed
                triggers = []
                if write:
                    triggers = conn.execute(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                    ).fetchall()
                for name, _ in triggers:
                    conn.execute(f"DROP TRIGGER {name}")
                yield lambda sql, params: conn.execute(sql, params)
                for _, create in triggers:
                    conn.execute(create)
                conn.commit()
            finally:
                conn.close()
            return
        import psycopg

        conninfo = (
            f"host={self.url.pg_host} port={self.url.pg_port} "
            f"user={self.url.pg_user} dbname={self.url.pg_dbname}"
        )
        with psycopg.connect(conninfo) as pg:
            if write:
                pg.execute("SET session_replication_role = replica")  # triggers off
            yield lambda sql, params: pg.execute(sql.replace("?", "%s"), params)
            pg.commit()


def _plain(row: Row) -> Row:
    """Driver types to plain Python: memoryview → bytes, UUID stays (PostgreSQL binds it)."""
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in row.items()}


def raw_bytes(snapshot: Snapshot) -> bytes:
    """Every value of every row as bytes, for scanning a database for secrets."""
    parts: list[bytes] = []
    for rows in snapshot.values():
        for row in rows:
            for value in row.values():
                if isinstance(value, bytes):
                    parts.append(value)
                elif value is not None:
                    parts.append(str(value).encode("utf-8", "surrogateescape"))
    return b"\x00".join(parts)


def sqlite_files(path: Path) -> Sequence[Path]:
    """The database file and its journal / WAL companions, where they exist."""
    candidates = [path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))]
    return [p for p in candidates if p.exists()]
