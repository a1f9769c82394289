"""The embedded store: the library's SQLite recorder plus the ledger tables and triggers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

from ledger.store.base import APPEND_ONLY_TABLES, LedgerTables, chunks

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # `node` is the rowid: rows sit in key order, so an append's rows share the last page.
    "CREATE TABLE IF NOT EXISTS merkle_tree ("
    " node INTEGER PRIMARY KEY CHECK (node >= 0), hash BLOB NOT NULL,"
    " notification_id INTEGER,"
    " CHECK (((node & 63) = 0) = (notification_id IS NOT NULL)))",
    "CREATE UNIQUE INDEX IF NOT EXISTS merkle_tree_leaf_events"
    " ON merkle_tree (notification_id) WHERE notification_id IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cosignatures ("
    " size INTEGER NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, line))",
    # One B-tree, not a rowid table and its key index: an append that registers someone
    # writes one page less. (Ledgers made before keep the rowid table; the SQL is the same.)
    "CREATE TABLE IF NOT EXISTS subject_keys (subject TEXT PRIMARY KEY, data_key BLOB)"
    " WITHOUT ROWID",
)


def _append_only_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for verb in ("UPDATE", "DELETE")
    ]


class LedgerSQLiteRecorder(LedgerTables, SQLiteApplicationRecorder):
    """Inserts events and advances the Merkle tree in one SQLite write transaction."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements += _SCHEMA
        for table in ("stored_events", *APPEND_ONLY_TABLES):
            statements += _append_only_triggers(table)
        return statements

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            ids = super().insert_events(stored_events, **kwargs)
        except BaseException:
            self.tree_committed(False)
            raise
        self.tree_committed(True)
        self.appended()
        return ids

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The INSERT takes SQLite's write lock before the head is read.
        ids = super()._insert_events(c, stored_events, **kwargs)
        if ids is None:
            raise AssertionError("SQLite recorder returned no notification ids")
        if stored_events:
            self.append_leaves(c, stored_events, ids)
        return ids

    def table_exists(self, cursor: Any, name: str) -> bool:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cursor.fetchone() is not None

    def append_leaves(self, cursor: Any, events: Sequence[StoredEvent], ids: Sequence[int]) -> None:
        """Under the write lock: add the events as leaves with the complete subtrees they
        close, check the signer and store the new subjects' keys. The tree grows from the head
        this process last committed, if it has one, without reading it: if another writer
        has appended since, the first row written (the leaf at the remembered size) exists
        already, that statement alone fails (SQLite keeps the transaction), and the append
        reads the head and writes again. (PostgreSQL does all this in `insert_events`.)

        When the remembered head holds, nothing has been appended since this process's last
        commit, so a signer that commit checked, and did not itself change, is unchanged: the
        signer's versions need not be read again."""
        remembered = self._head
        if remembered is not None:
            try:
                self.write_tree(cursor, remembered, events, ids)
            except sqlite3.IntegrityError:
                self._head = None
            else:
                if not self.signer_checked_at_last_commit(events):
                    self.check_signer_unchanged(cursor, events)
                self.store_new_keys(cursor)
                return
        self.write_tree(cursor, self.read_head(cursor), events, ids)
        self.check_signer_unchanged(cursor, events)
        self.store_new_keys(cursor)

    def store_new_keys(self, cursor: Any) -> None:
        """Under the write lock: insert the keys made for new subjects, unless one exists. One
        statement: a subject that has a key already (or its tombstone) inserts no row, and
        only then are the stored keys read, to name the subjects that clashed."""
        new_keys = self.take_used_keys()
        if not new_keys:
            return
        cursor.executemany(
            self.sql(
                "INSERT INTO {subject_keys} (subject, data_key) VALUES (?, ?)"
                " ON CONFLICT (subject) DO NOTHING"
            ),
            new_keys,
        )
        if cursor.sqlite_cursor.rowcount == len(new_keys):
            return
        ours = dict(new_keys)
        clashed: set[str] = set()
        for chunk in chunks(list(ours), 500):
            cursor.execute(
                self.sql(
                    "SELECT subject, data_key FROM {subject_keys} WHERE subject IN"
                    f" ({', '.join('?' for _ in chunk)})"
                ),
                list(chunk),
            )
            clashed |= {
                r["subject"] for r in cursor.fetchall() if r["data_key"] != ours[r["subject"]]
            }
        self.new_keys_clashed(clashed)

    def destroy_data_key(self, subject: str) -> None:
        self._forget_key(subject)
        with self.transaction(commit=True) as c:
            c.execute("PRAGMA secure_delete = ON")  # overwrite the old key's bytes with zeros
            self._null_key(c, subject)
        with self.transaction(commit=False) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and drop the old page from the WAL


class LedgerSQLiteFactory(SQLiteFactory):
    application_recorder_class = LedgerSQLiteRecorder
