"""Verification throughput against the raw Ed25519 verify rate, side by side in one run.

For each size (--events) and store it builds a ledger of `person.registered` events (one new
subject each, two sealed fields: the worst case for the subject-key lookups of `verify`),
signs a checkpoint, exports a bundle at the data level, and times, each in a new process as
a user runs them (peak RSS of that process, from /usr/bin/time):

- `calm-ledger verify` (all ten checks of docs/formats.md §4, subject keys read from the
  store), and `verify_store` in this process a second time, with the subject keys cached;
- `calm-ledger export` and `calm-ledger verify-bundle` (all twelve checks of §9.10);

against the raw rate measured just before them: a single-thread `keys.verify_signature`
loop, and `keys.verify_many` over every core. With --before DIR (a copy of the code before
a change, e.g. `git worktree add`), the two CLI verifies also run with that code
(PYTHONPATH=DIR), on the same ledger, in the same run.

Run: python -m bench verify [--events 10000,100000] [--backends sqlite,postgresql]
     [--before DIR] [--before-max 100000] [--before-verify-max 100000]
     [--verify-max 100000] [--cached-max 100000] [--batch 1000] [--keep DIR]

--keep DIR builds the SQLite ledgers and their bundles into DIR and reuses them on the next
run (the 10^6 build takes minutes), e.g. to time verify-bundle before and after a change on
the same bundle.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.bench_append import ORIGIN, raw_verify_rate, save_people, store
from ledger import keys, note
from ledger.app import open_app
from ledger.bundle import BundleReader
from ledger.config import load_config
from ledger.keys import Argon2Cost
from ledger.mapper import Signer
from ledger.service import LedgerService
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from ledger.verify_store import verify_store

PASSPHRASE = "bench"
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Row:
    size: int
    backend: str
    measure: str
    code: str  # "after" (this checkout) or "before" (--before)
    seconds: float
    events: int
    raw: float  # single-thread verify_signature loop, /s, measured just before
    many: float  # verify_many over every core, /s, measured just before
    rss_mib: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def raw_rates(n: int = 20_000) -> tuple[float, float]:
    """(single-thread verify_signature loop, verify_many over every core), verifies/s."""
    key = keys.SigningKey.generate()
    message = b"x" * 400
    items = [(key.public_key, message, key.sign(message))] * n
    start = time.perf_counter()
    keys.verify_many(items)
    parallel = n / (time.perf_counter() - start)
    return raw_verify_rate(n), parallel


def child(args: Sequence[str], code: Path | None) -> tuple[float, float]:
    """Run `calm-ledger ARGS` in a new process; (seconds, its peak RSS in MiB).

    Through /usr/bin/time: a child forked straight from this process would inherit this
    process's RSS high-water mark (Linux copies it at fork and keeps it across exec), so
    its own rusage would report at least this process's peak."""
    env = {**os.environ, "CALM_LEDGER_PASSPHRASE": PASSPHRASE}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with tempfile.NamedTemporaryFile() as rss, tempfile.TemporaryFile() as err:
        command = [sys.executable, "-m", "cli.main", *args]
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *command],
            cwd=tempfile.gettempdir(),  # not the checkout: `-m` puts the cwd before PYTHONPATH
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            err.seek(0)
            raise SystemExit(f"calm-ledger {' '.join(args)} failed: {err.read()[-2000:]!r}")
        peak_kib = int(Path(rss.name).read_text().split()[-1])
    return elapsed, peak_kib / 1024


def build(directory: Path, url: str, n: int, batch: int) -> tuple[int, bytes]:
    """A ledger of n person.registered events and a signed checkpoint; (size, log key)."""
    made = init_ledger(
        directory,
        origin=ORIGIN,
        db=url,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=Argon2Cost(memory_kib=64, iterations=1, lanes=1),
    )
    app = open_app(parse_store_url(url))
    try:
        service = LedgerService(app, Signer("ada", made.admin_key), made.log_key.public_key)
        for lo in range(0, n, batch):
            save_people(service, lo, min(n, lo + batch))
        size = app.store.head().size
    finally:
        app.close()
    child(["--dir", str(directory), "checkpoint"], None)
    return size, made.log_key.public_key


def keys_cached(url: str, log_public_key: bytes) -> float:
    """Seconds of a second verify_store in one process: its subject keys are cached (up to
    the store's bound of 50,000 subjects)."""
    app = open_app(parse_store_url(url))
    try:
        verify_store(app, origin=ORIGIN, log_name=ORIGIN, log_public_key=log_public_key)
        start = time.perf_counter()
        report = verify_store(app, origin=ORIGIN, log_name=ORIGIN, log_public_key=log_public_key)
        elapsed = time.perf_counter() - start
    finally:
        app.close()
    if not report.verified:
        raise SystemExit(f"bench ledger did not verify: {report.failures[:3]}")
    return elapsed


