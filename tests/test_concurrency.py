"""Concurrent writers on PostgreSQL: no lost or duplicated event, conflicts reported cleanly,
and the Merkle tree consistent with the leaves afterwards."""

from __future__ import annotations

import multiprocessing

import pytest

from domain.roles import Role
from ledger.keys import SigningKey
from ledger.verify_store import verify_store
from tests.conftest import ORIGIN, PASSPHRASE, Ledger
from tests.workers import append_worker

WORKERS, EACH = 4, 15


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_four_processes_append_to_same_and_different_streams(ledger: Ledger) -> None:
    app = ledger.open()
    ledger.service(app).enrol_actor("shared", (Role.RECORDER,), SigningKey.generate().public_key)
    app.close()
    keystore = str(ledger.directory / "keys" / "ada.key")
    args = [
        (ledger.db, keystore, PASSPHRASE, ledger.log_key.public_key, w, EACH)
        for w in range(WORKERS)
    ]
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        results = pool.starmap(append_worker, args)
    won = sum(w for w, _ in results)
    lost = sum(lost for _, lost in results)
    assert won + lost == WORKERS * EACH
    print(f"re-keys: {won} won, {lost} refused as conflicts")

    app = ledger.open()
    people = WORKERS * EACH
    expected = 2 + people + won  # ada, shared, every person, every successful re-key
    assert app.store.head().size == expected
    leaves = list(app.store.iter_leaves())
    assert [r.leaf_index for r in leaves] == list(range(expected))
    keys = [(str(r.event.originator_id), r.event.originator_version) for r in leaves if r.event]
    assert len(set(keys)) == len(keys) == expected  # nothing duplicated, nothing lost
    assert ledger.service(app).actor("shared").version == 1 + won
    report = verify_store(
        app, origin=ORIGIN, log_name=ORIGIN, log_public_key=ledger.log_key.public_key
    )
    app.close()
    assert report.verified, [f.line() for f in report.failures]
