"""Export bundles: the format, a streaming writer and reader, and the offline verifier.

A bundle is a zip holding (all text, specified in docs/formats.md §9):

    manifest.json     canonical JSON: origin, leaf range [first, size), scope, disclosure level,
                      recipient, creation time, counts
    checkpoint.txt    the signed checkpoint of tree size `size`, with any witness cosignatures
    left-border.txt   base64 hashes of the right border of the tree of size `first`
    consistency.txt   base64 consistency proof from the tree of size `first` (the recipient's
                      previous checkpoint) to the checkpoint
    entries.jsonl     one line per leaf first..size-1: header, signature, and the data and
                      disclosures the level allows
    context.jsonl     enrolments, re-keys and revocations before `first`, each with an
                      inclusion proof, so every signer can be checked
    metrics.json      reduction metrics computed from the bundle (disclosure-controlled)

The range is contiguous, so a bundle is complete by construction: the verifier recomputes the
checkpoint's root from the left border and every leaf, which proves each leaf's inclusion
and that none is missing, added or reordered. Each member's content has one accepted text
(bar the cosignature lines of witnesses the verifier was not given, which signed notes allow
and ignore); the zip container around them is not verified. Nothing here imports a database
driver.
"""

from __future__ import annotations

import base64
import hashlib
import json
import lzma
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import IO, Any, Protocol, overload, runtime_checkable

import orjson

from ledger import merkle, note
from ledger.canonical import canonical_bytes, parse_canonical, parse_datetime
from ledger.envelope import (
    SEALED_KEY,
    Envelope,
    Header,
    disclosure_digest,
    parse_header,
    trusted_header,
)
from ledger.errors import LedgerError, ValidationError, VerificationError
from ledger.keys import verify_signature
from ledger.spill import SpilledRecords
from ledger.stream_state import StreamHeads, StreamNumbers
from ledger.verify import EventChecker, Report, split_after_actor_events

FORMAT = "calm-ledger-bundle/v1"
MEMBERS = (
    "manifest.json",
    "manifest.sig",
    "checkpoint.txt",
    "left-border.txt",
    "consistency.txt",
    "entries.jsonl",
    "context.jsonl",
    "metrics.json",
)
MANIFEST_SIGNATURE_CONTEXT = b"calm-ledger/bundle-manifest/v1\n"
MAX_LINE = 16 * 1024 * 1024
MAX_MEMBER = 64 * 1024 * 1024  # every member but entries.jsonl
REQUIRED = ("manifest.json", "manifest.sig", "checkpoint.txt", "entries.jsonl")
ACTOR_EVENTS = ("actor.enrolled", "actor.rekeyed", "actor.revoked")
# Every member is stored with this modification time (the zip format's earliest), so the
# same export makes the same bytes; the manifest's created_at says when it was made.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
BUNDLE_CHECKS = (
    "parse",
    "log signatures",
    "witnesses",
    "consistency",
    "inclusion",
    "signatures",
    "signers",
    "stream chains",
    "data digests",
    "disclosures",
    "completeness",
    "metrics",
)
_Line = tuple[bytes, "Entry"]  # a line of entries.jsonl and the entry it holds
OnEvent = Callable[[Header, "bytes | None"], None]  # a verified event and its data if shown
# What `EventFold.prepare` returns for an event it can only fold whole, in the main process.
NEEDS_EVENT = "needs the event"
ENTRY_BATCH = 1024  # entries read ahead: one parallel signature check each, memory flat
# EventChecker's check names → the bundle checklist's.
_RENAME = {"envelopes parse": "parse", "origin": "parse"}


@runtime_checkable
class EventFold(Protocol):
    """An `on_event` that splits its work so that worker processes can do most of it.

    `prepare(header, data)` is the part that needs no earlier event: a module-level function
    (worker processes are sent it by name), run on each event whose data verified, returning
    something small to pickle, None for nothing to fold, or NEEDS_EVENT; `add_prepared`
    folds its result in leaf order. Calling the fold with an event must do what
    `add_prepared(prepare(header, data))` does (NEEDS_EVENT: the fold's own way).
    `share_streams` gives it the chain check's stream numbering, before the first event,
    for it to find streams by rather than keep a table of their ids."""

    prepare: Callable[[Header, bytes], object]

    def __call__(self, header: Header, data: bytes | None) -> None: ...

    def add_prepared(self, prepared: object) -> None: ...

    def share_streams(self, streams: StreamNumbers) -> None: ...


class Disclosure(StrEnum):
    NONE = "none"  # headers only
    DATA = "data"  # + data objects of in-scope events (personal fields stay sealed)
    PERSONAL = "personal"  # + the disclosures of in-scope events' sealed fields


