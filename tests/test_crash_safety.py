"""Crash safety: a writer process appending batches (`LedgerService.save_batch`) is killed with
SIGKILL at a random moment, again and again, on both stores. Afterwards nothing partial is
visible — every batch is all there or not there at all, every stored event is a leaf, the
leaves are gapless, the tree and the latest head agree with the leaves, every sealed field has
its data key and no key lacks its events — `verify_store` passes, and appending continues.

CI kills 5 writers per store; `-m slow` kills 50 (docs/reliability.md records a run). Set
CALM_LEDGER_CRASH_SEED to replay a run's kill delays and batch sizes.
"""

from __future__ import annotations

import base64
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO

import pytest

from domain.people import Person
from domain.roles import Role
from ledger import merkle
from ledger.envelope import decode_envelope
from ledger.keys import SigningKey, actor_key_id
from ledger.verify_store import verify_store
from tests.conftest import ORIGIN, PASSPHRASE, Ledger
from tests.crash_writer import SHARED_ACTOR
from tests.raw_tables import RawTables

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("CALM_LEDGER_CRASH_SEED", "20261126"))
KILL_WINDOW = (0.0, 0.2)  # seconds of appending before the kill
AIM_AT_INSERTS = 0.5  # the share of kills sent a few milliseconds after an insert begins
_PERSON = re.compile(r"^K(\d+)-(\d+)-(\d+)$")
_REKEY = re.compile(r"^run (\d+) #(\d+)$")


@dataclass
class Fault:
    """One writer killed: the batches it began (number → size, re-key) and those it finished."""

    run: int
    begun: dict[int, tuple[int, bool]] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    committed: bool = False  # whether the interrupted batch is in the log after all
    in_transaction: bool = False  # killed between the write transaction's start and commit

    @property
    def interrupted(self) -> int | None:
        """The batch the kill fell into, between `begin` and `end`, if any."""
        unfinished = set(self.begun) - self.ended
        if len(unfinished) > 1:
            raise AssertionError(f"the writer began batches {sorted(unfinished)} at once")
        return unfinished.pop() if unfinished else None


@dataclass
class Soak:
    ledger: Ledger
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    appended_after: int = 0  # batches the test itself appended after a kill

    def kill_a_writer(self) -> Fault:
        run = len(self.faults)
        keystore = self.ledger.directory / "keys" / "ada.key"
        args = [self.ledger.db, str(keystore), self.ledger.log_key.public_key.hex()]
        command = [sys.executable, "-m", "tests.crash_writer", *args, str(run), str(SEED + run)]
        app_name = f"calm-ledger-crash-writer-{os.getpid()}-{run}"
        env = {
            **os.environ,
            "CALM_LEDGER_PASSPHRASE": PASSPHRASE,
            "PYTHONPATH": str(ROOT),
            "PGAPPNAME": app_name,  # libpq names the writer's server sessions
        }
        with tempfile.TemporaryFile() as stderr:
            writer = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr
            )
            assert writer.stdout is not None
            seen: list[bytes] = []
            try:
                ready = writer.stdout.readline()
                if ready == b"ready\n":
                    seen += read_until(writer.stdout, b"end 0\n")  # warmed up: one batch in
                    time.sleep(self.rng.uniform(*KILL_WINDOW))
                    if self.rng.random() < AIM_AT_INSERTS:  # kill inside a write transaction
                        seen += read_until(writer.stdout, b"insert\n")
                        time.sleep(self.rng.uniform(0, 0.002))
            finally:
                writer.send_signal(signal.SIGKILL)
                writer.wait(timeout=60)
                self.wait_for_server_sessions_to_end(app_name)
            out = b"".join(seen) + writer.stdout.read()  # and what readline() buffered
            writer.stdout.close()
            stderr.seek(0)
            err = stderr.read().decode(errors="replace")
        assert ready == b"ready\n", err
        assert writer.returncode == -signal.SIGKILL, err
        fault = Fault(run)
        for said in out.decode().splitlines():
            word, *rest = said.split()
            if word == "begin":
                fault.begun[int(rest[0])] = (int(rest[1]), rest[2] == "1")
            elif word == "end":
                fault.ended.add(int(rest[0]))
            if word in ("insert", "inserted"):
                fault.in_transaction = word == "insert"
        self.faults.append(fault)
        return fault

    def wait_for_server_sessions_to_end(self, app_name: str) -> None:
        """A killed client may have sent its COMMIT already: PostgreSQL then finishes that
        transaction on its own. Check only once the dead writer's sessions are gone, so what
        is checked is final (it must still be all or nothing)."""
        sessions = RawTables(self.ledger.db)
        if sessions.is_sqlite:
            return
        deadline = time.monotonic() + 30
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        while sessions.query(query, (app_name,))[0][0]:
            if time.monotonic() > deadline:
                raise AssertionError(f"the killed writer's server sessions did not end: {app_name}")
            time.sleep(0.02)

    def append_after_crash(self) -> None:
        """The test's own append: people and a re-key of the shared actor in one batch."""
        app = self.ledger.open()
        try:
            service = self.ledger.service(app)
            n = self.appended_after
            shared = service.actor(SHARED_ACTOR)
            public_key = SigningKey.generate().public_key
            shared.rekey(_b64(public_key), actor_key_id(public_key), f"after crash {n}")
            people = [
                Person.register(f"A{n}-{i}", "ward-2", full_name="After", date_of_birth=None)
                for i in range(3)
            ]
            service.save_batch([*people, shared])
        finally:
            app.close()
        self.appended_after += 1


