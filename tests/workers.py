"""Worker processes for concurrency tests (module-level so `spawn` can import them)."""

from __future__ import annotations

from pathlib import Path

from ledger.app import open_app
from ledger.errors import Conflict
from ledger.keys import SigningKey, read_keystore
from ledger.mapper import Signer
from ledger.recording import RecordingService
from ledger.store import parse_store_url


def append_worker(
    db: str, keystore: str, passphrase: str, log_public_key: bytes, worker: int, count: int
) -> tuple[int, int]:
    """Register `count` people on streams of its own and re-key a shared actor as often;
    returns (re-keys that succeeded, re-keys refused as conflicts)."""
    app = open_app(parse_store_url(db))
    service = RecordingService(
        app, Signer("ada", read_keystore(Path(keystore), passphrase)), log_public_key
    )
    won = lost = 0
    try:
        for i in range(count):
            service.register_person(f"W{worker}-{i}", "ward-1", full_name=f"Worker {worker} {i}")
            try:
                service.rekey_actor("shared", SigningKey.generate().public_key, f"w{worker} #{i}")
                won += 1
            except Conflict:
                lost += 1
    finally:
        app.close()
    return won, lost


def register_people(
    db: str,
    directory: str,
    keystore: str,
    passphrase: str,
    log_public_key: bytes,
    worker: int,
    count: int,
) -> int:
    """Register `count` people, one transaction each; return how many were written."""
    from ledger.recording import RecordingService

    app = open_app(parse_store_url(db, base=Path(directory)))
    service = RecordingService(
        app, Signer("ada", read_keystore(Path(keystore), passphrase)), log_public_key
    )
    try:
        for i in range(count):
            service.register_person(f"L{worker}-{i}", "ward-1", full_name=f"Load {worker} {i}")
    finally:
        app.close()
    return count


def follow_until(db: str, directory: str, stop_file: str) -> int:
    """Keep the read tables current until `stop_file` appears; return the final position."""
    from projections.readstore import ReadStore
    from projections.runtime import catch_up, follow

    app = open_app(parse_store_url(db, base=Path(directory)))
    read = ReadStore(app.store_url)
    follow(app, read, interval=0.05, should_stop=lambda: Path(stop_file).exists())
    catch_up(app, read)
    position = read.position()
    read.close()
    app.close()
    return position


def sign_checkpoints_until(
    db: str, directory: str, keystore: str, passphrase: str, origin: str, stop_file: str
) -> int:
    """Sign a checkpoint every few milliseconds until `stop_file` appears; return how many."""
    import time

    from ledger.checkpoints import sign_checkpoint

    key = read_keystore(Path(keystore), passphrase)
    app = open_app(parse_store_url(db, base=Path(directory)))
    signed = set()
    while not Path(stop_file).exists():
        signed.add(sign_checkpoint(app, origin, key).size)
        time.sleep(0.02)
    app.close()
    return len(signed)