@dataclass(frozen=True)
class Manifest:
    origin: str
    first: int
    size: int
    scope: tuple[str, ...]
    disclosure: Disclosure
    recipient: str
    created_at: str
    previous_size: int | None
    counts: dict[str, int]
    metrics_sha256: str | None  # SHA-256 of metrics.json, if the bundle states metrics

    def encode(self) -> bytes:
        return canonical_bytes(
            {
                "format": FORMAT,
                "origin": self.origin,
                "range": {"first": self.first, "size": self.size},
                "scope": list(self.scope),
                "disclosure": self.disclosure.value,
                "recipient": self.recipient,
                "created_at": self.created_at,
                "previous_size": self.previous_size,
                "counts": dict(sorted(self.counts.items())),
                "metrics_sha256": self.metrics_sha256,
            }
        )


@dataclass(frozen=True)
class Entry:
    """One leaf's envelope, shown at the level the bundle allows."""

    leaf: int
    header: bytes
    signature: bytes
    data: bytes | None = None
    disclosures: dict[str, bytes] | None = None  # field → plaintext disclosure
    proof: tuple[merkle.Hash, ...] | None = None  # context entries only

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "leaf": self.leaf,
            "header": _b64(self.header),
            "signature": _b64(self.signature),
            "data": None if self.data is None else _b64(self.data),
            "disclosures": None
            if self.disclosures is None
            else {k: _b64(v) for k, v in sorted(self.disclosures.items())},
        }
        if self.proof is not None:
            body["proof"] = [str(h) for h in self.proof]
        return canonical_bytes(body) + b"\n"

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.header, self.signature, self.data or b"", b"")


# --- writing -------------------------------------------------------------------------------


class BundleWriter:
    """Writes a bundle to a zip, streaming the entries (written in one go, between the
    small members before and after them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path, "x", compression=zipfile.ZIP_DEFLATED)
        self._entries: IO[bytes] | None = None
        self._entries_done = False

    def text(self, name: str, content: str | bytes) -> None:
        self._end_entries()
        data = content.encode() if isinstance(content, str) else content
        self.zip.writestr(_member_info(name), data)

    def entry(self, entry: Entry) -> None:
        if self._entries_done:
            raise AssertionError("entries must be written together")
        if self._entries is None:
            self._entries = self.zip.open(_member_info("entries.jsonl"), "w", force_zip64=True)
        self._entries.write(entry.encode())

    def _end_entries(self) -> None:
        if self._entries is not None:
            self._entries.close()
            self._entries = None
            self._entries_done = True

    def close(self) -> None:
        self._end_entries()
        if not self._entries_done and "entries.jsonl" not in self.zip.namelist():
            self.zip.writestr(_member_info("entries.jsonl"), b"")
        self.zip.close()

    def abort(self) -> None:
        """Give up: close what is open and delete the file."""
        try:
            self._end_entries()
            self.zip.close()
        finally:
            self.path.unlink(missing_ok=True)


def _member_info(name: str) -> zipfile.ZipInfo:
    """A member's zip metadata, the same on every machine and at every time."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever the platform: the mode below is Unix's
    info.external_attr = 0o644 << 16
    return info


def hashes_text(hashes: Sequence[bytes]) -> str:
    return "".join(f"{merkle.Hash(h)}\n" for h in hashes)


# --- reading -------------------------------------------------------------------------------


class Malformed(ValidationError):
    """Not a bundle this verifier can read: exit 2."""