def bench_one(n: int, backend: str, args: argparse.Namespace, root: Path) -> list[Row]:
    rows: list[Row] = []
    with ledger_store(backend, root, n, args.keep) as url:
        directory = root / f"{backend}-{n}"
        bundle = root / f"{backend}-{n}.bundle"
        if args.keep and bundle.exists():
            size, log_key = _bundle_size(bundle), load_config(directory).log_public_key
            log(f"{backend} {n:,}: reusing {directory} and {bundle}")
        else:
            log(f"{backend} {n:,}: building (load {load()})")
            start = time.perf_counter()
            size, log_key = build(directory, url, n, args.batch)
            log(f"{backend} {n:,}: built {size:,} events in {time.perf_counter() - start:.0f} s")
        raw, many = raw_rates()
        log(f"{backend} {n:,}: raw verify {raw:,.0f}/s, verify_many {many:,.0f}/s")
        rows.append(Row(size, backend, "raw: verify_many, all cores", "-", n / many, n, raw, many))
        if not bundle.exists():  # exported under another name first: --keep reuses whole ones
            partial = bundle.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            seconds, rss = child(["--dir", str(directory), "export", "--out", str(partial)], None)
            partial.rename(bundle)
            rows.append(
                Row(size, backend, "export (data level)", "after", seconds, size, raw, many, rss)
            )
        codes: list[tuple[str, Path | None]] = [("after", None)]
        if args.before and n <= args.before_max:
            codes.append(("before", Path(args.before)))
        vkey = note.format_verifier_key(ORIGIN, log_key)
        for label, code in codes:
            if n <= (args.verify_max if code is None else args.before_verify_max):
                log(f"{backend} {n:,}: calm-ledger verify, {label} (load {load()})")
                seconds, rss = child(["--dir", str(directory), "verify"], code)
                measure = "verify, new process"
                rows.append(Row(size, backend, measure, label, seconds, size, raw, many, rss))
            log(f"{backend} {n:,}: calm-ledger verify-bundle, {label} (load {load()})")
            seconds, rss = child(["verify-bundle", str(bundle), "--trusted-key", vkey], code)
            rows.append(Row(size, backend, "verify-bundle", label, seconds, size, raw, many, rss))
        if n <= min(args.verify_max, args.cached_max):
            log(f"{backend} {n:,}: verify_store with keys cached (load {load()})")
            seconds = keys_cached(url, log_key)
            rows.append(
                Row(size, backend, "verify, keys cached", "after", seconds, size, raw, many)
            )
        mib = bundle.stat().st_size / 2**20
        log(f"{backend} {n:,}: done (load {load()}); bundle {mib:,.1f} MiB")
    return rows


def _bundle_size(bundle: Path) -> int:
    reader = BundleReader(bundle)
    try:
        return reader.manifest.size
    finally:
        reader.close()


@contextlib.contextmanager
def ledger_store(
    backend: str, root: Path, n: int, keep: Path | None, name: str = "verify"
) -> Iterator[str]:
    """A fresh store, or with --keep a SQLite file in the kept directory (built once)."""
    if keep is None:
        with store(backend, root, name) as url:
            yield url
        return
    if backend != "sqlite":
        raise SystemExit("--keep keeps SQLite ledgers only")
    root.mkdir(parents=True, exist_ok=True)
    yield f"sqlite:///{root.resolve()}/{name}-{n}.db"


def report(rows: list[Row]) -> None:
    print(
        f"\n{'events':>9} {'store':<10} {'measure':<28} {'code':<6} {'s':>7} {'events/s':>9}"
        f" {'raw/s':>7} {'x raw':>6} {'x raw x' + str(CORES):>9} {'x many':>7} {'RSS MiB':>8}"
    )
    for r in rows:
        rss = "" if r.rss_mib is None else f"{r.rss_mib:,.0f}"
        rates = (
            f"{r.rate:>9,.0f} {r.raw:>7,.0f} {r.rate / r.raw:>6.2f}"
            f" {r.rate / (r.raw * CORES):>9.2f} {r.rate / r.many:>7.2f}"
            if r.events
            else f"{'':>9} {r.raw:>7,.0f} {'':>6} {'':>9} {'':>7}"
        )
        print(
            f"{r.size:>9,} {r.backend:<10} {r.measure:<28} {r.code:<6} {r.seconds:>7.1f}"
            f" {rates} {rss:>8}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--before", help="a checkout of the code to compare with")
    parser.add_argument("--before-max", type=int, default=100_000)
    parser.add_argument("--verify-max", type=int, default=100_000, help="largest `verify`")
    parser.add_argument("--before-verify-max", type=int, default=100_000)
    parser.add_argument("--cached-max", type=int, default=100_000, help="largest keys-cached")
    parser.add_argument("--batch", type=int, default=1000, help="events per build transaction")
    parser.add_argument("--keep", type=Path, help="build SQLite ledgers into, or reuse, this")
    args = parser.parse_args()
    log(f"load {load()}, {CORES} cores, backend {keys.ED25519_BACKEND}")
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for n in (int(x) for x in args.events.split(",")):
            for backend in args.backends.split(","):
                rows += bench_one(n, backend, args, root)
    report(rows)
    log(f"load {load()} at the end")


if __name__ == "__main__":
    main()
