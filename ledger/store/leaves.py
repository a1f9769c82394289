"""The stored events at given leaves, read without opening the ledger application.

Read-side commands that look at a few rows (`audit`) need neither eventsourcing nor the
mapper: on PostgreSQL one query on a connection they already hold, on SQLite one query on the
ledger file opened read-only. The table names are the ones the library gives the events table
(a test checks them against the stores').
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ledger.errors import StorageUnavailable
from ledger.store import StoreURL

EVENTS_TABLE = {"sqlite": "stored_events", "postgresql": "calm_ledger_events"}
LEVEL_BITS = 6  # as ledger.store.base (which imports eventsourcing): a leaf's node is leaf << 6
CHUNK = 500  # leaves per query (SQLite's bound-parameter limit is far above)


def leaf_states(
    url: StoreURL, leaves: Sequence[int], pg_connection: Any = None
) -> dict[int, bytes | None]:
    """Each leaf's stored event bytes; None for a leaf whose event is gone, and no entry for
    a leaf the log does not hold."""
    found: dict[int, bytes | None] = {}
    wanted = sorted(set(leaves))
    for start in range(0, len(wanted), CHUNK):
        nodes = [leaf << LEVEL_BITS for leaf in wanted[start : start + CHUNK]]
        for node, state in _rows(url, nodes, pg_connection):
            found[int(node) >> LEVEL_BITS] = None if state is None else bytes(state)
    return found


def _rows(url: StoreURL, nodes: list[int], pg_connection: Any) -> list[tuple[Any, Any]]:
    if url.backend == "postgresql":
        schema = f'"{url.pg_schema}".'
        sql = (
            f"SELECT t.node, e.state FROM {schema}merkle_tree t"
            f" LEFT JOIN {schema}{EVENTS_TABLE['postgresql']} e"
            " ON e.notification_id = t.notification_id WHERE t.node = ANY(%s)"
        )
        with pg_connection.cursor() as cursor:
            cursor.execute(sql, (nodes,))
            rows = cursor.fetchall()
        pg_connection.rollback()  # end the implicit read transaction
        return [tuple(row) for row in rows]
    marks = ", ".join("?" * len(nodes))
    sql = (
        f"SELECT t.node, e.state FROM merkle_tree t LEFT JOIN {EVENTS_TABLE['sqlite']} e"
        f" ON e.rowid = t.notification_id WHERE t.node IN ({marks})"
    )
    try:
        conn = sqlite3.connect(f"file:{url.sqlite_path}?mode=ro", uri=True)
        try:
            return conn.execute(sql, nodes).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise StorageUnavailable(f"cannot read the log at {url.describe()}: {e}") from e