class BundleReader:
    """Strict reader of a bundle file; entries are streamed, everything else is small."""

    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except _ZIP_ERRORS as e:
            raise Malformed(f"{path} is not a bundle (not a readable zip file: {e})") from None
        try:
            names = set(self.zip.namelist())
            if len(names) != len(self.zip.namelist()) or not names <= set(MEMBERS):
                unexpected = sorted(names - set(MEMBERS))
                raise Malformed(f"unexpected or repeated members in the bundle: {unexpected}")
            missing = set(REQUIRED) - names
            if missing:
                raise Malformed(f"the bundle lacks {sorted(missing)}")
            self.manifest_bytes = self._small("manifest.json")
            self.manifest = _manifest(self.manifest_bytes)
            self.manifest_signature = self._small("manifest.sig")
            self.checkpoint = self._text("checkpoint.txt")
        except BaseException:
            self.zip.close()
            raise

    def _small(self, name: str) -> bytes:
        info = self.zip.getinfo(name)
        if info.file_size > MAX_MEMBER:
            raise Malformed(f"{name} is larger than {MAX_MEMBER // 2**20} MiB")
        try:
            with self.zip.open(name) as f:
                data = f.read(MAX_MEMBER + 1)
        except _ZIP_ERRORS as e:
            raise Malformed(f"{name} cannot be read from the zip: {e}") from None
        if len(data) > MAX_MEMBER:
            raise Malformed(f"{name} is larger than {MAX_MEMBER // 2**20} MiB")
        return data

    def _text(self, name: str) -> str:
        try:
            return self._small(name).decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{name} is not UTF-8") from None

    def optional_text(self, name: str) -> str | None:
        return self._text(name) if name in self.zip.namelist() else None

    def hashes(self, name: str) -> tuple[merkle.Hash, ...]:
        """A member of base64 hashes, each followed by a newline (absent or empty: none)."""
        text = self.optional_text(name)
        if not text:
            return ()
        try:
            hashes = tuple(merkle.Hash.from_base64(line) for line in text[:-1].split("\n"))
        except LedgerError:
            hashes = None
        if hashes is None or hashes_text(hashes) != text:
            raise Malformed(f"{name} must hold base64 hashes, each followed by a newline")
        return hashes

    def entries(self, name: str = "entries.jsonl") -> Iterator[Entry]:
        return (entry for _, entry in self.entry_lines(name))

    def entry_lines(self, name: str = "entries.jsonl") -> Iterator[tuple[bytes, Entry]]:
        """Each line (without its newline) and the entry it holds, checked as it is read."""
        for number, line in self.raw_lines(name):
            yield line, entry_as_read(line, name, number)

    def raw_lines(self, name: str = "entries.jsonl") -> Iterator[tuple[int, bytes]]:
        """Each line's number (from 1) and its bytes without the newline, refused as it is
        read if too long or unterminated; the entry it holds is not parsed."""
        if name not in self.zip.namelist():
            return
        number = 0
        try:
            with self.zip.open(name) as raw:
                for line in _read_lines(raw):
                    number += 1
                    if len(line) > MAX_LINE:
                        raise Malformed(f"{name} line {number} is too long")
                    if not line.endswith(b"\n"):
                        raise Malformed(f"{name} line {number} does not end with a newline")
                    yield number, line[:-1]
        except _ZIP_ERRORS as e:
            raise Malformed(f"{name} cannot be read from the zip: {e}") from None

    def metrics(self) -> Any:
        text = self.optional_text("metrics.json")
        if text is None:
            if self.manifest.metrics_sha256 is not None:
                raise VerificationError(
                    "the manifest names a metrics.json the bundle lacks", step="metrics"
                )
            return None
        if hashlib.sha256(text.encode()).hexdigest() != self.manifest.metrics_sha256:
            raise VerificationError(
                "metrics.json is not the one the manifest names", step="metrics"
            )
        try:
            return json.loads(text)  # decimals: not canonical JSON; compared as values
        except (ValueError, RecursionError):
            raise Malformed("metrics.json is not JSON") from None

    def close(self) -> None:
        self.zip.close()


def entry_as_read(line: bytes, name: str, number: int) -> Entry:
    """The entry of line `number` of member `name`, or Malformed as reading it refuses it."""
    try:
        return _entry(line, f"{name} line {number}")
    except _ZIP_ERRORS as e:  # as a failure while reading the member (ValueError: not Malformed)
        raise Malformed(f"{name} cannot be read from the zip: {e}") from None


def _read_lines(raw: IO[bytes], block: int = 1 << 20) -> Iterator[bytes]:
    """What `raw.readline(MAX_LINE + 1)` would return, line after line, read in blocks
    (a Python-level readline per line cost as much as parsing it): each line with its
    newline; a longer one, or an unterminated end, is given as is for the caller to refuse."""
    pending = b""
    while chunk := raw.read(block):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line + b"\n"
        if len(pending) > MAX_LINE:
            yield pending
            return
    if pending:
        yield pending


# What zipfile raises for a file or member it cannot read: a bad CRC, deflate, bzip2 or LZMA
# stream, a truncated file, a name flagged UTF-8 that is not, an unsupported compression
# method, encryption.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def _manifest(raw: bytes) -> Manifest:
    m = _json(raw, "manifest.json")
    expected = {
        "format",
        "origin",
        "range",
        "scope",
        "disclosure",
        "recipient",
        "created_at",
        "previous_size",
        "counts",
        "metrics_sha256",
    }
    if not isinstance(m, dict) or set(m) != expected or m.get("format") != FORMAT:
        raise Malformed(f"manifest.json is not a {FORMAT} manifest")
    try:
        manifest = Manifest(
            origin=_str(m["origin"]),
            first=_int(m["range"]["first"]),
            size=_int(m["range"]["size"]),
            scope=tuple(_str(s) for s in m["scope"]),
            disclosure=Disclosure(m["disclosure"]),
            recipient=_str(m["recipient"]),
            created_at=_str(m["created_at"]),
            previous_size=None if m["previous_size"] is None else _int(m["previous_size"]),
            counts={_str(k): _int(v) for k, v in m["counts"].items()},
            metrics_sha256=None if m["metrics_sha256"] is None else _str(m["metrics_sha256"]),
        )
        parse_datetime(manifest.created_at)
    except (KeyError, TypeError, ValueError, AttributeError, LedgerError):
        raise Malformed("manifest.json has a missing or mistyped field") from None
    if not 0 <= manifest.first <= manifest.size:
        raise Malformed("manifest range is not 0 <= first <= size")
    if manifest.encode() != raw:
        raise Malformed("manifest.json is not in canonical form")
    return manifest


