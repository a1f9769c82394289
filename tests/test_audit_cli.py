"""`calm-ledger audit …`: every event about an incident, a person or by an actor, with its
signer, role, key and whether the signature verifies — on both stores, and read without
opening the ledger application."""

from __future__ import annotations

import json

import pytest

from ledger.store.base import LEVEL_BITS
from ledger.store.reads import EVENTS_TABLE, LogReader
from tests.conftest import PASSPHRASE, Ledger
from tests.history import add_incidents, setup_ward
from tests.raw_tables import RawTables
from tests.support import modules_loaded_by_cli, run_cli
from tests.test_query_cli import cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}


def audit(ledger: Ledger, *args: str) -> list[dict[str, object]]:
    return cli(ledger, "audit", *args)


@pytest.fixture
def ward(ledger: Ledger) -> Ledger:
    service = setup_ward(ledger)
    add_incidents(service, 6, seed=3)
    service.app.close()
    return ledger


def test_audit_names_every_event_its_signer_role_key_and_a_valid_signature(
    ward: Ledger,
) -> None:
    trail = audit(ward, "person", "P-0")
    app = ward.open()
    try:
        leaves = {row.leaf_index: row for row in app.store.iter_leaves()}
    finally:
        app.close()
    assert trail[0]["type"] == "person.registered" and len(trail) > 1
    assert [row["leaf"] for row in trail] == sorted(int(str(row["leaf"])) for row in trail)
    for row in trail:
        event = leaves[int(str(row["leaf"]))].event
        assert event is not None and (str(event.originator_id), event.originator_version) == (
            row["stream"],
            row["version"],
        )
        assert (row["signed_by"], row["role"], row["signature"]) == (
            "lee",
            "safeguarding-lead",
            "valid",
        )
    by_actor = audit(ward, "actor", "ada")
    assert {row["type"] for row in by_actor} >= {"actor.enrolled"}
    assert all(row["role"] == "admin" and row["signature"] == "valid" for row in by_actor)


def test_audit_shows_a_changed_event_as_invalid_and_a_deleted_one_as_missing(
    ward: Ledger,
) -> None:
    trail = audit(ward, "person", "P-0")
    raw = RawTables(ward.db)
    tree = {
        int(r["node"]) >> LEVEL_BITS: r for r in raw.rows("merkle_tree") if r["notification_id"]
    }
    events = {int(r["nid"]): r for r in raw.rows("events")}
    changed, deleted = (
        events[int(tree[int(str(row["leaf"]))]["notification_id"])] for row in trail[1:3]
    )
    state = bytes(changed["state"])
    at = state.index(b'"recorded_at"') + len('"recorded_at":"2')
    raw.replace("events", changed, state=state[:at] + b"1" + state[at + 1 :])  # 2026 -> 2126
    raw.delete("events", deleted)
    after = audit(ward, "person", "P-0")
    assert [row["signature"] for row in after] == [
        "valid",
        "INVALID",
        "missing",
        *["valid"] * (len(trail) - 3),
    ]


def test_audit_and_show_read_without_the_ledger_application(ward: Ledger) -> None:
    listed = run_cli(["--dir", str(ward.directory), "incidents", "list", "--format", "json"], ENV)
    first = json.loads(listed.stdout)[0]["incident"]  # and the read tables are caught up
    base = ["--dir", str(ward.directory)]
    heavy = ("eventsourcing.application", "ledger.app", "ledger.actors", "ledger.recording")
    audit_args = [*base, "audit", "person", "P-0", "--format", "json"]
    assert modules_loaded_by_cli(audit_args, (*heavy, "pydantic", "eventsourcing")) == []
    assert modules_loaded_by_cli([*base, "incidents", "show", first], heavy) == []


def test_leaf_states_are_the_bytes_the_application_reads(ward: Ledger) -> None:
    app = ward.open()
    try:
        stored = {row.leaf_index: row.event.state for row in app.store.iter_leaves() if row.event}
        assert EVENTS_TABLE[ward.store_url.backend] in app.store.events_table
        connection = None
        if ward.store_url.backend == "postgresql":
            import psycopg

            url = ward.store_url
            connection = psycopg.connect(
                host=url.pg_host, port=url.pg_port, user=url.pg_user, dbname=url.pg_dbname
            )
        try:
            wanted = [0, 5, len(stored) - 1, len(stored), len(stored) + 7]
            reader = LogReader(ward.store_url, connection)
            found = reader.leaf_states(wanted)
            reader.close()
        finally:
            if connection is not None:
                connection.close()
    finally:
        app.close()
    assert found == {leaf: stored[leaf] for leaf in wanted[:3]}  # beyond the log: absent
