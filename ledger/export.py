"""Exporting a bundle from the store (the format and its verifier live in ledger.bundle)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from ledger import merkle, note
from ledger.app import LedgerApp, storage_errors
from ledger.bundle import (
    ACTOR_EVENTS,
    MANIFEST_SIGNATURE_CONTEXT,
    BundleWriter,
    Disclosure,
    Entry,
    Manifest,
    hashes_text,
)
from ledger.checkpoints import StoredCheckpoint, stored_checkpoints
from ledger.envelope import SEALED_KEY, Envelope, Header, decode_envelope, decrypt_disclosure
from ledger.errors import NotFound, ValidationError
from ledger.store.base import LeafRow

CHUNK = 2000  # leaves per key query at level personal (iter_leaves reads 2000 a query)


@dataclass(frozen=True)
class ExportRequest:
    out: Path
    scope: tuple[str, ...]  # service ids; empty = every service
    disclosure: Disclosure
    recipient: str
    previous_checkpoint: str | None
    to_size: int | None
    created_at: str
    sign: Callable[[bytes], bytes]  # the log key's: the manifest is signed


def export_bundle(
    app: LedgerApp,
    origin: str,
    log_public_key: bytes,
    request: ExportRequest,
    *,
    on_entry: Callable[[Entry], None] = lambda _e: None,
    metrics: Callable[[], object | None] = lambda: None,
) -> Manifest:
    """Write a bundle covering (previous checkpoint size, a signed checkpoint's size].

    `on_entry` sees every entry as written (the caller folds them into metrics); `metrics`
    is then asked for the figures to state in the bundle.
    """
    if request.out.exists():
        raise ValidationError(f"{request.out} already exists; choose a new file name")
    target = _target_checkpoint(app, origin, log_public_key, request.to_size)
    first = _previous_size(origin, log_public_key, request.previous_checkpoint, target)
    with storage_errors(app.store_url):
        subjects = _subjects_in_scope(app, request.scope)
        left = app.store.read_hashes(merkle.border_indexes(first))
        proof = (
            merkle.consistency_proof(first, target.size, app.store).hashes
            if 0 < first < target.size
            else ()
        )
    writer = BundleWriter(request.out)
    counts = {"entries": 0, "with_data": 0, "disclosures": 0, "context": 0}
    try:
        writer.text("checkpoint.txt", target.signed)
        writer.text("left-border.txt", hashes_text(left))
        writer.text("consistency.txt", hashes_text(proof))
        counts["context"] = _write_context(app, writer, first, target.size)
        with storage_errors(app.store_url):
            leaves = app.store.iter_leaves(start=first, stop=target.size)
            while rows := list(islice(leaves, CHUNK)):
                envelopes = [_envelope(row) for row in rows]
                if request.disclosure is Disclosure.PERSONAL:
                    _prefetch_keys(app, envelopes)
                for row, envelope in zip(rows, envelopes, strict=True):
                    entry = _entry(app, row.leaf_index, envelope, request, subjects)
                    writer.entry(entry)
                    on_entry(entry)
                    counts["entries"] += 1
                    counts["with_data"] += entry.data is not None
                    counts["disclosures"] += len(entry.disclosures or {})
        figures = metrics()
        digest = None
        if figures is not None:
            # Decimals are outside canonical JSON's space: the file is bound by its digest in
            # the signed manifest, and the verifier recomputes and compares the values.
            body = orjson.dumps(figures, option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha256(body).hexdigest()
            writer.text("metrics.json", body)
        manifest = Manifest(
            origin=origin,
            first=first,
            size=target.size,
            scope=request.scope,
            disclosure=request.disclosure,
            recipient=request.recipient,
            created_at=request.created_at,
            previous_size=None if request.previous_checkpoint is None else first,
            counts=counts,
            metrics_sha256=digest,
        )
        encoded = manifest.encode()
        writer.text("manifest.json", encoded)
        signature = request.sign(MANIFEST_SIGNATURE_CONTEXT + encoded)
        writer.text("manifest.sig", base64.b64encode(signature).decode() + "\n")
        writer.close()
    except BaseException:
        writer.abort()  # never leave half a bundle behind
        raise
    return manifest


def _envelope(row: LeafRow) -> Envelope:
    if row.event is None:
        raise NotFound(f"leaf {row.leaf_index} has no event: run 'calm-ledger verify'")
    return decode_envelope(row.event.state)


def _prefetch_keys(app: LedgerApp, envelopes: list[Envelope]) -> None:
    """One query for the data keys a chunk's disclosures need (one per subject was
    quadratic from a new process, as verify was)."""
    subjects = {envelope.header().subject for envelope in envelopes if envelope.disclosures_bytes}
    app.store.prefetch_keys({s for s in subjects if s})


def _target_checkpoint(
    app: LedgerApp, origin: str, key: bytes, to_size: int | None
) -> StoredCheckpoint:
    checkpoints = stored_checkpoints(app, origin, key)
    if not checkpoints:
        raise NotFound("no checkpoint is stored: run 'calm-ledger checkpoint' first")
    if to_size is None:
        return checkpoints[-1]
    for cp in checkpoints:
        if cp.size == to_size:
            return cp
    sizes = ", ".join(str(c.size) for c in checkpoints)
    raise NotFound(f"no signed checkpoint at size {to_size} (signed sizes: {sizes})")


def _previous_size(origin: str, key: bytes, previous: str | None, target: StoredCheckpoint) -> int:
    if previous is None:
        return 0
    try:
        cp, _ = note.open_checkpoint(previous, [note.NoteVerifierKey(origin, key)])
    except ValidationError as e:
        raise ValidationError(f"the previous checkpoint does not verify: {e}") from None
    if cp.size > target.size:
        raise ValidationError(
            f"the previous checkpoint ({cp.size}) is newer than the one exported ({target.size})"
        )
    return cp.size


def _subjects_in_scope(app: LedgerApp, scope: tuple[str, ...]) -> set[str] | None:
    """People and staff of the services in scope (their events carry no service)."""
    if not scope:
        return None
    subjects: set[str] = set()
    wanted = set(scope)
    for row in app.store.iter_leaves():
        if row.event is None or row.event.topic not in ("person.registered", "staff.registered"):
            continue
        header = decode_envelope(row.event.state).header()
        if header.service in wanted and header.subject:
            subjects.add(header.subject)
    return subjects


def _in_scope(header: Header, request: ExportRequest, subjects: set[str] | None) -> bool:
    if header.type in ACTOR_EVENTS or subjects is None:
        return True
    if header.service is not None:
        return header.service in request.scope
    return header.subject is None or header.subject in subjects


def _entry(
    app: LedgerApp, leaf: int, envelope: Envelope, request: ExportRequest, subjects: set[str] | None
) -> Entry:
    header = envelope.header()
    show_data = header.type in ACTOR_EVENTS or (
        request.disclosure is not Disclosure.NONE and _in_scope(header, request, subjects)
    )
    if not show_data:
        return Entry(leaf, envelope.header_bytes, envelope.signature)
    disclosures = None
    if request.disclosure is Disclosure.PERSONAL and envelope.disclosures_bytes:
        disclosures = _plain_disclosures(app, header, envelope)
    return Entry(leaf, envelope.header_bytes, envelope.signature, envelope.data_bytes, disclosures)


def _plain_disclosures(app: LedgerApp, header: Header, envelope: Envelope) -> dict[str, bytes]:
    """The decrypted disclosures (each checked against its sealed digest); none for an
    erased subject, whose key is gone."""
    key = app.store.data_key(header.subject or "", create=False)
    if key is None:
        return {}
    sealed = envelope.data().get(SEALED_KEY, {})
    encrypted = envelope.disclosures()
    return {
        name: decrypt_disclosure(
            encrypted[name],
            key,
            stream=header.stream,
            version=header.version,
            name=name,
            digest=digest,
        )
        for name, digest in sorted(sealed.items())
        if name in encrypted
    }


def _write_context(app: LedgerApp, writer: BundleWriter, first: int, size: int) -> int:
    """Enrolments, re-keys and revocations before the range, each with an inclusion proof,
    so the verifier knows every signer's keys and roles at the range's first leaf."""
    lines = []
    with storage_errors(app.store_url):
        for row in app.store.iter_leaves(stop=first):
            if row.event is None or row.event.topic not in ACTOR_EVENTS:
                continue
            envelope = decode_envelope(row.event.state)
            proof = merkle.inclusion_proof(row.leaf_index, size, app.store).hashes
            lines.append(
                Entry(
                    row.leaf_index,
                    envelope.header_bytes,
                    envelope.signature,
                    envelope.data_bytes,
                    None,
                    proof,
                ).encode()
            )
    writer.text("context.jsonl", b"".join(lines))
    return len(lines)