def _entry(line: bytes, where: str) -> Entry:
    # Fast path: a line that rebuilds from its entry is canonical, which is all parsing it
    # as canonical JSON first would add. Anything else takes the slow path, so what is
    # refused, and the message, stay those of the strict parse.
    try:
        return _entry_of(orjson.loads(line), line, where)
    except (ValueError, LedgerError):
        return _entry_of(_json(line, where), line, where)


def _entry_of(raw: Any, line: bytes, where: str) -> Entry:
    if not isinstance(raw, dict) or not {
        "leaf",
        "header",
        "signature",
        "data",
        "disclosures",
    } <= set(raw) <= {"leaf", "header", "signature", "data", "disclosures", "proof"}:
        raise Malformed(f"{where}: not a bundle entry")
    try:
        entry = Entry(
            leaf=_int(raw["leaf"]),
            header=_unb64(raw["header"]),
            signature=_unb64(raw["signature"]),
            data=None if raw["data"] is None else _unb64(raw["data"]),
            disclosures=None
            if raw["disclosures"] is None
            else {_str(k): _unb64(v) for k, v in raw["disclosures"].items()},
            proof=None
            if "proof" not in raw
            else tuple(merkle.Hash.from_base64(_str(h)) for h in raw["proof"]),
        )
    except (TypeError, ValueError, AttributeError, LedgerError):
        raise Malformed(f"{where}: a field is missing, mistyped or not base64") from None
    if entry.encode() != line + b"\n":
        raise Malformed(f"{where}: not in canonical form")
    return entry


def _json(raw: bytes, where: str) -> Any:
    try:
        return parse_canonical(raw)
    except (LedgerError, ValueError) as e:
        message = e.diagnostics() if isinstance(e, LedgerError) else str(e)
        raise Malformed(f"{where}: {message}") from None


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("expected a non-negative integer")
    return value


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(value: Any) -> bytes:
    return base64.b64decode(_str(value), validate=True)


# --- verifying -----------------------------------------------------------------------------


@dataclass
class BundleVerification:
    report: Report
    manifest: Manifest | None = None
    checkpoint: note.Checkpoint | None = None
    # (header, data if shown and verified) of each range entry whose header parses, in leaf
    # order; `verify_bundle` gives a VerifiedEvents, which reads them again from the bundle.
    events: Sequence[tuple[Header, bytes | None]] = field(default_factory=list)


_SKIPPED, _HEADER, _DATA = 0, 1, 2  # what VerifiedEvents yields for a line
_LINE_RECORD = struct.Struct("<B16s")  # a line's kind and digest


