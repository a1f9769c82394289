"""The tamper matrix: for every table the ledger writes and every column, one kind of damage a
database superuser can do with the append-only triggers bypassed — change one byte, delete a
row, insert a copy (or, where a key forbids an exact copy, a near-copy), swap two rows' values —
and what `calm-ledger verify` then says.

Detectable damage: verify exits 1 and names the damaged event, leaf, node or checkpoint
and the failed check. Damage that is undetectable by design has its own test, whose docstring
says why (and, where verify could do better, how).

One ledger is built per store (with two checkpoints, the second witnessed, so truncation is
detectable); each test damages it, runs verify, and puts every table back.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from domain.roles import Role
from ledger import note
from ledger.checkpoints import add_cosignatures, sign_checkpoint
from ledger.envelope import decode_envelope
from ledger.errors import MalformedNote, SignatureInvalid
from ledger.keys import SigningKey
from ledger.setup import init_ledger
from ledger.store.base import LEVEL_BITS, node_key
from tests.conftest import FAST_KDF, ORIGIN, PASSPHRASE, PG_URL, Ledger, require_postgres
from tests.raw_tables import RawTables, Row, Snapshot
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
WITNESS = "regulator.example"


@dataclass
class Built:
    """The ledger under test and what it held before any damage."""

    ledger: Ledger
    pristine: Snapshot
    witness: note.NoteVerifierKey
    names: dict[str, str]  # "e3" → "leaf 3 stream … v1 (person.registered)", "s3" → stream

    @property
    def su(self) -> RawTables:
        return RawTables(self.ledger.db)

    def row(self, table: str, **match: Any) -> Row:
        (found,) = [r for r in self.pristine[table] if all(r[k] == v for k, v in match.items())]
        return found

    def node(self, level: int, index: int) -> Row:
        return self.row("merkle_tree", node=node_key(level, index))

    def event(self, leaf: int) -> Row:
        return self.row("events", nid=self.node(0, leaf)["notification_id"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    """Leaves: 0 ada enrolled (by the log key) · 1 lee · 2 sam · 3 P-0 and 4 P-1 registered
    with sealed fields (by lee) · 5 sam re-keyed; checkpoint at 6 · 6 P-2 registered · 7 P-2
    erased (its key row is a NULL tombstone); checkpoint at 8; both checkpoints cosigned."""
    tmp = tmp_path_factory.mktemp("matrix")
    schema = None
    if request.param == "sqlite":
        db = f"sqlite:///{tmp / 'ledger.db'}"
    else:
        require_postgres()
        import psycopg

        schema = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        db = f"{PG_URL}?schema={schema}"
    try:
        yield _build(tmp / "ledger", db)
    finally:
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _build(directory: Path, db: str) -> Built:
    made = init_ledger(
        directory,
        origin=ORIGIN,
        db=db,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=FAST_KDF,
    )
    ledger = Ledger(directory, db, made.log_key, made.admin_key)
    witness_key = SigningKey.generate()
    witness = note.NoteVerifierKey(
        WITNESS, witness_key.public_key, note.SignatureType.COSIGNATURE_V1
    )
    app = ledger.open()
    try:
        lee = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
        ledger.enrol(app, "sam", Role.RECORDER)
        lead = ledger.service(app, "lee", lee)
        for n in range(2):
            lead.register_person(
                f"P-{n}", "ward-1", full_name=f"Person {n}", date_of_birth=date(2012, 1, n + 1)
            )
        ledger.service(app).rekey_actor("sam", SigningKey.generate().public_key, "rotation")
        checkpoints = [sign_checkpoint(app, ORIGIN, made.log_key)]
        lead.register_person("P-2", "ward-1", full_name="Person 2", date_of_birth=date(2012, 1, 3))
        lead.erase_subject("P-2", "retention period ended")
        checkpoints.append(sign_checkpoint(app, ORIGIN, made.log_key))
        for cp in checkpoints:
            line = note.cosign_with(
                note.format_checkpoint(cp.checkpoint),
                WITNESS,
                witness_key.public_key,
                witness_key.sign,
                1_800_000_000,
            )
            add_cosignatures(app, ORIGIN, made.log_key.public_key, line, witness, cp.size)
        names: dict[str, str] = {}
        for row in app.store.iter_leaves():
            if row.event is None:
                raise AssertionError("a freshly built ledger has every event")
            h = decode_envelope(row.event.state).header()
            names[f"s{row.leaf_index}"] = h.stream
            names[f"e{row.leaf_index}"] = f"leaf {row.leaf_index} stream {h.stream} v{h.version}"
    finally:
        app.close()
    pristine = RawTables(db).snapshot()
    assert [r["size"] for r in pristine["checkpoints"]] == [6, 8]
    assert len(pristine["cosignatures"]) == 2
    return Built(ledger, pristine, witness, names)


@pytest.fixture
def damaged(built: Built) -> Iterator[Built]:
    """The built ledger, put back exactly as it was after the test has damaged it."""
    yield built
    su = built.su
    su.restore(built.pristine)
    assert su.snapshot() == built.pristine


def verify(built: Built) -> tuple[int, dict[str, Any], str]:
    result = run_cli(["--dir", str(built.ledger.directory), "verify", "--format", "json"], env=ENV)
    assert result.exit_code in (0, 1), result.stderr  # never a crash
    return result.exit_code, json.loads(result.stdout), result.stderr


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{f['check']}: {f['where']}: {f['message']}" for f in report["failures"]]


# --- byte-level damage --------------------------------------------------------------------


def flip(raw: bytes, offset: int) -> bytes:
    return raw[:offset] + bytes([raw[offset] ^ 0x01]) + raw[offset + 1 :]


def change_char(text: str, offset: int) -> str:
    """Change one character (so one byte of its ASCII encoding)."""
    new = "b" if text[offset] != "b" else "c"
    return text[:offset] + new + text[offset + 1 :]


def change_int(value: int) -> int:
    """Change one byte of an integer: bit 4 of its lowest byte (3 → 19, 8 → 24): a value
    beyond the small ledger built here, so no key collides."""
    return value ^ 0x10


def change_node(node: Row) -> int:
    """Change one byte of a node's key in its leaf part (its level is the low 6 bits)."""
    return int(node["node"]) ^ (0x10 << LEVEL_BITS)


