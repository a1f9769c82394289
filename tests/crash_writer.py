"""A writer process for the crash tests: appends batches until it is killed.

    python -m tests.crash_writer DB KEYSTORE LOG_PUBLIC_KEY_HEX RUN SEED

The passphrase comes from CALM_LEDGER_PASSPHRASE. Prints `ready` once the store is open and
the key unlocked, then, for each batch, `begin BATCH SIZE REKEY` before saving it and
`end BATCH` after, and `insert` / `inserted` around the store's write transaction, each line
flushed, so the parent knows which batch a kill interrupted and whether inside the database
transaction.
Batch BATCH registers SIZE people `K{RUN}-{BATCH}-{i}` with sealed fields and, when REKEY is 1,
re-keys actor `shared` in the same transaction (a stream with a chain of many versions).
Stops by itself after a minute, should its parent die without killing it.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from domain.events import Aggregate
from domain.people import Person
from ledger.actors import Actor, actor_id
from ledger.app import open_app
from ledger.keys import SigningKey, actor_key_id, read_keystore
from ledger.mapper import Signer
from ledger.service import LedgerService
from ledger.store import parse_store_url

BATCH_SIZES = (1, 2, 7, 20, 50)
SHARED_ACTOR = "shared"
LIFETIME = 60.0


def batch(run: int, number: int, size: int) -> Iterator[Person]:
    for i in range(size):
        yield Person.register(
            f"K{run}-{number}-{i}",
            "ward-1",
            full_name=f"Crash Test {run} {number} {i}",
            date_of_birth=date(2010, 1 + i % 12, 1 + number % 28),
        )


def main(db: str, keystore: str, log_public_key_hex: str, run: int, seed: int) -> None:
    app = open_app(parse_store_url(db))
    key = read_keystore(Path(keystore), os.environ["CALM_LEDGER_PASSPHRASE"])
    service = LedgerService(app, Signer("ada", key), bytes.fromhex(log_public_key_hex))
    trace_inserts(app)
    rng = random.Random(seed)
    say("ready")
    deadline = time.monotonic() + LIFETIME
    number = 0
    while time.monotonic() < deadline:
        size = rng.choice(BATCH_SIZES)
        rekey = rng.random() < 0.3
        aggregates: list[Aggregate] = list(batch(run, number, size))
        if rekey:
            shared: Actor = app.repository.get(actor_id(SHARED_ACTOR))
            public_key = SigningKey.generate().public_key
            shared.rekey(_b64(public_key), actor_key_id(public_key), f"run {run} #{number}")
            aggregates.append(shared)
        say(f"begin {number} {size} {int(rekey)}")
        service.save_batch(aggregates)
        say(f"end {number}")
        number += 1
    app.close()


def trace_inserts(app: Any) -> None:
    """Say `insert` before the store's write transaction and `inserted` after its commit."""
    insert = app.recorder.insert_events

    def traced(events: Any, **kwargs: Any) -> Any:
        say("insert")
        ids = insert(events, **kwargs)
        say("inserted")
        return ids

    app.recorder.insert_events = traced


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    db, keystore, log_key, run, seed = sys.argv[1:]
    main(db, keystore, log_key, int(run), int(seed))
