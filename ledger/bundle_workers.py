"""verify-bundle's range entries checked on every core.

Worker processes take chunks of raw lines of entries.jsonl and do each entry's work that
needs no earlier entry: parse the line and its header (strictly, as in one process), the
origin, the Ed25519 signature against the public key its key id names, the data digest and
the disclosures (`ShownCheck`), the header's digest and leaf hash, the line's digest, and the
per-event part of an `EventFold` (the metrics fold's inputs). Each sends back one small row
a line. The main process keeps, in leaf order, what depends on earlier entries: the leaf
numbering, whether the key was that signer's at that point and the signer was enrolled,
not revoked and permitted, the stream chains, the right border, the counts and the fold.

A signature a worker verified counts only if the key it used is, byte for byte, the
signer's key at that leaf. Any line a worker cannot settle (it does not parse, a check
fails, the key is unknown to it, it is an actor event, the worker process died) the main
process checks again itself, exactly as without workers (`bundle.check_entry`), so every
check, failure message and count is the one-process verifier's: tests/test_bundle_workers.py
compares their reports.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from domain.roles import Role, may_sign
from ledger.bundle import (
    NEEDS_EVENT,
    BundleChecker,
    BundleReader,
    Disclosure,
    Entry,
    EventFold,
    Malformed,
    OnEvent,
    RangeSeen,
    ShownCheck,
    VerifiedEvents,
    append_leaf_hash,
    check_entry,
    entry_as_read,
    line_digest,
    parse_entry_header,
    verified_event,
)
from ledger.bundle import (
    _entry as parse_entry,  # the strict parse of one line, as the reader does it
)
from ledger.envelope import Header, signing_input
from ledger.errors import LedgerError
from ledger.keys import actor_key_id, verify_signature
from ledger.verify import Report

# Below this many entries the pool is not worth starting: it costs ~25-40 ms (two forks, a
# first chunk checked alone), ~5% of checking 5,000 entries in one process; at 10^4 the
# workers were 1.15-1.5x faster on a loaded machine (docs/benchmarks.md §9.6).
# `verify_bundle(workers=N)` uses N workers whatever the size.
MIN_ENTRIES = 5_000
# More would wait on the main process (its ordered part is ~1/5 of a worker's work an
# entry) and hold more chunks in flight (two a worker, ~0.9 MB each).
MAX_WORKERS = 4
CHUNK_LINES = 500  # lines a task: ~0.9 MB sent (an incident line is ~1.8 KB), ~50 ms of work
FIRST_CHUNK_LINES = 100  # checked alone, for the keys its enrolments name: short, so soon in
NAME = "entries.jsonl"
_HASHES = 80  # bytes a line in a chunk's hashes: header digest, leaf hash, line digest

Keys = tuple[tuple[str, bytes], ...]  # (key id, public key), as the main process knows them
# What a worker makes of a line it settled: leaf, actor, key id, type, stream, version, prev,
# the index of the key it verified with, how many disclosures (-1: no data), how many passed,
# and the fold's prepared value.
Row = tuple[int, str, str, str, str, int, "str | None", int, int, int, object]


def worker_count(entries: int, asked: int | None) -> int:
    """How many worker processes check `entries` entries: 0 means in this process."""
    if asked is not None:
        return max(0, asked)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = min(cpus or 1, MAX_WORKERS)
    return cpus if cpus > 1 and entries >= MIN_ENTRIES else 0


@dataclass(frozen=True)
class Settings:
    """What every line of a run is checked against; each worker is given it once."""

    origin: str
    disclosure: Disclosure
    scope: frozenset[str]
    prepare: Any  # EventFold.prepare, or None


@dataclass(frozen=True)
class ChunkResult:
    rows: list[Row | None]  # None: the main process checks the line itself
    hashes: bytes  # _HASHES bytes a line (zeros where the row is None)
    learned: Keys  # keys named by the chunk's actor events, numbered after the chunk's keys


# --- in the worker processes -------------------------------------------------------------------

_settings: Settings | None = None


def _start_worker(settings: Settings) -> None:
    global _settings
    _settings = settings
    # Ctrl-C is the main process's to handle: it stops the pool (no traceback from here).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _work(keys: Keys, lines: list[bytes]) -> ChunkResult:
    assert _settings is not None, "started without settings"
    return check_chunk(_settings, keys, lines)


def check_chunk(settings: Settings, keys: Keys, lines: Sequence[bytes]) -> ChunkResult:
    """Each line's order-free checks (a pure function: the main process runs it too, if a
    worker fails)."""
    known = {key_id: n for n, (key_id, _) in enumerate(keys)}
    public = [key for _, key in keys]
    learned: list[tuple[str, bytes]] = []
    report = Report(checks=("disclosures", "data digests", "completeness"))
    shown = ShownCheck(report, settings.disclosure, settings.scope)
    rows: list[Row | None] = []
    hashes = bytearray()
    for line in lines:
        try:
            settled = _settle(settings, line, known, public, learned, shown)
        except Exception:  # whatever it is, the main process meets it again, in order
            settled = None
        if settled is None:
            rows.append(None)
            hashes += bytes(_HASHES)
        else:
            rows.append(settled[0])
            hashes += settled[1]
    return ChunkResult(rows, bytes(hashes), tuple(learned))


def _settle(
    settings: Settings,
    line: bytes,
    known: dict[str, int],
    public: list[bytes],
    learned: list[tuple[str, bytes]],
    shown: ShownCheck,
) -> tuple[Row, bytes] | None:
    """A line's row and hashes, or None if anything about it is not plainly fine."""
    try:
        entry = parse_entry(line, "")
    except Exception:  # refused: the main process refuses it again, in order, as it would
        return None
    header = parse_entry_header(entry)
    if isinstance(header, LedgerError) or entry.proof is not None:
        return None
    if header.type.startswith("actor."):  # these change actors: checked in order only
        _learn_key(header, entry, known, public, learned)
        return None
    key = known.get(header.key_id)
    if header.origin != settings.origin or key is None:
        return None
    try:
        verify_signature(public[key], signing_input(header.raw), entry.signature)
    except LedgerError:
        return None
    report = shown.report
    passed = report.passed["disclosures"]
    if not shown.check("", header, entry) or report.failures:
        report.failures.clear()
        return None
    prepared = None
    if entry.data is not None and settings.prepare is not None:
        try:
            prepared = settings.prepare(header, entry.data)
        except Exception:  # the main process's fold raises it again, in order
            return None
    row: Row = (
        entry.leaf,
        sys.intern(header.actor),  # repeated: pickled once a chunk
        sys.intern(header.key_id),
        sys.intern(header.type),
        header.stream,
        header.version,
        header.prev,
        key,
        -1 if entry.data is None else len(entry.disclosures or {}),
        report.passed["disclosures"] - passed,
        prepared,
    )
    leaf_hash = hashlib.sha256(b"\x00" + header.raw).digest()
    return row, header.digest + leaf_hash + line_digest(line)


