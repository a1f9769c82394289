"""Tampering as a database superuser would (triggers bypassed): `calm-ledger verify` exits 1
and names the damaged event and the failed check; an untouched ledger exits 0."""

from __future__ import annotations

import json
from datetime import date

import pytest

from domain.roles import Role
from ledger.envelope import Envelope, build_header, decode_envelope, signing_input
from ledger.mapper import Signer
from ledger.store.base import node_key
from tests.conftest import PASSPHRASE, Ledger
from tests.support import Superuser, run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}


@pytest.fixture
def history(ledger: Ledger) -> Ledger:
    """admin ada, lead lee, recorder sam, and three people registered by lee."""
    app = ledger.open()
    lee = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.enrol(app, "sam", Role.RECORDER)
    service = ledger.service(app, "lee", lee)
    for n in range(3):
        service.register_person(
            f"P-{n}", "ward-1", full_name=f"Person {n}", date_of_birth=date(2012, 1, n + 1)
        )
    app.close()
    return ledger


def verify(ledger: Ledger) -> tuple[int, str, str]:
    result = run_cli(["--dir", str(ledger.directory), "verify"], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def state_at(su: Superuser, leaf: int) -> tuple[int, bytes]:
    ((nid, state),) = su.query(
        f"SELECT e.{su.nid}, e.state FROM {su.table('events')} e"
        f" JOIN {su.table('merkle_tree')} t ON t.notification_id = e.{su.nid}"
        " WHERE t.node = ?",
        (node_key(0, leaf),),
    )
    return nid, bytes(state)


def put_state(su: Superuser, nid: int, state: bytes) -> None:
    su.execute(f"UPDATE {su.table('events')} SET state = ? WHERE {su.nid} = ?", (state, nid))


def flip(raw: bytes, offset: int) -> bytes:
    return raw[:offset] + bytes([raw[offset] ^ 0x01]) + raw[offset + 1 :]


def describe(ledger: Ledger, leaf: int) -> str:
    su = Superuser(ledger.db)
    header = decode_envelope(state_at(su, leaf)[1]).header()
    return f"stream {header.stream} v{header.version}"


def test_untouched_ledger_verifies(history: Ledger) -> None:
    code, out, err = verify(history)
    assert code == 0, err
    assert "verified" in out and "FAIL" not in out


def test_changed_header_byte_fails_signature(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, state = state_at(su, 4)
    where = describe(history, 4)
    envelope = decode_envelope(state)
    offset = 8 + envelope.header_bytes.index(b'"recorded_at":"') + 16  # a digit of the year
    put_state(su, nid, flip(state, offset))
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL signatures" in err and where in err


def test_changed_data_byte_fails_data_digest(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, state = state_at(su, 4)
    where = describe(history, 4)
    envelope = decode_envelope(state)
    data_start = 4 + 4 + len(envelope.header_bytes) + 64 + 4
    offset = data_start + envelope.data_bytes.index(b"ward-1") + 5
    put_state(su, nid, flip(state, offset))
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL data digests" in err and where in err


def test_changed_signature_byte_fails_signature(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, state = state_at(su, 4)
    where = describe(history, 4)
    envelope = decode_envelope(state)
    put_state(su, nid, flip(state, 8 + len(envelope.header_bytes) + 10))
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL signatures" in err and where in err


def test_deleted_middle_event_is_reported(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, _ = state_at(su, 3)
    su.execute(f"DELETE FROM {su.table('events')} WHERE {su.nid} = ?", (nid,))
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL leaves: leaf 3" in err and "missing" in err


def test_deleted_middle_event_and_its_leaf_is_reported(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, _ = state_at(su, 3)
    su.execute(f"DELETE FROM {su.table('events')} WHERE {su.nid} = ?", (nid,))
    su.execute(f"DELETE FROM {su.table('merkle_tree')} WHERE node = ?", (node_key(0, 3),))
    code, _, err = verify(history)
    assert code == 1
    assert "gap" in err and "FAIL tree" in err


def test_swapped_payloads_are_reported(history: Ledger) -> None:
    su = Superuser(history.db)
    (nid_a, a), (nid_b, b) = state_at(su, 3), state_at(su, 4)
    put_state(su, nid_a, b)
    put_state(su, nid_b, a)
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL leaves: leaf 3" in err and "another stream" in err
    assert "FAIL tree" in err


def test_event_resigned_by_actor_without_the_role_is_reported(history: Ledger) -> None:
    """sam (recorder) re-signs lee's person registration with his own valid key."""
    su = Superuser(history.db)
    nid, state = state_at(su, 4)
    envelope = decode_envelope(state)
    h = envelope.header()
    sam = history.key("sam")
    header = build_header(
        origin=h.origin,
        stream=h.stream,
        version=h.version,
        type_name=h.type,
        schema=h.schema,
        recorded_at=h.recorded_at,
        actor="sam",
        key_id=sam.key_id,
        prev=bytes.fromhex(h.prev) if h.prev else None,
        service=h.service,
        subject=h.subject,
        data_bytes=envelope.data_bytes,
    )
    forged = Envelope(
        header, sam.sign(signing_input(header)), envelope.data_bytes, envelope.disclosures_bytes
    )
    put_state(su, nid, forged.encode())
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL signers" in err and f"stream {h.stream} v{h.version}" in err
    assert "may not sign 'person.registered'" in err


def test_event_signed_with_revoked_key_is_reported(history: Ledger) -> None:
    """lee is revoked; an event later signed with lee's key (written around the service's
    permission check, as a compromised application would) is flagged."""
    app = history.open()
    history.service(app).revoke_actor("lee", "left")
    lee = history.key("lee")
    from domain.people import Person

    person = Person.register(
        "P-9", "ward-1", full_name=None, date_of_birth=None, learning_disability_or_autism=False
    )
    with app.envelope_mapper.signing_as(Signer("lee", lee)):
        app.save(person)
    app.close()
    code, _, err = verify(history)
    assert code == 1
    assert "FAIL signers" in err and "revoked" in err and "person.registered" in err


def test_verify_json_names_failures(history: Ledger) -> None:
    su = Superuser(history.db)
    nid, state = state_at(su, 4)
    put_state(su, nid, flip(state, len(state) - 3))  # inside the encrypted disclosures
    result = run_cli(["--dir", str(history.directory), "verify", "--format", "json"], env=ENV)
    assert result.exit_code == 1

    report = json.loads(result.stdout)
    assert report["verified"] is False
    assert {f["check"] for f in report["failures"]} == {"disclosures"}


def test_bad_signatures_in_a_large_batch_are_each_named(ledger: Ledger) -> None:
    """Verify checks a batch's signatures together, on every core; a batch holding bad
    ones still names each bad leaf, and only those."""
    from domain.people import Person

    app = ledger.open()
    lee = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    with app.envelope_mapper.signing_as(Signer("lee", lee)):
        app.save(*(Person.register(f"P-{n}", "ward-1") for n in range(600)))
    app.close()
    su = Superuser(ledger.db)
    bad = (100, 401)
    for leaf in bad:
        nid, state = state_at(su, leaf)
        header_bytes = decode_envelope(state).header_bytes
        put_state(su, nid, flip(state, 8 + len(header_bytes) + 10))
    code, out, err = verify(ledger)
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("FAIL signatures")]
    assert [line.split(":")[1].split()[1] for line in failed] == [str(leaf) for leaf in bad]
    assert "600 ok, 2 failed" in out