def change_uuid(value: Any) -> Any:
    """Change one hex digit of a stream id, keeping the column's type."""
    text = str(value)
    changed = text[:-1] + ("0" if text[-1] != "0" else "1")
    return uuid.UUID(changed) if isinstance(value, uuid.UUID) else changed


def envelope_offset(state: bytes, part: str) -> int:
    """The offset of one byte inside a part of a stored envelope."""
    env = decode_envelope(state)
    header_at = 8
    signature_at = header_at + len(env.header_bytes)
    data_len_at = signature_at + 64
    data_at = data_len_at + 4
    disclosures_at = data_at + len(env.data_bytes) + 4
    return {
        "magic": 0,
        "header length": 7,
        "header": header_at + env.header_bytes.index(b'"recorded_at":"') + 16,
        "signature": signature_at + 10,
        "data length": data_len_at + 3,
        "data": data_at + env.data_bytes.index(b"ward-1") + 5,
        "disclosures": disclosures_at + len(env.disclosures_bytes) - 3,
    }[part]


# --- the detectable cases -----------------------------------------------------------------

Tamper = Callable[[RawTables, Built], None]


@dataclass(frozen=True)
class Case:
    tamper: Tamper
    check: str
    names: str  # formatted with Built.names, looked for in "where: message"


def state_byte(part: str) -> Tamper:
    def tamper(su: RawTables, b: Built) -> None:
        row = b.event(3)
        su.replace("events", row, state=flip(row["state"], envelope_offset(row["state"], part)))

    return tamper


def near_copy_event(su: RawTables, b: Built) -> None:
    """The same envelope again under another version of its stream (an exact copy would
    break the events table's primary key)."""
    row = b.event(3)
    su.insert("events", {k: v for k, v in row.items() if k != "nid"} | {"originator_version": 17})


def truncate_tail(su: RawTables, b: Built) -> None:
    """A clean truncation: the last three events and every node over them removed."""
    for leaf in (5, 6, 7):
        su.delete("events", b.event(leaf))
    for node in b.pristine["merkle_tree"]:
        if node["node"] >= node_key(0, 5):
            su.delete("merkle_tree", node)


def meta(key: str) -> Callable[[Built], Row]:
    return lambda b: b.row("ledger_meta", key=key)