def _learn_key(
    header: Header,
    entry: Entry,
    known: dict[str, int],
    public: list[bytes],
    learned: list[tuple[str, bytes]],
) -> None:
    """The key an enrolment or re-key names, for the chunk's later lines: only a guess,
    since whether it became the actor's key is decided in order (the main process accepts
    a signature only if the key verified with is the signer's key at that leaf)."""
    if header.type not in ("actor.enrolled", "actor.rekeyed") or entry.data is None:
        return
    try:
        encoded = orjson.loads(entry.data)["public_key"]
        key = base64.b64decode(encoded, validate=True)
        key_id = actor_key_id(key)
    except Exception:  # not a key: nothing to learn
        return
    if key_id not in known:
        known[key_id] = len(public)
        public.append(key)
        learned.append((key_id, key))


# --- in the main process -----------------------------------------------------------------------


@dataclass
class _Pending:
    future: Future[ChunkResult] | None  # None: the pool would not take it
    keys: Keys
    lines: list[tuple[int, bytes]]  # (line number, line)


class EntryRun:
    """The range entries of one run, checked by worker processes and put in order here."""

    def __init__(
        self,
        report: Report,
        checker: BundleChecker,
        seen: RangeSeen,
        events: VerifiedEvents,
        on_event: OnEvent | None,
    ) -> None:
        self.report = report
        self.checker = checker
        self.seen = seen
        self.events = events
        self.on_event = on_event
        self.fold = on_event if isinstance(on_event, EventFold) else None
        shown = checker.shown
        self.settings = Settings(
            checker.origin,
            shown.disclosure,
            shown.scope,
            self.fold.prepare if self.fold is not None else None,
        )
        self.keys: dict[str, bytes] = {}
        self.key_list: Keys = ()
        self._learn_actor_keys()
        self.passed = dict.fromkeys(
            ("signatures", "signers", "data digests", "disclosures"), 0
        )  # counted here, added to the report once a chunk
        self._may_sign: dict[tuple[frozenset[Role], str], bool] = {}

    def check(self, reader: BundleReader, workers: int) -> bool:
        """Every range entry, in leaf order; False if the run ended at one."""
        pool = _pool(workers, self.settings)
        try:
            return self._run(reader, pool, workers)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self._count_passed()

    def _run(self, reader: BundleReader, pool: ProcessPoolExecutor | None, workers: int) -> bool:
        pending: deque[_Pending] = deque()
        ahead = 1  # until the first chunk is in: its enrolments name the next chunks' keys
        chunks = _chunks(reader.raw_lines(NAME), CHUNK_LINES, FIRST_CHUNK_LINES)
        while True:
            try:
                chunk = next(chunks, None)
            except Malformed:  # a line that cannot be read: raised after the lines before it
                while pending:
                    if not self._finish(pending.popleft()):
                        return False
                raise
            if chunk is None:
                break
            while len(pending) >= ahead:
                if not self._finish(pending.popleft()):
                    return False
                ahead = 2 * workers
            pending.append(self._submit(pool, chunk))
        while pending:
            if not self._finish(pending.popleft()):
                return False
        return True

    def _submit(self, pool: ProcessPoolExecutor | None, chunk: list[tuple[int, bytes]]) -> _Pending:
        future = None
        if pool is not None:
            try:
                future = pool.submit(_work, self.key_list, [line for _, line in chunk])
            except Exception:  # a broken pool: this process checks the chunk in its turn
                future = None
        return _Pending(future, self.key_list, chunk)

    def _finish(self, pending: _Pending) -> bool:
        """A chunk's lines, in order; False if the run ended at one."""
        result = None
        if pending.future is not None:
            try:
                result = pending.future.result()
            except Exception:  # the worker died or failed: check the chunk here instead
                result = None
        if result is None:
            lines = [line for _, line in pending.lines]
            result = check_chunk(self.settings, pending.keys, lines)
        keys = [key for _, key in pending.keys] + [key for _, key in result.learned]
        self._add_keys(result.learned)
        hashes = result.hashes
        try:
            for i, (number, line) in enumerate(pending.lines):
                row = result.rows[i]
                at = _HASHES * i
                if row is not None and self._settled(row, keys, line, hashes[at : at + _HASHES]):
                    continue
                if not self._check_here(number, line):
                    return False
        finally:
            self._count_passed()
        return True

    def _settled(self, row: Row, keys: list[bytes], line: bytes, hashes: bytes) -> bool:
        """Finish a line a worker settled, if the order allows it as it stands; False (and
        nothing done) if the line must be checked here from the start."""
        leaf, actor_name, key_id, event_type, stream, version, prev, key, shown, passed, ready = row
        seen = self.seen
        actor = self.checker.actors.get(actor_name)
        if (
            leaf != seen.expected
            or actor is None
            or actor.revoked
            or key_id != actor.key_id
            or keys[key] != actor.public_key
            or not self._permitted(actor.roles, event_type)
        ):
            return False
        counts = self.passed
        counts["signatures"] += 1
        counts["signers"] += 1
        where = f"leaf {leaf} stream {stream} v{version} ({event_type})"
        self.checker.check_chain(where, stream, version, prev, hashes[:32])
        if shown >= 0:
            counts["data digests"] += 1
        counts["disclosures"] += passed
        self.events.add_digest(shown >= 0, hashes[64:80])
        if self.fold is not None:
            if ready == NEEDS_EVENT:
                self.fold(*verified_event(line, True))
            elif ready is not None:
                self.fold.add_prepared(ready)
        elif self.on_event is not None:
            self.on_event(*verified_event(line, shown >= 0))
        append_leaf_hash(seen.border, seen.expected, hashes[32:64])
        seen.expected += 1
        seen.counts["entries"] += 1
        if shown >= 0:
            seen.counts["with_data"] += 1
            seen.counts["disclosures"] += shown
        return True

    def _check_here(self, number: int, line: bytes) -> bool:
        """A line checked entirely in this process, as without workers."""
        entry = entry_as_read(line, NAME, number)
        ok = check_entry(
            self.report, self.checker, self.seen, self.events, self.on_event, line, entry
        )
        self._learn_actor_keys()
        return ok

    def _permitted(self, roles: frozenset[Role], event_type: str) -> bool:
        known = self._may_sign.get((roles, event_type))
        if known is None:
            known = self._may_sign[roles, event_type] = may_sign(roles, event_type)
        return known

    def _learn_actor_keys(self) -> None:
        self._add_keys((a.key_id, a.public_key) for a in self.checker.actors.values())

    def _add_keys(self, keys: Iterator[tuple[str, bytes]] | Keys) -> None:
        added = False
        for key_id, key in keys:
            if key_id not in self.keys:
                self.keys[key_id] = key
                added = True
        if added:
            self.key_list = tuple(self.keys.items())

    def _count_passed(self) -> None:
        for check, n in self.passed.items():
            if n:
                self.report.ok(check, n)
                self.passed[check] = 0


def _pool(workers: int, settings: Settings) -> ProcessPoolExecutor | None:
    """Worker processes, forked where the platform can (they start in milliseconds, with
    the modules already imported); None if none can be started (then this process checks
    every chunk)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    try:
        return ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(settings,)
        )
    except (OSError, ImportError, NotImplementedError):  # e.g. no POSIX semaphores
        return None


def _chunks(
    lines: Iterator[tuple[int, bytes]], size: int, first: int
) -> Iterator[list[tuple[int, bytes]]]:
    """Lines in chunks of `size` (the first of `first`). A line that cannot be read ends the
    last chunk before it is raised."""
    chunk: list[tuple[int, bytes]] = []
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) == first:
                yield chunk
                chunk, first = [], size
    except Malformed:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk
