"""Append throughput of the signed ledger against bare eventsourcing, side by side in one run.

For each store it appends the same `person.registered`-shaped events four ways — bare
eventsourcing and the ledger, one event per transaction and 100 per transaction — plus the
ledger with its Merkle tree switched off (to price the tree), then times a full `verify`
against the raw Ed25519 verify rate.

Spread is (slowest - fastest) / median over the repeats: differences smaller than the
spread are noise.

Run: python -m bench.bench_append [--events 2000] [--repeat 3] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from domain.people import Person
from ledger import keys
from ledger.app import LedgerApp, open_app
from ledger.keys import Argon2Cost
from ledger.service import LedgerService
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from ledger.store.base import LedgerTables
from ledger.verify_store import verify_store

PG = os.environ.get("CALM_LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ORIGIN = "example.org/bench"
BATCH = 100


class BarePerson(Aggregate):
    """The same fields as person.registered, with the library's own JSON mapper."""

    @event("Registered")
    def __init__(
        self,
        pseudonym: str,
        service_id: str,
        full_name: str,
        date_of_birth: str,
        learning_disability_or_autism: bool,
    ) -> None:
        self.pseudonym = pseudonym


def bare_person(i: int) -> BarePerson:
    return BarePerson(f"P-{i}", "ward-1", f"Person {i}", "2011-03-14", False)


def ledger_person(i: int) -> Person:
    return Person.register(
        f"P-{i}",
        "ward-1",
        full_name=f"Person {i}",
        date_of_birth=date(2011, 3, 14),
        learning_disability_or_autism=False,
    )


def save_people(service: LedgerService, lo: int, hi: int) -> None:
    """Save persons lo..hi-1 in one transaction through the service."""
    service.save_batch(ledger_person(i) for i in range(lo, hi))


@dataclass
class Result:
    backend: str
    name: str
    events: int
    runs: list[float]  # seconds, one per repeat

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median, over the repeats: how noisy this figure is."""
        return (max(self.runs) - min(self.runs)) / self.seconds


@contextmanager
def store(backend: str, root: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{root / name}-{uuid.uuid4().hex[:8]}.db"
        return
    import psycopg

    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG}?schema={schema}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def bare_app(url: str) -> Application[Any]:
    parsed = parse_store_url(url)
    env = parsed.env(create_tables=True)
    env["PERSISTENCE_MODULE"] = (
        "eventsourcing.sqlite" if parsed.backend == "sqlite" else "eventsourcing.postgres"
    )
    return Application(env=env)


def timed(events: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run_bare(url: str, n: int, batch: int) -> float:
    app = bare_app(url)

    def work() -> None:
        for start in range(0, n, batch):
            app.save(*(bare_person(i) for i in range(start, min(n, start + batch))))

    try:
        return timed(n, work)
    finally:
        app.close()


def new_ledger(url: str, root: Path) -> tuple[LedgerApp, LedgerService]:
    made = init_ledger(
        root / uuid.uuid4().hex,
        origin=ORIGIN,
        db=url,
        admin="ada",
        log_passphrase="bench",
        admin_passphrase="bench",
        cost=Argon2Cost(memory_kib=64, iterations=1, lanes=1),
    )
    app = open_app(parse_store_url(url))
    from ledger.mapper import Signer

    service = LedgerService(app, Signer("ada", made.admin_key), made.log_key.public_key)
    return app, service


def run_ledger(url: str, root: Path, n: int, batch: int, *, tree: bool = True) -> float:
    app, service = new_ledger(url, root)

    def work() -> None:
        for start in range(0, n, batch):
            save_people(service, start, min(n, start + batch))

    try:
        with nullcontext() if tree else tree_switched_off(app.store):
            return timed(n, work)
    finally:
        app.close()


@contextmanager
def tree_switched_off(tables: LedgerTables) -> Iterator[None]:
    """Price the tree: appends skip the head read and the tree's rows, but still check the
    signer and store the subjects' data keys as a real append does, so only the tree is left
    out. (PostgreSQL still reads the head, in the statement it shares with the signer check
    and the keys: only its rows are left out.) On SQLite the signer's versions are read
    every time here: it is the remembered head, written past, that lets a real append skip
    that read, so the tree's price is net of it."""

    def no_tree_rows(cursor: Any, head: Any, events: Any, ids: Any) -> None:
        """PostgreSQL's step after the read under the lock, which stored the keys."""

    def keys_only(cursor: Any, events: Sequence[StoredEvent], ids: Sequence[int]) -> None:
        """SQLite's step: its append_leaves without the head and the tree's rows."""
        tables.check_signer_unchanged(cursor, events)
        tables.store_new_keys(cursor)

    tables.append_leaves = keys_only  # type: ignore[method-assign]
    tables.write_tree = no_tree_rows  # type: ignore[method-assign]
    try:
        yield
    finally:
        del tables.append_leaves
        del tables.write_tree


