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
