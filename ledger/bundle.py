"""Export bundles: the format, a streaming writer and reader, and the offline verifier.

A bundle is a zip holding (all text, specified in docs/formats.md §9):

    manifest.json     canonical JSON: origin, leaf range [first, size), scope, disclosure level,
                      recipient, creation time, counts
    checkpoint.txt    the signed checkpoint of tree size `size`, with any witness cosignatures
    left-border.txt   base64 hashes of the right border of the tree of size `first`
    consistency.txt   base64 consistency proof from the recipient's previous checkpoint
    entries.jsonl     one line per leaf first..size-1: header, signature, and the data and
                      disclosures the level allows
    context.jsonl     enrolments, re-keys and revocations before `first`, each with an
                      inclusion proof, so every signer can be checked
    metrics.json      reduction metrics computed from the bundle (disclosure-controlled)

The range is contiguous, so a bundle is complete by construction: the verifier recomputes the
checkpoint's root from the left border and every leaf, which proves each leaf's inclusion
and that none is missing, added or reordered. Nothing here imports a database driver.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from ledger import merkle, note
from ledger.canonical import canonical_bytes, parse_canonical
from ledger.envelope import SEALED_KEY, Envelope, Header, disclosure_digest, parse_header
from ledger.errors import LedgerError, ValidationError, VerificationError
from ledger.keys import verify_signature
from ledger.verify import EventChecker, Report

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
# EventChecker's check names → the bundle checklist's.
_RENAME = {"envelopes parse": "parse", "origin": "parse"}


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
        self.zip.writestr(name, data)

    def entry(self, entry: Entry) -> None:
        if self._entries_done:
            raise AssertionError("entries must be written together")
        if self._entries is None:
            self._entries = self.zip.open("entries.jsonl", "w", force_zip64=True)
        self._entries.write(entry.encode())

    def _end_entries(self) -> None:
        if self._entries is not None:
            self._entries.close()
            self._entries = None
            self._entries_done = True

    def close(self) -> None:
        self._end_entries()
        if not self._entries_done and "entries.jsonl" not in self.zip.namelist():
            self.zip.writestr("entries.jsonl", b"")
        self.zip.close()

    def abort(self) -> None:
        """Give up: close what is open and delete the file."""
        try:
            self._end_entries()
            self.zip.close()
        finally:
            self.path.unlink(missing_ok=True)


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
        except (zipfile.BadZipFile, OSError) as e:
            raise Malformed(f"{path} is not a bundle (not a readable zip file: {e})") from None
        names = set(self.zip.namelist())
        if len(names) != len(self.zip.namelist()) or not names <= set(MEMBERS):
            raise Malformed(f"unexpected members in the bundle: {sorted(names - set(MEMBERS))}")
        missing = {"manifest.json", "manifest.sig", "checkpoint.txt", "entries.jsonl"} - names
        if missing:
            raise Malformed(f"the bundle lacks {sorted(missing)}")
        self.manifest_bytes = self._small("manifest.json")
        self.manifest = _manifest(self.manifest_bytes)
        self.manifest_signature = self._small("manifest.sig")
        self.checkpoint = self._text("checkpoint.txt")

    def _small(self, name: str) -> bytes:
        info = self.zip.getinfo(name)
        if info.file_size > MAX_MEMBER:
            raise Malformed(f"{name} is larger than {MAX_MEMBER // 2**20} MiB")
        with self.zip.open(name) as f:
            data = f.read(MAX_MEMBER + 1)
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
        text = self.optional_text(name)
        if text is None:
            return ()
        try:
            return tuple(merkle.Hash.from_base64(line) for line in text.splitlines())
        except LedgerError:
            raise Malformed(f"{name} must hold base64 hashes, one per line") from None

    def entries(self, name: str = "entries.jsonl") -> Iterator[Entry]:
        if name not in self.zip.namelist():
            return
        with self.zip.open(name) as raw:
            number = 0
            while line := raw.readline(MAX_LINE + 1):
                number += 1
                if len(line) > MAX_LINE:
                    raise Malformed(f"{name} line {number} is too long")
                yield _entry(line.rstrip(b"\n"), f"{name} line {number}")

    def metrics(self) -> Any:
        text = self.optional_text("metrics.json")
        if text is None:
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
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Malformed("manifest.json has a missing or mistyped field") from None
    if not 0 <= manifest.first <= manifest.size:
        raise Malformed("manifest range is not 0 <= first <= size")
    if manifest.encode() != raw:
        raise Malformed("manifest.json is not in canonical form")
    return manifest


def _entry(line: bytes, where: str) -> Entry:
    raw = _json(line, where)
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
    events: list[tuple[Header, bytes | None]] = field(default_factory=list)  # in leaf order


class BundleChecker(EventChecker):
    """EventChecker for entries shown at a level: data may be absent, disclosures are
    plaintext, and streams may begin before the bundle's first leaf."""

    def __init__(self, report: Report, *, origin: str, log_public_key: bytes, first: int) -> None:
        super().__init__(report, origin=origin, log_public_key=log_public_key)
        self.first = first

    def feed_entry(self, where: str, entry: Entry) -> Header | None:
        r = self.report
        try:
            header = parse_header(entry.header)
        except LedgerError as e:
            r.fail("parse", where, e.diagnostics())
            return None
        where = f"{where} stream {header.stream} v{header.version} ({header.type})"
        if header.origin != self.origin:
            r.fail("parse", where, f"origin {header.origin!r} is not this log's")
        envelope = entry.envelope
        signed_ok = self._check_signature(where, header, envelope)
        permitted = signed_ok and self._check_signer(where, header)
        self._check_chain(where, header)
        data_ok = self._check_entry_data(where, header, entry)
        if permitted and data_ok and entry.data is not None:
            self._apply_actor_event(where, header, envelope)
        return header

    def _check_chain(self, where: str, header: Header) -> None:
        if header.stream not in self.streams and self.first > 0 and header.version > 1:
            # The stream began before this bundle: its earlier links were in earlier exports.
            from ledger.verify import _StreamState

            self.streams[header.stream] = _StreamState(header.version, header.digest)
            self.report.ok("stream chains")
            return
        super()._check_chain(where, header)

    def _check_entry_data(self, where: str, header: Header, entry: Entry) -> bool:
        if entry.data is None:
            if entry.disclosures is not None:
                self.report.fail("disclosures", where, "disclosures without the data")
            return True
        if hashlib.sha256(entry.data).hexdigest() != header.data_digest:
            self.report.fail("data digests", where, "data does not match the signed digest")
            return False
        self.report.ok("data digests")
        self._check_plain_disclosures(where, entry)
        return True

    def _check_plain_disclosures(self, where: str, entry: Entry) -> None:
        if not entry.disclosures:
            return
        try:
            data = parse_canonical(entry.data or b"")
            sealed = data.get(SEALED_KEY, {}) if isinstance(data, dict) else {}
        except LedgerError as e:
            self.report.fail("disclosures", where, e.diagnostics())
            return
        for name, plain in sorted(entry.disclosures.items()):
            if not isinstance(sealed, dict) or sealed.get(name) != disclosure_digest(plain):
                self.report.fail("disclosures", where, f"disclosure of {name!r} does not match")
                continue
            parsed = _disclosure(plain)
            if parsed is None or parsed[1] != name:
                self.report.fail("disclosures", where, f"disclosure of {name!r} is malformed")
            else:
                self.report.ok("disclosures")


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
) -> BundleVerification:
    """The numbered checklist of DESIGN §9 over one bundle; metrics are checked by the caller
    (they are a projection). Raises Malformed for an unreadable bundle."""
    report = _Renaming(checks=BUNDLE_CHECKS)
    result = BundleVerification(report)
    reader = BundleReader(path)
    try:
        _verify(reader, result, trusted_key, previous_checkpoint, witness_keys, witness_quorum)
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
) -> None:
    r = result.report
    m = result.manifest = reader.manifest
    r.ok("parse")
    # 1-2. checkpoint: signed by the trusted log key, for this origin and range end
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
    try:
        verify_signature(
            trusted.public_key,
            MANIFEST_SIGNATURE_CONTEXT + reader.manifest_bytes,
            base64.b64decode(reader.manifest_signature.rstrip(b"\n"), validate=True),
        )
        r.ok("log signatures")
    except (LedgerError, ValueError):
        r.fail("log signatures", "manifest.sig", "the manifest is not signed by the log key")
    _check_witnesses(r, opened, trusted, witnesses, quorum)
    # 3. consistency with the recipient's previous checkpoint
    left = reader.hashes("left-border.txt")
    _check_consistency(r, reader, m, cp, previous, trusted, left)
    # 4-10. every entry, in order; the root recomputed from the left border and the leaves
    checker = BundleChecker(r, origin=m.origin, log_public_key=trusted.public_key, first=m.first)
    _check_context(r, reader, checker, cp)
    _check_entries(r, reader, checker, cp, m, left, result)
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
    try:
        left_root = merkle.root_from_border(m.first, left)
    except LedgerError:
        r.fail("inclusion", "left-border.txt", f"not the border of a tree of size {m.first}")
        return
    if previous is None:
        r.notes["consistency"] = "no previous checkpoint given"
        return
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
    if prev.size and left_root != prev.root_hash and prev.size == m.first:
        r.fail("consistency", "left-border.txt", "left border does not match the previous root")
        return
    try:
        if prev.size == cp.size:
            if prev.root_hash != cp.root_hash:
                raise VerificationError("same size, different root")
        elif prev.size > 0:
            merkle.check_consistency(
                reader.hashes("consistency.txt"), prev.size, cp.size, prev.root_hash, cp.root_hash
            )
        r.ok("consistency")
    except LedgerError:
        r.fail(
            "consistency",
            "consistency.txt",
            f"checkpoint {cp.size} is not consistent with the previous one ({prev.size})",
        )


def _check_context(
    r: Report, reader: BundleReader, checker: BundleChecker, cp: note.Checkpoint
) -> None:
    last = -1
    for entry in reader.entries("context.jsonl"):
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
        checker.feed_entry(where, entry)


def _check_entries(
    r: Report,
    reader: BundleReader,
    checker: BundleChecker,
    cp: note.Checkpoint,
    m: Manifest,
    left: tuple[merkle.Hash, ...],
    result: BundleVerification,
) -> None:
    if len(left) != m.first.bit_count():
        r.fail("inclusion", "left-border.txt", f"not the border of a tree of size {m.first}")
        return
    border: list[merkle.Hash] = list(left)
    expected = m.first
    for entry in reader.entries():
        where = f"leaf {entry.leaf}"
        if entry.leaf != expected:
            r.fail("completeness", where, f"expected leaf {expected}: leaves skipped or repeated")
            return
        header = checker.feed_entry(where, entry)
        border, _ = merkle.append_leaves(expected, border, [merkle.leaf_hash(entry.header)])
        expected += 1
        if header is not None:
            result.events.append((header, entry.data))
    if expected != m.size:
        r.fail("completeness", "entries.jsonl", f"{m.size - expected} leaves missing at the end")
        return
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