class VerifiedEvents(Sequence[tuple[Header, bytes | None]]):
    """`BundleVerification.events` for a bundle file, kept flat in memory: each pass reads
    entries.jsonl again instead of holding millions of entries. Per line it keeps what to
    yield and a 16-byte digest (in a temporary file but for the newest: `SpilledRecords`),
    and a line read again must be the line verified (else VerificationError), so a file
    changed after verification is never taken as verified."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Per line verified: _SKIPPED, _HEADER or _DATA, and its digest.
        self._lines = SpilledRecords(_LINE_RECORD)
        self._count = 0

    def add(self, line: bytes, fed: tuple[Header, bytes | None] | None) -> None:
        """Record the line just verified and what the checker made of it."""
        kind = _SKIPPED if fed is None else _HEADER if fed[1] is None else _DATA
        self._lines.append(kind, line_digest(line))
        self._count += fed is not None

    def add_digest(self, with_data: bool, digest: bytes) -> None:
        """`add` for a line whose header parsed, given `line_digest(line)`."""
        self._lines.append(_DATA if with_data else _HEADER, digest)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[Header, bytes | None]]:
        try:
            with zipfile.ZipFile(self.path) as z, z.open("entries.jsonl") as raw:
                lines = _read_lines(raw)
                for kind, digest in self._lines:
                    line = next(lines, b"")[:-1]  # a line gone reads as empty: never verified
                    if line_digest(line) != digest:
                        raise VerificationError(
                            f"{self.path} changed since it was verified", step="bundle"
                        )
                    if kind != _SKIPPED:
                        yield verified_event(line, kind == _DATA)
        except _ZIP_ERRORS as e:
            raise VerificationError(f"{self.path} cannot be read again: {e}") from None

    @overload
    def __getitem__(self, index: int) -> tuple[Header, bytes | None]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[Header, bytes | None]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[Header, bytes | None] | list[tuple[Header, bytes | None]]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            return (
                list(islice(self, start, max(start, stop), step)) if step > 0 else list(self)[index]
            )
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError("event index out of range")
        return next(islice(self, position, None))


def line_digest(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=16).digest()


def verified_event(line: bytes, with_data: bool) -> tuple[Header, bytes | None]:
    """An entries.jsonl line already verified: its form needs no second check."""
    raw = orjson.loads(line)
    data = base64.b64decode(raw["data"]) if with_data else None
    header = base64.b64decode(raw["header"])
    return trusted_header(header), data


def parse_entry_header(entry: Entry) -> Header | LedgerError:
    try:
        return parse_header(entry.header)
    except LedgerError as e:
        return e


class BundleChecker(EventChecker):
    """EventChecker for entries shown at a level: data may be absent, disclosures are
    plaintext, and streams may begin before the bundle's first leaf. What each entry shows
    must also be what the manifest's disclosure level and scope allow."""

    def __init__(self, report: Report, *, log_public_key: bytes, manifest: Manifest) -> None:
        super().__init__(report, origin=manifest.origin, log_public_key=log_public_key)
        self.first = manifest.first
        self.shown = ShownCheck(report, manifest.disclosure, frozenset(manifest.scope))
        # Each range entry may start a stream: size the table for that many at once.
        self.streams = StreamHeads(expected=manifest.size - manifest.first)

    def feed_entry(
        self, where: str, entry: Entry, parsed: Header | LedgerError | None = None
    ) -> tuple[Header, bytes | None] | None:
        """Check one entry (its header, if already run through `parse_entry_header`).
        Returns its header and its data if the data matches the signed digest (None
        otherwise), or None if the header does not parse."""
        r = self.report
        header = parse_entry_header(entry) if parsed is None else parsed
        if isinstance(header, LedgerError):
            r.fail("parse", where, header.diagnostics())
            return None
        where = f"{where} stream {header.stream} v{header.version} ({header.type})"
        if header.origin != self.origin:
            r.fail("parse", where, f"origin {header.origin!r} is not this log's")
        signed_ok = self._check_signature(where, header, entry.signature)
        permitted = signed_ok and self._check_signer(where, header)
        self._check_chain(where, header)
        data_ok = self.shown.check(where, header, entry)
        # Only actor events change state (the test is _apply_actor_event's own): the envelope
        # is built for them alone, not for every entry.
        if permitted and data_ok and entry.data is not None and header.type.startswith("actor."):
            self._apply_actor_event(where, header, entry.envelope)
        return header, entry.data if data_ok else None

    def began_earlier(self, header: Header) -> bool:
        """A bundle that starts past leaf 0 may hold a stream's later events only: its
        earlier links were in earlier exports."""
        return self._began_earlier(header.version)

    def _began_earlier(self, version: int) -> bool:
        return self.first > 0 and version > 1

    def _check_chain(self, where: str, header: Header) -> None:
        self.check_chain(where, header.stream, header.version, header.prev, header.digest)

    def check_chain(
        self, where: str, stream: str, version: int, prev: str | None, digest: bytes
    ) -> None:
        """EventChecker's chain check, from the header's fields (the worker processes send
        these, not headers: tests/test_bundles.py checks both fail alike)."""
        last = self.streams.replace(stream, version, digest)
        if last is None and self._began_earlier(version):
            self.report.ok("stream chains")
            return
        expected_version = 1 if last is None else last[0] + 1
        expected_prev = None if last is None else last[1].hex()
        if version != expected_version:
            self.report.fail(
                "stream chains", where, f"version {version}, expected {expected_version}"
            )
        elif prev != expected_prev:
            self.report.fail("stream chains", where, "previous-envelope hash does not match")
        else:
            self.report.ok("stream chains")


class ShownCheck:
    """Checks 9 and 10 of one entry: its data digest, and that what it shows is what the
    manifest's level and scope allow. Needs nothing from earlier entries, so the worker
    processes run it too (`ledger.bundle_workers`)."""

    def __init__(self, report: Report, disclosure: Disclosure, scope: frozenset[str]) -> None:
        self.report = report
        self.disclosure = disclosure
        self.scope = scope

    def check(self, where: str, header: Header, entry: Entry) -> bool:
        """Whether the data (if shown) matches the signed digest."""
        r = self.report
        if entry.data is None:
            if entry.disclosures is not None:
                r.fail("disclosures", where, "disclosures without the data")
            if header.type in ACTOR_EVENTS:
                r.fail("completeness", where, "an actor event must carry its data")
            return True
        if hashlib.sha256(entry.data).hexdigest() != header.data_digest:
            r.fail("data digests", where, "data does not match the signed digest")
            return False
        r.ok("data digests")
        if header.type not in ACTOR_EVENTS:
            self._check_level(where, header)
        if self.disclosure is Disclosure.PERSONAL or entry.disclosures is not None:
            self._check_plain_disclosures(where, entry)
        return True

    def _check_level(self, where: str, header: Header) -> None:
        """Data of a non-actor event is shown only at level data or personal, in scope."""
        if self.disclosure is Disclosure.NONE:
            self.report.fail("disclosures", where, "data shown at disclosure level 'none'")
        elif self.scope and header.service is not None and header.service not in self.scope:
            self.report.fail(
                "disclosures", where, f"data of service {header.service!r}, outside the scope"
            )

    def _check_plain_disclosures(self, where: str, entry: Entry) -> None:
        """At level personal, an entry whose data seals fields shows an object of their
        plaintext disclosures: all of them, or none (the subject was erased); otherwise
        disclosures is null. Each disclosure hashes to its sealed digest."""
        r = self.report
        try:
            sealed = entry.envelope.data().get(SEALED_KEY, {})
        except LedgerError as e:
            r.fail("disclosures", where, e.diagnostics())
            return
        if not isinstance(sealed, dict) or not all(isinstance(d, str) for d in sealed.values()):
            r.fail("disclosures", where, f"{SEALED_KEY} is not an object of digests")
            return
        shown = entry.disclosures
        if self.disclosure is not Disclosure.PERSONAL or not sealed:
            if shown is not None:
                r.fail("disclosures", where, "disclosures shown where none may be")
            return
        if shown is None:
            r.fail("disclosures", where, "the sealed fields' disclosures are missing")
            return
        if shown and set(shown) != set(sealed):
            r.fail("disclosures", where, "disclosures of some sealed fields are missing")
        for name, plain in sorted(shown.items()):
            if sealed.get(name) != disclosure_digest(plain):
                r.fail("disclosures", where, f"disclosure of {name!r} does not match")
                continue
            parsed = _disclosure(plain)
            if parsed is None or parsed[1] != name:
                r.fail("disclosures", where, f"disclosure of {name!r} is malformed")
            else:
                r.ok("disclosures")


