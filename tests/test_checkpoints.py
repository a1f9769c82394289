"""Checkpoints, witnesses and proofs from a real store, through the command line."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from domain.people import Person
from ledger import merkle, note
from ledger.envelope import decode_envelope
from ledger.store.base import node_key
from ledger.verify_store import verify_store
from tests.conftest import ORIGIN, PASSPHRASE, Ledger
from tests.support import Superuser, run_cli
from tests.test_note import independently_verified

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE, "CALM_LEDGER_NEW_PASSPHRASE": "witness pass"}
WITNESS_ENV = {"CALM_LEDGER_PASSPHRASE": "witness pass"}


def cli(ledger: Ledger, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli(["--dir", str(ledger.directory), *args], env=env or ENV)


def add_people(ledger: Ledger, count: int, start: int = 0, batch: int = 1) -> None:
    app = ledger.open()
    service = ledger.service(app)
    for first in range(start, start + count, batch):
        service.save_batch(
            Person.register(
                f"P-{i}",
                "ward-1",
                full_name=None,
                date_of_birth=None,
                learning_disability_or_autism=False,
            )
            for i in range(first, min(start + count, first + batch))
        )
    app.close()


def signed_checkpoint(ledger: Ledger) -> str:
    result = cli(ledger, "checkpoint")
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


def test_stored_tree_equals_recomputation_after_ten_thousand_mixed_appends(ledger: Ledger) -> None:
    app = ledger.open()
    service = ledger.service(app)
    rng = random.Random(7)
    written = 0
    while written < 10_000:
        batch = min(rng.choice([1, 2, 3, 7, 50, 128, 333]), 10_000 - written)
        service.save_batch(
            Person.register(
                f"Q-{written + i}",
                "ward-1",
                full_name=None,
                date_of_birth=None,
                learning_disability_or_autism=False,
            )
            for i in range(batch)
        )
        written += batch
    head = app.store.head()
    leaves = [
        merkle.leaf_hash(decode_envelope(r.event.state).header_bytes)
        for r in app.store.iter_leaves()
        if r.event
    ]
    assert head.size == len(leaves) == 10_001
    reader = merkle.ListHashReader(leaves)
    assert merkle.root_from_border(head.size, head.border) == merkle.tree_hash(head.size, reader)
    for size in (1, 2, 3, 1000, 4096, 10_001):
        assert merkle.tree_hash(size, app.store) == merkle.tree_hash(size, reader)
    report = verify_store(
        app, origin=ORIGIN, log_name=ORIGIN, log_public_key=ledger.log_key.public_key
    )
    app.close()
    assert report.verified, [f.line() for f in report.failures[:5]]


def test_checkpoint_verifies_with_an_independent_signed_note_verifier(ledger: Ledger) -> None:
    add_people(ledger, 5)
    signed = signed_checkpoint(ledger)
    vkey = cli(ledger, "checkpoint", "--vkey").stdout.strip()
    assert independently_verified(signed, vkey)
    checkpoint, _ = note.open_checkpoint(signed, [note.parse_verifier_key(vkey)])
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 6)


def test_inclusion_proof_file_proves_an_event_against_the_checkpoint(
    ledger: Ledger, tmp_path: Path
) -> None:
    add_people(ledger, 9)
    signed_checkpoint(ledger)
    out = tmp_path / "leaf.proof"
    assert cli(ledger, "proof", "inclusion", "4", "--out", str(out)).exit_code == 0
    proof = note.parse_tlog_proof(out.read_text())
    vkey = note.parse_verifier_key(cli(ledger, "checkpoint", "--vkey").stdout.strip())
    checkpoint, _ = note.open_checkpoint(proof.checkpoint, [vkey])
    app = ledger.open()
    (row,) = list(app.store.iter_leaves(start=4, stop=5))
    assert row.event is not None
    app.close()
    leaf = merkle.leaf_hash(decode_envelope(row.event.state).header_bytes)
    merkle.check_inclusion(proof.hashes, 4, checkpoint.size, leaf, checkpoint.root_hash)
    by_ref = cli(
        ledger, "proof", "inclusion", f"{row.event.originator_id}@{row.event.originator_version}"
    )
    assert by_ref.stdout == out.read_text()


def test_consistency_proof_links_two_checkpoints(ledger: Ledger) -> None:
    add_people(ledger, 6)
    cp1 = note.parse_checkpoint(signed_checkpoint(ledger).split("\n\n")[0] + "\n")
    add_people(ledger, 11, start=6, batch=4)
    cp2 = note.parse_checkpoint(signed_checkpoint(ledger).split("\n\n")[0] + "\n")
    result = cli(ledger, "proof", "consistency", "--from", str(cp1.size), "--to", str(cp2.size))
    hashes = [merkle.Hash.from_base64(line) for line in result.stdout.split()]
    merkle.check_consistency(hashes, cp1.size, cp2.size, cp1.root_hash, cp2.root_hash)
    listed = cli(ledger, "checkpoint", "list", "--format", "csv").stdout.splitlines()
    assert [line.split(",")[0] for line in listed] == ["size", str(cp1.size), str(cp2.size)]


def test_bad_proof_requests_are_refused(ledger: Ledger) -> None:
    assert cli(ledger, "proof", "inclusion", "0").exit_code == 2  # no checkpoint yet
    signed_checkpoint(ledger)
    assert cli(ledger, "proof", "inclusion", "5").exit_code == 2  # beyond the checkpoint
    assert cli(ledger, "proof", "inclusion", "nonsense").exit_code == 2
    assert cli(ledger, "proof", "consistency", "--from", "3", "--to", "2").exit_code == 2


class Witness:
    def __init__(self, ledger: Ledger, tmp_path: Path) -> None:
        self.ledger, self.dir = ledger, tmp_path
        self.key = tmp_path / "witness.key"
        self.state = tmp_path / "witness.json"
        made = run_cli(["witness", "keygen", "regulator.example", "--out", str(self.key)], env=ENV)
        assert made.exit_code == 0, made.stderr
        self.vkey = made.stdout.strip()
        self.log_vkey = cli(ledger, "checkpoint", "--vkey").stdout.strip()

    def cosign(self, signed: str, proof: str | None = None):  # type: ignore[no-untyped-def]
        cp = self.dir / "cp.txt"
        cp.write_text(signed)
        args = [
            "witness",
            "cosign",
            str(cp),
            "--key",
            str(self.key),
            "--state",
            str(self.state),
            "--log-key",
            self.log_vkey,
        ]
        if proof is not None:
            (self.dir / "p.txt").write_text(proof)
            args += ["--proof", str(self.dir / "p.txt")]
        return run_cli(args, env=WITNESS_ENV)


def test_witness_cosigns_consistent_checkpoints_and_the_cosignature_is_stored(
    ledger: Ledger, tmp_path: Path
) -> None:
    witness = Witness(ledger, tmp_path)
    add_people(ledger, 3)
    first = witness.cosign(signed_checkpoint(ledger))
    assert first.exit_code == 0, first.stderr
    (tmp_path / "cosig.txt").write_text(first.stdout)
    stored = cli(
        ledger,
        "checkpoint",
        "add-cosignature",
        str(tmp_path / "cosig.txt"),
        "--witness-key",
        witness.vkey,
    )
    assert stored.exit_code == 0, stored.stderr
    shown = cli(ledger, "checkpoint", "show").stdout
    opened = note.open_note(
        shown, [note.parse_verifier_key(witness.log_vkey), note.parse_verifier_key(witness.vkey)]
    )
    assert len(opened.signatures) == 2
    add_people(ledger, 4, start=3)
    second = signed_checkpoint(ledger)
    proof = cli(ledger, "proof", "consistency", "--from", "4", "--to", "8").stdout
    assert witness.cosign(second).exit_code == 2  # a proof is needed
    assert witness.cosign(second, proof).exit_code == 0


def test_witness_refuses_a_forked_log(ledger: Ledger, tmp_path: Path) -> None:
    """The provider shows the witness one history, then a checkpoint of another one."""
    witness = Witness(ledger, tmp_path)
    add_people(ledger, 3)
    assert witness.cosign(signed_checkpoint(ledger)).exit_code == 0
    fork_root = merkle.Hash(bytes(32))
    fork = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(ORIGIN, 9, fork_root)),
        ORIGIN,
        ledger.log_key.public_key,
        ledger.log_key.sign,
    )
    add_people(ledger, 5, start=3)
    signed_checkpoint(ledger)
    proof = cli(ledger, "proof", "consistency", "--from", "4", "--to", "9").stdout
    refused = witness.cosign(fork, proof)
    assert refused.exit_code == 1
    assert "not consistent" in refused.stderr


def test_witness_refuses_rollback_same_size_fork_and_bad_signature(
    ledger: Ledger, tmp_path: Path
) -> None:
    witness = Witness(ledger, tmp_path)
    add_people(ledger, 2)
    old = signed_checkpoint(ledger)
    add_people(ledger, 2, start=2)
    new = signed_checkpoint(ledger)
    proof = cli(ledger, "proof", "consistency", "--from", "3", "--to", "5").stdout
    assert witness.cosign(old).exit_code == 0
    assert witness.cosign(new, proof).exit_code == 0
    assert witness.cosign(old).exit_code == 1  # rollback
    same_size = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(ORIGIN, 5, merkle.Hash(bytes(32)))),
        ORIGIN,
        ledger.log_key.public_key,
        ledger.log_key.sign,
    )
    assert witness.cosign(same_size).exit_code == 1
    forged = new.replace(new.split("\n")[2], str(merkle.Hash(bytes(32))))
    assert witness.cosign(forged).exit_code == 1


@pytest.fixture
def checkpointed(ledger: Ledger) -> Ledger:
    add_people(ledger, 7)
    signed_checkpoint(ledger)
    return ledger


def verify_fails(ledger: Ledger, *fragments: str) -> str:
    result = cli(ledger, "verify")
    assert result.exit_code == 1, result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return str(result.stderr)


def test_truncated_log_is_detected(checkpointed: Ledger) -> None:
    su = Superuser(checkpointed.db)
    tree = su.table("merkle_tree")
    first_cut = node_key(0, 5)  # every node whose last leaf is 5 or later
    su.execute(
        f"DELETE FROM {su.table('events')} WHERE {su.nid} IN"
        f" (SELECT notification_id FROM {tree} WHERE node >= ?)",
        (first_cut,),
    )
    su.execute(f"DELETE FROM {tree} WHERE node >= ?", (first_cut,))
    verify_fails(checkpointed, "FAIL checkpoints", "names size 8 but the log has 5")


def test_deleting_the_last_event_is_detected(checkpointed: Ledger) -> None:
    su = Superuser(checkpointed.db)
    tree = su.table("merkle_tree")
    su.execute(
        f"DELETE FROM {su.table('events')} WHERE {su.nid} ="
        f" (SELECT notification_id FROM {tree} WHERE node = ?)",
        (node_key(0, 7),),
    )
    su.execute(f"DELETE FROM {tree} WHERE node = ?", (node_key(0, 7),))
    verify_fails(checkpointed, "FAIL")


def test_reordered_leaves_are_detected(checkpointed: Ledger) -> None:
    su = Superuser(checkpointed.db)
    tree = su.table("merkle_tree")
    three, four = node_key(0, 3), node_key(0, 4)
    rows = su.query(
        f"SELECT notification_id FROM {tree} WHERE node IN (?, ?) ORDER BY node", (three, four)
    )
    (nid3,), (nid4,) = rows
    su.execute(f"UPDATE {tree} SET notification_id = -1 WHERE node = ?", (three,))  # unique
    su.execute(f"UPDATE {tree} SET notification_id = ? WHERE node = ?", (nid3, four))
    su.execute(f"UPDATE {tree} SET notification_id = ? WHERE node = ?", (nid4, three))
    verify_fails(checkpointed, "FAIL tree", "FAIL checkpoints")


def test_replaced_tree_node_is_detected(checkpointed: Ledger) -> None:
    su = Superuser(checkpointed.db)
    su.execute(
        f"UPDATE {su.table('merkle_tree')} SET hash = ? WHERE node = ?",
        (bytes(32), node_key(1, 0)),
    )
    verify_fails(checkpointed, "FAIL tree", "node (1, 0)")


def test_forged_checkpoint_is_detected(checkpointed: Ledger) -> None:
    from ledger.keys import SigningKey

    impostor = SigningKey.generate()
    forged = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(ORIGIN, 3, merkle.Hash(bytes(32)))),
        ORIGIN,
        impostor.public_key,
        impostor.sign,
    )
    su = Superuser(checkpointed.db)
    su.execute(f"INSERT INTO {su.table('checkpoints')} (size, note) VALUES (?, ?)", (3, forged))
    verify_fails(checkpointed, "FAIL checkpoints", "checkpoint at size 3")


def test_second_inconsistent_checkpoint_is_detected(checkpointed: Ledger) -> None:
    """Even signed with the real log key, a checkpoint of another tree is caught."""
    fork = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(ORIGIN, 4, merkle.Hash(bytes(32)))),
        ORIGIN,
        checkpointed.log_key.public_key,
        checkpointed.log_key.sign,
    )
    su = Superuser(checkpointed.db)
    su.execute(f"INSERT INTO {su.table('checkpoints')} (size, note) VALUES (?, ?)", (4, fork))
    verify_fails(checkpointed, "FAIL checkpoints", "root differs")


def test_checkpoint_refuses_to_sign_over_a_rewritten_log(checkpointed: Ledger) -> None:
    su = Superuser(checkpointed.db)
    tree = su.table("merkle_tree")  # the head at 8 is the node over leaves 0-7: another history
    su.execute(f"UPDATE {tree} SET hash = ? WHERE node = ?", (bytes(32), node_key(3, 0)))
    add_people(checkpointed, 1, start=100)
    result = cli(checkpointed, "checkpoint")
    assert result.exit_code == 1
    assert "no longer extends the checkpoint at size 8" in result.stderr