CASES: dict[str, Case] = {
    # the events table: stored_events (SQLite) / calm_ledger_events (PostgreSQL)
    "events.originator_id.byte": Case(
        lambda su, b: su.replace(
            "events", b.event(3), originator_id=change_uuid(b.event(3)["originator_id"])
        ),
        "leaves",
        "leaf 3: header names another stream",
    ),
    "events.originator_version.byte": Case(
        lambda su, b: su.replace(
            "events", b.event(3), originator_version=change_int(b.event(3)["originator_version"])
        ),
        "leaves",
        "leaf 3: header names another stream",
    ),
    "events.state.magic-byte": Case(state_byte("magic"), "envelopes parse", "leaf 3: not a"),
    "events.state.header-length-byte": Case(
        state_byte("header length"), "envelopes parse", "leaf 3: "
    ),
    "events.state.header-byte": Case(state_byte("header"), "signatures", "{e3} "),
    "events.state.signature-byte": Case(state_byte("signature"), "signatures", "{e3} "),
    "events.state.data-length-byte": Case(state_byte("data length"), "envelopes parse", "leaf 3: "),
    "events.state.data-byte": Case(state_byte("data"), "data digests", "{e3} "),
    "events.state.disclosures-byte": Case(state_byte("disclosures"), "disclosures", "{e3} "),
    "events.nid.byte": Case(
        lambda su, b: su.replace("events", b.event(3), nid=change_int(b.event(3)["nid"]) + 1000),
        "leaves",
        "leaf 3: the event of this leaf is missing",
    ),
    "events.delete": Case(
        lambda su, b: su.delete("events", b.event(3)),
        "leaves",
        "leaf 3: the event of this leaf is missing",
    ),
    "events.near-copy": Case(
        near_copy_event, "leaves", "stream {s3} v17: event is not a leaf of the log"
    ),
    "events.state.swap": Case(
        lambda su, b: su.swap("events", b.event(3), b.event(4), "state"),
        "leaves",
        "leaf 3: header names another stream",
    ),
    "events.originator_id.swap": Case(
        lambda su, b: su.swap("events", b.event(3), b.event(4), "originator_id"),
        "leaves",
        "leaf 3: header names another stream",
    ),
    "events.originator_version.swap": Case(
        lambda su, b: su.swap("events", b.event(2), b.event(5), "originator_version"),
        "leaves",
        "leaf 2: header names another stream",
    ),
    "events.nid.swap": Case(
        lambda su, b: su.swap("events", b.event(3), b.event(4), "nid"), "tree", "node (0, 3)"
    ),
    "events.truncate-tail": Case(
        truncate_tail, "checkpoints", "checkpoint at size 8: names size 8 but the log has 5"
    ),
    # ledger_meta: only `origin` is read by verify (and compared with the config file's)
    "ledger_meta.value.byte": Case(
        lambda su, b: su.replace(
            "ledger_meta", meta("origin")(b), value=change_char(meta("origin")(b)["value"], 0)
        ),
        "origin",
        "ledger_meta: database origin",
    ),
    "ledger_meta.key.byte": Case(
        lambda su, b: su.replace("ledger_meta", meta("origin")(b), key=change_char("origin", 5)),
        "origin",
        "ledger_meta: database origin None",
    ),
    "ledger_meta.delete": Case(
        lambda su, b: su.delete("ledger_meta", meta("origin")(b)),
        "origin",
        "ledger_meta: database origin None",
    ),
    "ledger_meta.value.swap": Case(
        lambda su, b: su.swap("ledger_meta", meta("origin")(b), meta("format")(b), "value"),
        "origin",
        "ledger_meta: database origin 'calm-ledger/v1'",
    ),
    # merkle_tree: a leaf's row (level 0) names its event; other rows are interior nodes
    "merkle_tree.node.byte": Case(
        lambda su, b: su.replace("merkle_tree", b.node(0, 3), node=change_node(b.node(0, 3))),
        "leaves",
        "leaf index 3 is missing (gap)",
    ),
    "merkle_tree.node.byte-of-an-interior-node": Case(
        lambda su, b: su.replace("merkle_tree", b.node(1, 1), node=change_node(b.node(1, 1))),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.node.level-byte": Case(
        lambda su, b: su.replace("merkle_tree", b.node(1, 1), node=b.node(1, 1)["node"] ^ 0x02),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.notification_id.byte": Case(
        lambda su, b: su.replace(
            "merkle_tree", b.node(0, 3), notification_id=change_int(b.event(3)["nid"]) + 1000
        ),
        "leaves",
        "leaf 3: the event of this leaf is missing",
    ),
    "merkle_tree.hash.byte": Case(
        lambda su, b: su.replace("merkle_tree", b.node(1, 1), hash=flip(b.node(1, 1)["hash"], 31)),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.hash.byte-of-a-leaf": Case(
        lambda su, b: su.replace("merkle_tree", b.node(0, 3), hash=flip(b.node(0, 3)["hash"], 0)),
        "tree",
        "node (0, 3)",
    ),
    "merkle_tree.hash.one-byte-shorter": Case(
        lambda su, b: su.replace("merkle_tree", b.node(1, 1), hash=b.node(1, 1)["hash"][:-1]),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.delete": Case(
        lambda su, b: su.delete("merkle_tree", b.node(0, 3)),
        "leaves",
        "leaf index 3 is missing (gap)",
    ),
    "merkle_tree.delete-an-interior-node": Case(
        lambda su, b: su.delete("merkle_tree", b.node(1, 1)),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.near-copy": Case(
        lambda su, b: su.insert(
            "merkle_tree",
            {
                **b.node(0, 7),
                "node": node_key(0, 8),
                "notification_id": b.event(7)["nid"] + 1000,
            },
        ),
        "leaves",
        "leaf 8: the event of this leaf is missing",
    ),
    "merkle_tree.near-copy-of-an-interior-node": Case(
        lambda su, b: su.insert("merkle_tree", {**b.node(1, 3), "node": node_key(1, 4)}),
        "tree",
        "merkle_tree: 1 stored node(s) beyond the leaves",
    ),
    "merkle_tree.notification_id.swap": Case(
        lambda su, b: su.swap("merkle_tree", b.node(0, 3), b.node(0, 4), "notification_id"),
        "tree",
        "node (0, 3)",
    ),
    "merkle_tree.node.swap": Case(  # leaves 3 and 4 each keep hash and event: moved together
        lambda su, b: su.swap("merkle_tree", b.node(0, 3), b.node(0, 4), "node"),
        "tree",
        "node (1, 1)",
    ),
    "merkle_tree.hash.swap": Case(
        lambda su, b: su.swap("merkle_tree", b.node(0, 3), b.node(0, 4), "hash"),
        "tree",
        "node (0, 3)",
    ),
    "merkle_tree.hash.swap-across-levels": Case(
        lambda su, b: su.swap("merkle_tree", b.node(0, 1), b.node(1, 1), "hash"),
        "tree",
        "node (0, 1)",
    ),
    # checkpoints
    "checkpoints.size.byte": Case(
        lambda su, b: su.replace("checkpoints", b.row("checkpoints", size=6), size=change_int(6)),
        "checkpoints",
        "checkpoint at size 22: origin or size differs",
    ),
    "checkpoints.note.byte": Case(
        lambda su, b: su.replace(
            "checkpoints",
            b.row("checkpoints", size=6),
            note=change_char(b.row("checkpoints", size=6)["note"], len(ORIGIN) + 3),
        ),
        "checkpoints",
        "checkpoint at size 6: ",
    ),
    "checkpoints.near-copy": Case(
        lambda su, b: su.insert("checkpoints", {**b.row("checkpoints", size=6), "size": 7}),
        "checkpoints",
        "checkpoint at size 7: origin or size differs",
    ),
    "checkpoints.note.swap": Case(
        lambda su, b: su.swap(
            "checkpoints", b.row("checkpoints", size=6), b.row("checkpoints", size=8), "note"
        ),
        "checkpoints",
        "checkpoint at size 6: origin or size differs",
    ),
    "checkpoints.size.swap": Case(
        lambda su, b: su.swap(
            "checkpoints", b.row("checkpoints", size=6), b.row("checkpoints", size=8), "size"
        ),
        "checkpoints",
        "checkpoint at size 8: origin or size differs",
    ),
    # subject_keys (cosignatures: see the tests below; verify does not read them)
    "subject_keys.data_key.byte": Case(
        lambda su, b: su.replace(
            "subject_keys",
            b.row("subject_keys", subject="P-0"),
            data_key=flip(b.row("subject_keys", subject="P-0")["data_key"], 0),
        ),
        "disclosures",
        "{e3} (person.registered): disclosure of",
    ),
    "subject_keys.data_key.truncated": Case(
        lambda su, b: su.replace(
            "subject_keys",
            b.row("subject_keys", subject="P-0"),
            data_key=b.row("subject_keys", subject="P-0")["data_key"][:-1],
        ),
        "disclosures",
        "{e3} (person.registered): disclosure of",
    ),
    "subject_keys.data_key.swap": Case(
        lambda su, b: su.swap(
            "subject_keys",
            b.row("subject_keys", subject="P-0"),
            b.row("subject_keys", subject="P-1"),
            "data_key",
        ),
        "disclosures",
        "{e4} (person.registered): disclosure of",
    ),
    "subject_keys.tombstone-given-a-key": Case(
        lambda su, b: su.replace(
            "subject_keys", b.row("subject_keys", subject="P-2"), data_key=os.urandom(32)
        ),
        "disclosures",
        "{e6} (person.registered): disclosure of",
    ),
}