def _disclosure(plain: bytes) -> list[Any] | None:
    try:
        parsed = parse_canonical(plain)
    except LedgerError:
        return None
    return parsed if isinstance(parsed, list) and len(parsed) == 3 else None


class _Renaming(Report):
    """Routes EventChecker's check names onto the bundle checklist."""

    def ok(self, check: str, n: int = 1) -> None:
        super().ok(_RENAME.get(check, check), n)

    def fail(self, check: str, where: str, message: str) -> None:
        super().fail(_RENAME.get(check, check), where, message)


def verify_bundle(
    path: Path,
    *,
    trusted_key: note.NoteVerifierKey,
    previous_checkpoint: str | None = None,
    witness_keys: Sequence[note.NoteVerifierKey] = (),
    witness_quorum: int = 0,
    on_event: OnEvent | None = None,
    workers: int | None = None,
) -> BundleVerification:
    """The numbered checklist of DESIGN §9 over one bundle; metrics are checked by the caller
    (they are a projection). Raises Malformed for an unreadable bundle.

    `on_event` is given each event `BundleVerification.events` will hold, as it is checked:
    the metrics fold in the same pass, rather than reading every entry again after (an
    `EventFold` has worker processes do its per-event part). `workers`: how many worker
    processes check the entries (`ledger.bundle_workers`); 0: all in this process; None:
    one a CPU, for a bundle of at least `bundle_workers.MIN_ENTRIES` entries. The report
    is the same either way."""
    report = _Renaming(checks=BUNDLE_CHECKS)
    result = BundleVerification(report, events=VerifiedEvents(path))
    reader = BundleReader(path)
    try:
        _verify(
            reader,
            result,
            trusted_key,
            previous_checkpoint,
            witness_keys,
            witness_quorum,
            on_event,
            workers,
        )
    finally:
        reader.close()
    return result


def _verify(
    reader: BundleReader,
    result: BundleVerification,
    trusted: note.NoteVerifierKey,
    previous: str | None,
    witnesses: Sequence[note.NoteVerifierKey],
    quorum: int,
    on_event: OnEvent | None,
    workers: int | None,
) -> None:
    r = result.report
    m = result.manifest = reader.manifest
    r.ok("parse")  # 1. the zip, the manifest (checked as it was read), and every line below
    # 2. the checkpoint and the manifest are signed by the trusted log key
    try:
        cp, opened = note.open_checkpoint(reader.checkpoint, [trusted, *witnesses])
    except LedgerError as e:
        r.fail("log signatures", "checkpoint.txt", e.diagnostics())
        return
    result.checkpoint = cp
    if cp.origin != m.origin or trusted.name != m.origin:
        r.fail("log signatures", "checkpoint.txt", "origin differs from the trusted key's")
    elif cp.size != m.size:
        r.fail("completeness", "manifest.json", f"range ends at {m.size}, checkpoint at {cp.size}")
    else:
        r.ok("log signatures")
    raw = reader.manifest_signature
    try:
        signature = base64.b64decode(raw[:-1], validate=True)
        if base64.b64encode(signature) + b"\n" != raw:
            raise ValueError("manifest.sig is not base64 and a newline")
        verify_signature(
            trusted.public_key, MANIFEST_SIGNATURE_CONTEXT + reader.manifest_bytes, signature
        )
        r.ok("log signatures")
    except (LedgerError, ValueError):
        r.fail("log signatures", "manifest.sig", "the manifest is not signed by the log key")
    if not (m.previous_size == m.first or (m.previous_size is None and m.first == 0)):
        r.fail("completeness", "manifest.json", "previous_size is neither first nor null from 0")
    # 3. witnesses' cosignatures
    _check_witnesses(r, opened, trusted, witnesses, quorum)
    # 4. consistency: of the tree of size `first` with the checkpoint, and of the previous one
    left = reader.hashes("left-border.txt")
    _check_consistency(r, reader, m, cp, previous, trusted, left)
    # 5-11. every entry, in order; the root recomputed from the left border and the leaves
    checker = BundleChecker(r, log_public_key=trusted.public_key, manifest=m)
    if isinstance(on_event, EventFold):
        on_event.share_streams(checker.streams)
    context = _check_context(r, reader, checker, cp)
    _check_entries(r, reader, checker, cp, m, left, result, context, on_event, workers)
    if m.first == m.size:
        r.notes["completeness"] = "the bundle's range is empty: nothing to verify"
        r.fail("completeness", "manifest.json", "empty range: this bundle proves nothing")


