"""Load on PostgreSQL: 8 writer processes, a projection follower and a checkpoint signer at
once. Nothing is lost or duplicated, the tree is consistent, every checkpoint is consistent
with the next, and the read tables equal a rebuild. CI: 8 writers of 100 events each;
`-m slow`: 8 writers of 2,000."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path

import pytest

from ledger import merkle, note
from ledger.checkpoints import stored_checkpoints
from ledger.verify_store import verify_store
from projections.readstore import ReadStore
from projections.runtime import verify_read_model
from tests.conftest import ORIGIN, PASSPHRASE, Ledger
from tests.workers import follow_until, register_people, sign_checkpoints_until

WRITERS = 8


def run_load(ledger: Ledger, each: int, tmp_path: Path) -> None:
    stop = tmp_path / "stop"
    ctx = multiprocessing.get_context("spawn")
    keys = ledger.directory / "keys"
    with ctx.Pool(WRITERS + 2) as pool:
        follower = pool.apply_async(follow_until, (ledger.db, str(ledger.directory), str(stop)))
        signer = pool.apply_async(
            sign_checkpoints_until,
            (
                ledger.db,
                str(ledger.directory),
                str(keys / "log.key"),
                PASSPHRASE,
                ORIGIN,
                str(stop),
            ),
        )
        writers = [
            pool.apply_async(
                register_people,
                (
                    ledger.db,
                    str(ledger.directory),
                    str(keys / "ada.key"),
                    PASSPHRASE,
                    ledger.log_key.public_key,
                    w,
                    each,
                ),
            )
            for w in range(WRITERS)
        ]
        written = sum(w.get(timeout=1800) for w in writers)
        stop.write_text("stop")
        position = follower.get(timeout=120)
        checkpoints_signed = signer.get(timeout=120)

    app = ledger.open()
    size = app.store.head().size
    assert written == WRITERS * each and size == 1 + written  # the admin, then every person
    assert position == size and checkpoints_signed >= 2
    leaves = list(app.store.iter_leaves())
    assert [r.leaf_index for r in leaves] == list(range(size))
    keys = {(str(r.event.originator_id), r.event.originator_version) for r in leaves if r.event}
    assert len(keys) == size  # 0 lost, 0 duplicated
    report = verify_store(
        app, origin=ORIGIN, log_name=ORIGIN, log_public_key=ledger.log_key.public_key
    )
    assert report.verified, [f.line() for f in report.failures[:5]]
    stored = stored_checkpoints(app, ORIGIN, ledger.log_key.public_key)
    for old, new in itertools.pairwise(stored):
        proof = merkle.consistency_proof(old.size, new.size, app.store)
        merkle.check_consistency(
            proof.hashes, old.size, new.size, old.checkpoint.root_hash, new.checkpoint.root_hash
        )
    assert all(isinstance(c.checkpoint, note.Checkpoint) for c in stored)
    read = ReadStore(app.store_url)
    assert verify_read_model(app, read) == []  # equal to a rebuild from the log
    read.close()
    app.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_eight_writers_a_follower_and_a_signer(ledger: Ledger, tmp_path: Path) -> None:
    run_load(ledger, 100, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_eight_writers_two_thousand_each(ledger: Ledger, tmp_path: Path) -> None:
    run_load(ledger, 2000, tmp_path)