CASES |= {
    # the type column is unsigned; `actors list` selects enrolments by it
    "events.topic.byte": Case(
        lambda su, b: su.replace("events", b.event(2), topic=change_char(b.event(2)["topic"], 0)),
        "leaves",
        "leaf 2: row type 'bctor.enrolled' is not the signed type",
    ),
    "events.topic.swap": Case(
        lambda su, b: su.swap("events", b.event(2), b.event(3), "topic"),
        "leaves",
        "leaf 2: row type 'person.registered' is not the signed type",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_damage_is_detected_and_named(damaged: Built, case: Case) -> None:
    case.tamper(damaged.su, damaged)
    code, report, stderr = verify(damaged)
    expected = case.names.format(**damaged.names)
    assert code == 1, "damage went unnoticed"
    assert any(
        f["check"] == case.check and expected in f"{f['where']}: {f['message']}"
        for f in report["failures"]
    ), failures(report)
    assert f"FAIL {case.check}: " in stderr


def test_an_untouched_ledger_verifies_on_every_check(damaged: Built) -> None:
    code, report, _ = verify(damaged)
    assert code == 0, failures(report)
    assert all(c["passed"] > 0 for c in report["checks"])
    assert report["checks"][6]["note"] == "1 erased subject(s) skipped"


def test_a_stream_id_that_is_not_a_uuid_is_reported_not_a_crash(damaged: Built) -> None:
    """SQLite keeps stream ids as text, so a superuser can write one that is not a UUID
    (PostgreSQL's uuid column refuses it)."""
    if not damaged.su.is_sqlite:
        pytest.skip("PostgreSQL's uuid column cannot hold anything but a UUID")
    damaged.su.replace("events", damaged.event(3), originator_id="not-a-stream")
    code, report, _ = verify(damaged)
    assert code == 1
    assert "leaves: leaf 3: stored stream id 'not-a-stream' is not a UUID" in failures(report)


# --- damage that is undetectable by design -------------------------------------------------


def test_a_changed_log_key_in_ledger_meta_is_ignored_because_the_config_file_is_trusted(
    damaged: Built,
) -> None:
    """ledger_meta's copies of the log key are informational: verify takes the key from the
    ledger directory's calm-ledger.toml, which a DBA cannot edit. So a changed (or deleted, or
    added) meta row other than `origin` changes nothing verify relies on."""
    su = damaged.su
    key_row = damaged.row("ledger_meta", key="log_public_key")
    su.replace("ledger_meta", key_row, value=change_char(key_row["value"], 0))
    su.delete("ledger_meta", damaged.row("ledger_meta", key="format"))
    su.insert("ledger_meta", {"key": "log_public_key_2", "value": key_row["value"]})
    code, report, _ = verify(damaged)
    assert code == 0, failures(report)


def test_a_deleted_checkpoint_goes_unnoticed_by_verify_but_not_by_its_witness(
    damaged: Built, tmp_path: Path
) -> None:
    """Verify knows only the checkpoints the database still holds: deleting the latest one
    with its cosignature is invisible to it. The protection lives with whoever holds a copy:
    the witness remembers size 8 and refuses to cosign anything older or inconsistent
    (tests/test_checkpoints.py::test_witness_refuses_rollback_same_size_fork_and_bad_signature)."""
    su = damaged.su
    su.delete("checkpoints", damaged.row("checkpoints", size=8))
    su.delete("cosignatures", damaged.row("cosignatures", size=8))
    code, report, _ = verify(damaged)
    assert code == 0, failures(report)
    assert report["checks"][9]["passed"] == 1  # only the checkpoint at size 6 is left


def test_a_checkpoint_deleted_without_its_cosignature_is_reported(damaged: Built) -> None:
    damaged.su.delete("checkpoints", damaged.row("checkpoints", size=8))
    code, report, _ = verify(damaged)
    assert code == 1
    assert failures(report) == [
        "checkpoints: cosignature at size 8: no checkpoint of this size is stored"
    ]


@pytest.mark.parametrize("damage", ["size.byte", "near-copy", "malformed"])
def test_a_cosignature_without_its_checkpoint_or_malformed_is_reported(
    damaged: Built, damage: str
) -> None:
    su = damaged.su
    (_, second) = damaged.pristine["cosignatures"]
    if damage == "size.byte":
        su.replace("cosignatures", second, size=change_int(second["size"]))
    elif damage == "near-copy":
        su.insert("cosignatures", {**second, "size": 7})
    else:
        su.replace("cosignatures", second, line=second["line"].replace(" ", "  ", 1))
    code, report, _ = verify(damaged)
    assert code == 1
    (failure,) = failures(report)
    assert failure.startswith("checkpoints: cosignature at size ")
    expected = "not a cosignature line" if damage == "malformed" else "no checkpoint of this size"
    assert expected in failure


@pytest.mark.parametrize("damage", ["line.byte", "delete", "swap"])
def test_cosignature_damage_verify_cannot_see_is_seen_by_the_witness_key(
    damaged: Built, damage: str
) -> None:
    """Verify trusts only the log key (from the config file); it knows no witness keys, so a
    well-formed line for a stored checkpoint passes it. A regulator checks a cosignature with
    its own key: a changed line no longer opens with it (shown here), a deleted one is missing
    from what the provider shows."""
    su = damaged.su
    (first, second) = damaged.pristine["cosignatures"]
    if damage == "line.byte":
        su.replace("cosignatures", second, line=change_char(second["line"], len(WITNESS) + 4))
    elif damage == "delete":
        su.delete("cosignatures", second)
    else:
        su.swap("cosignatures", first, second, "line")
    code, report, _ = verify(damaged)
    assert code == 0, failures(report)
    if damage in ("line.byte", "swap"):
        assert not witness_cosigned(damaged, size=8)


def witness_cosigned(built: Built, size: int) -> bool:
    """Whether the checkpoint the provider shows for `size` carries a valid cosignature by
    the witness (checked as a regulator would, with the witness's own key)."""
    shown = run_cli(
        ["--dir", str(built.ledger.directory), "checkpoint", "show", "--size", str(size)], env=ENV
    ).stdout
    log_key = note.NoteVerifierKey(ORIGIN, built.ledger.log_key.public_key)
    try:
        opened = note.open_note(shown, [log_key, built.witness])
    except (SignatureInvalid, MalformedNote):
        return False
    return any(s.name == WITNESS for s in opened.signatures)


def test_the_untouched_checkpoints_carry_valid_cosignatures(damaged: Built) -> None:
    assert witness_cosigned(damaged, size=6) and witness_cosigned(damaged, size=8)


@pytest.mark.parametrize("damage", ["subject.byte", "delete", "null"])
def test_a_subject_key_lost_without_a_signed_erasure_is_reported(
    damaged: Built, damage: str
) -> None:
    """Erasure is crypto-shredding: the subject's data key is destroyed and the sealed fields
    can no longer be opened, while every signature, chain and proof still verifies. A DBA who
    deletes, renames or nulls a key row does the same to the data, but without the signed
    `subject.erased` event a lawful erasure records: verify names the subject."""
    su = damaged.su
    row = damaged.row("subject_keys", subject="P-0")
    if damage == "delete":
        su.delete("subject_keys", row)
    elif damage == "null":
        su.replace("subject_keys", row, data_key=None)
    else:
        su.replace("subject_keys", row, subject="Q-0")
    code, report, _ = verify(damaged)
    assert code == 1
    assert failures(report) == [
        "disclosures: subject P-0: the data key is gone but no erasure was recorded"
        " (no signed subject.erased event)"
    ]
    assert report["checks"][6]["note"] == "2 erased subject(s) skipped"  # P-0 and the lawful one


def test_a_key_for_an_unknown_subject_is_harmless(damaged: Built) -> None:
    """A near-copy key row for a subject no event names is never used to open anything; a
    DBA can read every data key anyway (the keys protect personal data from readers of an
    export, not from the database owner)."""
    row = damaged.row("subject_keys", subject="P-0")
    damaged.su.insert("subject_keys", {**row, "subject": "P-ghost"})
    code, report, _ = verify(damaged)
    assert code == 0, failures(report)