def _check_witnesses(
    r: Report,
    opened: note.Note,
    trusted: note.NoteVerifierKey,
    witnesses: Sequence[note.NoteVerifierKey],
    quorum: int,
) -> None:
    if quorum <= 0:
        r.notes["witnesses"] = "no quorum asked for"
        return
    body = opened.text
    count = 0
    for key in witnesses:
        lines = [s.line for s in opened.signatures if s.name == key.name]
        for line in lines:
            try:
                note.verify_cosignature(body, line, key)
                count += 1
                break
            except LedgerError:
                continue
    if count >= quorum:
        r.ok("witnesses", count)
    else:
        r.fail("witnesses", "checkpoint.txt", f"{count} of the {quorum} cosignatures required")


def _check_consistency(
    r: Report,
    reader: BundleReader,
    m: Manifest,
    cp: note.Checkpoint,
    previous: str | None,
    trusted: note.NoteVerifierKey,
    left: tuple[merkle.Hash, ...],
) -> None:
    """consistency.txt proves the tree of size `first` (its root rebuilt from the left
    border) a prefix of the checkpoint's; a previous checkpoint must be that tree."""
    try:
        left_root = merkle.root_from_border(m.first, left)
    except LedgerError:
        r.fail("inclusion", "left-border.txt", f"not the border of a tree of size {m.first}")
        return
    against = f"the tree of size {m.first} (the left border)"
    if previous is None:
        r.notes["consistency"] = "no previous checkpoint given"
    else:
        try:
            prev, _ = note.open_checkpoint(previous, [trusted])
        except LedgerError as e:
            r.fail("consistency", "previous checkpoint", e.diagnostics())
            return
        if prev.origin != cp.origin:
            r.fail("consistency", "previous checkpoint", "another log's checkpoint")
            return
        if prev.size != m.first:
            r.fail(
                "completeness",
                "manifest.json",
                f"the range starts at {m.first}, not at the previous checkpoint's {prev.size}:"
                " leaves would be skipped or repeated",
            )
            return
        if left_root != prev.root_hash:
            r.fail("consistency", "left-border.txt", "left border does not match the previous root")
            return
        against = f"the previous one ({prev.size})"
    proof = reader.hashes("consistency.txt")
    try:
        if m.first == 0:
            if proof:
                raise VerificationError("no proof is needed from the empty tree")
        else:
            merkle.check_consistency(proof, m.first, cp.size, left_root, cp.root_hash)
        r.ok("consistency")
    except LedgerError:
        r.fail(
            "consistency",
            "consistency.txt",
            f"checkpoint {cp.size} is not consistent with {against}",
        )


def _check_context(
    r: Report, reader: BundleReader, checker: BundleChecker, cp: note.Checkpoint
) -> int:
    """Actor events before the range, each proven included; returns how many lines."""
    last, count = -1, 0
    for entry in reader.entries("context.jsonl"):
        count += 1
        where = f"context leaf {entry.leaf}"
        if entry.leaf <= last or entry.leaf >= reader.manifest.first or entry.proof is None:
            r.fail("completeness", where, "context entries must precede the range, in order")
            continue
        last = entry.leaf
        try:
            merkle.check_inclusion(
                entry.proof, entry.leaf, cp.size, merkle.leaf_hash(entry.header), cp.root_hash
            )
            r.ok("inclusion")
        except LedgerError:
            r.fail("inclusion", where, "inclusion proof does not verify")
            continue
        fed = checker.feed_entry(where, entry)
        if fed is not None and fed[0].type not in ACTOR_EVENTS:
            r.fail("completeness", where, "context entries must be actor events")
    return count


def _check_entries(
    r: Report,
    reader: BundleReader,
    checker: BundleChecker,
    cp: note.Checkpoint,
    m: Manifest,
    left: tuple[merkle.Hash, ...],
    result: BundleVerification,
    context: int,
    on_event: OnEvent | None,
    workers: int | None,
) -> None:
    if len(left) != m.first.bit_count():
        r.fail("inclusion", "left-border.txt", f"not the border of a tree of size {m.first}")
        return
    seen = RangeSeen(m.first, [bytes(h) for h in left], {"context": context})
    events = result.events
    assert isinstance(events, VerifiedEvents)
    from ledger import bundle_workers  # it builds on this module

    processes = bundle_workers.worker_count(m.size - m.first, workers)
    if processes:
        run = bundle_workers.EntryRun(r, checker, seen, events, on_event)
        if not run.check(reader, processes):
            return
    elif not _check_in_process(r, reader, checker, seen, events, on_event):
        return
    _check_range_end(r, cp, m, seen)