def run_verify(url: str, root: Path, n: int) -> tuple[float, int]:
    app, service = new_ledger(url, root)
    for lo in range(0, n, BATCH):
        save_people(service, lo, min(n, lo + BATCH))
    size = app.store.head().size
    start = time.perf_counter()
    report = verify_store(
        app, origin=ORIGIN, log_name=ORIGIN, log_public_key=service.log_public_key
    )
    elapsed = time.perf_counter() - start
    app.close()
    if not report.verified:
        raise SystemExit(f"bench ledger did not verify: {report.failures[:3]}")
    return elapsed, size


def raw_verify_rate(n: int = 5000) -> float:
    key = keys.SigningKey.generate()
    message = b"x" * 400
    signature = key.sign(message)
    start = time.perf_counter()
    for _ in range(n):
        keys.verify_signature(key.public_key, message, signature)
    return n / (time.perf_counter() - start)


def bench_backend(backend: str, n: int, root: Path, repeat: int = 1) -> list[Result]:
    """Each measure `repeat` times, round-robin (so drift in machine load hits all alike),
    each on a fresh store; the median run counts."""
    plans: Sequence[tuple[str, Callable[[str], float]]] = (
        ("bare eventsourcing, 1/tx", lambda u: run_bare(u, n, 1)),
        ("ledger, 1/tx", lambda u: run_ledger(u, root, n, 1)),
        ("ledger without tree, 1/tx", lambda u: run_ledger(u, root, n, 1, tree=False)),
        (f"bare eventsourcing, {BATCH}/tx", lambda u: run_bare(u, n, BATCH)),
        (f"ledger, {BATCH}/tx", lambda u: run_ledger(u, root, n, BATCH)),
        (
            f"ledger without tree, {BATCH}/tx",
            lambda u: run_ledger(u, root, n, BATCH, tree=False),
        ),
    )
    runs: dict[str, list[float]] = {name: [] for name, _ in plans}
    verify_runs: list[float] = []
    size = 0
    for _ in range(repeat):
        for i, (name, run) in enumerate(plans):
            with store(backend, root, f"s{i}") as url:
                runs[name].append(run(url))
        with store(backend, root, "verify") as url:
            seconds, size = run_verify(url, root, n)
            verify_runs.append(seconds)
    results = [Result(backend, name, n, runs[name]) for name, _ in plans]
    results.append(Result(backend, "verify (all checks)", size, verify_runs))
    return results


def report(results: list[Result], raw_verify: float) -> None:
    by = {(r.backend, r.name): r for r in results}
    print(f"{'store':<11}{'measure':<34}{'events':>8}{'events/s':>11}{'spread':>8}  ratio")
    for r in results:
        ratio = _ratio(by, r, raw_verify)
        spread = f"{r.spread * 100:.0f}%" if len(r.runs) > 1 else "-"
        print(f"{r.backend:<11}{r.name:<34}{r.events:>8}{r.rate:>11.0f}{spread:>8}  {ratio}")
    print(f"raw Ed25519 verify ({keys.ED25519_BACKEND}): {raw_verify:,.0f}/s")


def _ratio(by: dict[tuple[str, str], Result], r: Result, raw_verify: float) -> str:
    if r.name.startswith("ledger without tree"):
        base = by[(r.backend, r.name.replace(" without tree", ""))]
        return f"tree overhead {(r.rate / base.rate - 1) * 100:+.0f}%"
    if r.name.startswith("ledger"):
        bare = by[(r.backend, r.name.replace("ledger", "bare eventsourcing"))]
        return f"{r.rate / bare.rate:.2f}x bare"
    if r.name.startswith("verify"):
        return f"{r.rate / raw_verify:.2f}x raw Ed25519 verify"
    return "baseline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per measure")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measure; median counts")
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            results += bench_backend(backend, args.events, Path(tmp), args.repeat)
    report(results, raw_verify_rate())


if __name__ == "__main__":
    main()
