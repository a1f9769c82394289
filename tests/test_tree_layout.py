"""The Merkle tree's storage: node keys in completion order, and moving a ledger written with
the earlier layout (one table each for leaves, nodes and heads) into the single tree table."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.people import Person
from ledger import merkle
from ledger.errors import VerificationError
from ledger.store.base import node_key, node_of_key, size_of_top_key
from tests.conftest import Ledger
from tests.support import Superuser
from tests.test_checkpoints import add_people, cli


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=2**16))
def test_node_keys_round_trip(level: int, index: int) -> None:
    assert node_of_key(node_key(level, index)) == (level, index)


@given(st.integers(min_value=0, max_value=300), st.integers(min_value=1, max_value=40))
def test_node_keys_sort_in_the_order_appends_complete_the_nodes(size: int, more: int) -> None:
    """So every row an append adds sorts after all earlier rows, and the greatest key gives
    the log's size."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size + more)]
    border, before = merkle.append_leaves(0, [], leaves[:size])
    _, after = merkle.append_leaves(size, border, leaves[size:])
    keys = [node_key(level, idx) for level, idx, _ in before + after]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert size_of_top_key(max(keys)) == size + more


def test_size_of_an_empty_tree() -> None:
    assert size_of_top_key(None) == 0


def person(pseudonym: str) -> Person:
    return Person.register(
        pseudonym, "ward-1", full_name=None, date_of_birth=None, learning_disability_or_autism=False
    )


def to_earlier_layout(su: Superuser) -> None:
    """Rewrite the tree as the earlier layout stored it (what a ledger written by an earlier
    version holds)."""
    blob, level = ("BLOB", "INTEGER") if su.is_sqlite else ("bytea", "smallint")
    big = "INTEGER" if su.is_sqlite else "bigint"
    tree, leaves, nodes, heads = (
        su.table(t) for t in ("merkle_tree", "merkle_leaves", "merkle_nodes", "log_heads")
    )
    lvl = "(node & 63)" if su.is_sqlite else "(node & 63)::int"
    for statement in (
        f"CREATE TABLE {leaves} (leaf_index {big} PRIMARY KEY,"
        f" notification_id {big} NOT NULL UNIQUE)",
        f"CREATE TABLE {nodes} (level {level} NOT NULL, idx {big} NOT NULL,"
        f" hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
        f"CREATE TABLE {heads} (size {big} PRIMARY KEY, border {blob} NOT NULL)",
        f"INSERT INTO {leaves} SELECT node >> 6, notification_id FROM {tree}"
        " WHERE notification_id IS NOT NULL",
        f"INSERT INTO {nodes} SELECT {lvl}, (((node >> 6) + 1) >> {lvl}) - 1, hash FROM {tree}",
        f"DROP TABLE {tree}",
    ):
        su.execute(statement)


def test_a_ledger_in_the_earlier_layout_is_upgraded_once_and_verifies(ledger: Ledger) -> None:
    add_people(ledger, 11)
    assert cli(ledger, "checkpoint").exit_code == 0
    to_earlier_layout(Superuser(ledger.db))

    refused = cli(ledger, "verify")
    assert refused.exit_code == 3
    assert "earlier storage layout" in refused.stderr
    assert "calm-ledger db upgrade" in refused.stderr
    query = cli(ledger, "incidents", "list")  # reads the log's size without the ledger app
    assert query.exit_code == 3 and "calm-ledger db upgrade" in query.stderr

    upgraded = cli(ledger, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "moved the tree of 12 leaves" in upgraded.stderr
    assert cli(ledger, "verify").exit_code == 0

    add_people(ledger, 5, start=100)  # appends continue from the moved head
    assert cli(ledger, "checkpoint").exit_code == 0
    assert cli(ledger, "verify").exit_code == 0
    again = cli(ledger, "db", "upgrade")
    assert again.exit_code == 0 and "nothing to do" in again.stderr


def test_upgrade_of_a_missing_sqlite_ledger_writes_nothing(ledger: Ledger) -> None:
    if not Superuser(ledger.db).is_sqlite:
        pytest.skip("an SQLite file only: a PostgreSQL database is checked on connecting")
    path = ledger.store_url.sqlite_path
    assert path is not None
    path.unlink()
    result = cli(ledger, "db", "upgrade")
    assert result.exit_code == 2
    assert "no ledger database" in result.stderr
    assert not path.exists()


def test_writers_taking_turns_each_append_after_the_others(ledger: Ledger) -> None:
    """Each writer process remembers the head it last committed (SQLite appends from it
    without reading it): after another writer's append, that head is stale, and the append
    must notice and build on the stored tree instead."""
    first, second = ledger.open(), ledger.open()
    try:
        writers = [ledger.service(first), ledger.service(second)]
        for n, turn in enumerate([0, 0, 1, 0, 1, 1, 0, 1, 0]):
            writers[turn].save_batch([person(f"P-{n}")])
            assert first.store.head().size == second.store.head().size == n + 2
    finally:
        first.close()
        second.close()
    result = cli(ledger, "verify")
    assert result.exit_code == 0, result.stderr


def test_an_append_refuses_a_log_whose_right_border_is_not_all_stored(ledger: Ledger) -> None:
    """The head is derived from the border's nodes: with one deleted, an append would build on
    a wrong border, so it fails and writes nothing (verify names the node)."""
    add_people(ledger, 6)  # 7 leaves with ada's enrolment: border (2, 0), (1, 2), (0, 6)
    su = Superuser(ledger.db)
    su.execute(f"DELETE FROM {su.table('merkle_tree')} WHERE node = ?", (node_key(1, 2),))
    app = ledger.open()
    try:
        with pytest.raises(VerificationError, match="right border at size 7 is not all stored"):
            ledger.service(app).save_batch([person("P-new")])
        assert len(su.query(f"SELECT 1 FROM {su.table('events')}")) == 7
    finally:
        app.close()
    result = cli(ledger, "verify")
    assert result.exit_code == 1 and "node (1, 2)" in result.stderr