def _check_in_process(
    r: Report,
    reader: BundleReader,
    checker: BundleChecker,
    seen: RangeSeen,
    events: VerifiedEvents,
    on_event: OnEvent | None,
) -> bool:
    """Every entry in leaf order, in this process; False if the run ended at one."""
    for batch in _batches(reader.entry_lines(), ENTRY_BATCH):
        headers = [parse_entry_header(entry) for _, entry in batch]
        parsed = [h if isinstance(h, Header) else None for h in headers]
        for part in split_after_actor_events(parsed):
            signed = zip(parsed[part], batch[part], strict=True)
            checker.preverify((h, e.signature) for h, (_, e) in signed if h)
            for (line, entry), header in zip(batch[part], headers[part], strict=True):
                if not check_entry(r, checker, seen, events, on_event, line, entry, header):
                    return False
    return True


def check_entry(
    r: Report,
    checker: BundleChecker,
    seen: RangeSeen,
    events: VerifiedEvents,
    on_event: OnEvent | None,
    line: bytes,
    entry: Entry,
    header: Header | LedgerError | None = None,
) -> bool:
    """One range entry, after every earlier one; False if the run ends here."""
    if not _in_order(r, entry, seen.expected):
        return False
    fed = checker.feed_entry(f"leaf {entry.leaf}", entry, header)
    events.add(line, fed)
    if fed is not None and on_event is not None:
        on_event(*fed)
    seen.add(entry)
    return True


def _check_range_end(r: Report, cp: note.Checkpoint, m: Manifest, seen: RangeSeen) -> None:
    """After the last entry: none missing, the counts, and the root rebuilt."""
    expected, border, counts = seen.expected, seen.border, seen.counts
    if expected != m.size:
        r.fail("completeness", "entries.jsonl", f"{m.size - expected} leaves missing at the end")
        return
    if counts != m.counts:
        r.fail("completeness", "manifest.json", f"counts {m.counts}, but the bundle has {counts}")
    else:
        r.ok("completeness", m.size - m.first)
    if merkle.root_from_border(m.size, border) != cp.root_hash:
        r.fail(
            "inclusion",
            "entries.jsonl",
            "the leaves do not rebuild the checkpoint's root: an entry was changed,"
            " added, dropped or reordered",
        )
    else:
        r.ok("inclusion", m.size - m.first)


def _in_order(r: Report, entry: Entry, expected: int) -> bool:
    """A range entry is the next leaf (else the run ends here) and carries no proof."""
    if entry.leaf != expected:
        where = f"leaf {entry.leaf}"  # built on failure only: this runs once per entry
        r.fail("completeness", where, f"expected leaf {expected}: leaves skipped or repeated")
        return False
    if entry.proof is not None:
        r.fail("completeness", f"leaf {entry.leaf}", "a range entry carries no proof")
    return True


@dataclass
class RangeSeen:
    """The range's entries seen so far: the next leaf, the right border, the counts."""

    expected: int
    border: list[bytes]
    counts: dict[str, int]

    def __post_init__(self) -> None:
        self.counts |= {"disclosures": 0, "entries": 0, "with_data": 0}

    def add(self, entry: Entry) -> None:
        _append_leaf(self.border, self.expected, entry.header)
        self.expected += 1
        self.counts["entries"] += 1
        self.counts["with_data"] += entry.data is not None
        self.counts["disclosures"] += len(entry.disclosures or {})


def _batches(entries: Iterator[_Line], size: int) -> Iterator[list[_Line]]:
    """Entries in batches (for `EventChecker.preverify`). A line that cannot be read is
    raised only after the entries before it are checked, as when reading one at a time: a
    gap before it ends the run with a failed check, not as unusable input."""
    batch: list[_Line] = []
    try:
        for entry in entries:
            batch.append(entry)
            if len(batch) == size:
                yield batch
                batch = []
    except Malformed:
        yield batch
        raise
    if batch:
        yield batch


def _append_leaf(border: list[bytes], n: int, leaf_input: bytes) -> None:
    append_leaf_hash(border, n, hashlib.sha256(b"\x00" + leaf_input).digest())


def append_leaf_hash(border: list[bytes], n: int, node: bytes) -> None:
    """Append leaf `n`, given its hash, to the right border of the tree of `n` leaves, in
    place (§9.4): each trailing 1 bit of n closes a subtree. Plain bytes: this runs once
    per entry."""
    while n & 1:
        node = hashlib.sha256(b"\x01" + border.pop() + node).digest()
        n >>= 1
    border.append(node)