def read_until(stream: IO[bytes], wanted: bytes) -> list[bytes]:
    """Lines read from the writer up to and including `wanted` (or its end of output)."""
    lines = []
    while (line := stream.readline()) not in (wanted, b""):
        lines.append(line)
    return [*lines, line]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def check_nothing_partial(soak: Soak) -> int:
    """Everything the module docstring promises after a crash; returns the log size."""
    ledger = soak.ledger
    app = ledger.open()
    try:
        store = app.store
        rows = list(store.iter_leaves())
        assert [r.leaf_index for r in rows] == list(range(len(rows))), "leaf indexes have a gap"
        assert all(r.event is not None for r in rows), "a leaf without its event"
        assert store.events_without_leaf() == [], "an event that is not a leaf"
        assert store.count("events") == len(rows)
        headers = [decode_envelope(r.event.state) for r in rows if r.event is not None]
        head = store.head()
        assert head.size == len(rows), "the latest head is not at the log's size"
        leaves = merkle.ListHashReader([merkle.leaf_hash(e.header_bytes) for e in headers])
        assert merkle.root_from_border(head.size, head.border) == merkle.tree_hash(
            head.size, leaves
        )

        people: Counter[tuple[int, int]] = Counter()
        rekeys: Counter[tuple[int, int]] = Counter()
        registered: set[str] = set()
        for envelope in headers:
            header, data = envelope.header(), envelope.data()
            if header.type == "person.registered":
                registered.add(data["pseudonym"])
                match = _PERSON.match(data["pseudonym"])
                if match:
                    people[(int(match[1]), int(match[2]))] += 1
            elif header.type == "actor.rekeyed" and (match := _REKEY.match(data["reason"])):
                rekeys[(int(match[1]), int(match[2]))] += 1
        expected_people: Counter[tuple[int, int]] = Counter()
        expected_rekeys: Counter[tuple[int, int]] = Counter()
        for fault in soak.faults:
            for number, (size, rekey) in fault.begun.items():
                stored = people[(fault.run, number)] > 0
                if number == fault.interrupted:
                    fault.committed = stored
                if number in fault.ended or stored:  # the interrupted batch: all or nothing
                    expected_people[(fault.run, number)] = size
                    if rekey:
                        expected_rekeys[(fault.run, number)] = 1
        differ = {
            k: (people[k], n) for k, n in (expected_people | people).items() if people[k] != n
        }
        assert not differ, f"batches stored in part or never begun (stored, expected): {differ}"
        assert rekeys == expected_rekeys, "a re-key was stored without its batch, or lost"

        keys = {r["subject"] for r in RawTables(ledger.db).rows("subject_keys")}
        assert keys == registered, "a data key without its events, or events without their key"

        report = verify_store(
            app, origin=ORIGIN, log_name=ORIGIN, log_public_key=ledger.log_key.public_key
        )
        assert report.verified, [f.line() for f in report.failures[:10]]
        assert "disclosures" not in report.notes, "a sealed field reads as erased"
        return len(rows)
    finally:
        app.close()


@pytest.fixture
def soak(ledger: Ledger) -> Soak:
    app = ledger.open()
    ledger.service(app).enrol_actor(
        SHARED_ACTOR, (Role.RECORDER,), SigningKey.generate().public_key
    )
    ledger.service(app).register_person(
        "P-0", "ward-1", full_name="Before", date_of_birth=date(2011, 5, 6)
    )
    app.close()
    return Soak(ledger, random.Random(SEED))


def crash_repeatedly(soak: Soak, kills: int) -> str:
    for _ in range(kills):
        soak.kill_a_writer()
        check_nothing_partial(soak)
        soak.append_after_crash()
    size = check_nothing_partial(soak)
    batches = sum(len(f.begun) for f in soak.faults)
    inside = [f for f in soak.faults if f.interrupted is not None]
    committed = sum(1 for f in inside if f.committed)
    in_transaction = sum(1 for f in inside if f.in_transaction)
    return (
        f"{soak.ledger.store_url.backend}: {kills} writers killed with SIGKILL, {len(inside)}"
        f" of them inside save_batch ({in_transaction} while the store's insert_events ran;"
        f" {committed} found committed, {len(inside) - committed} rolled back);"
        f" {batches} batches begun, {size} events in the log; failures: 0 (seed {SEED})"
    )


def test_a_writer_killed_at_random_moments_leaves_nothing_partial(soak: Soak) -> None:
    summary = crash_repeatedly(soak, kills=5)
    print(summary)


@pytest.mark.slow
def test_fifty_writers_killed_at_random_moments_leave_nothing_partial(soak: Soak) -> None:
    summary = crash_repeatedly(soak, kills=50)
    print(summary)
