"""Signed checkpoints of the log, their witness cosignatures, and proofs from the store."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import merkle, note
from ledger.app import LedgerApp, storage_errors
from ledger.errors import NotFound, ValidationError, VerificationError
from ledger.keys import SigningKey


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    signed: str  # the signed note, with any cosignature lines
    checkpoint: note.Checkpoint


def log_verifier(origin: str, public_key: bytes) -> note.NoteVerifierKey:
    return note.NoteVerifierKey(origin, public_key)


def stored_checkpoints(app: LedgerApp, origin: str, public_key: bytes) -> list[StoredCheckpoint]:
    """Every stored checkpoint, verified, with its cosignature lines appended."""
    result = []
    with storage_errors(app.store_url):
        for size, signed in app.store.checkpoints():
            checkpoint, _ = note.open_checkpoint(signed, [log_verifier(origin, public_key)])
            lines = "".join(app.store.cosignatures(size))
            result.append(StoredCheckpoint(size, signed + lines, checkpoint))
    return result


def sign_checkpoint(app: LedgerApp, origin: str, log_key: SigningKey) -> StoredCheckpoint:
    """Sign and store a checkpoint of the current tree, refusing one that contradicts any
    stored checkpoint (the tree must still contain each as a prefix)."""
    store = app.store
    with storage_errors(app.store_url):
        head = store.head()
        root = merkle.root_from_border(head.size, head.border)
        existing = stored_checkpoints(app, origin, log_key.public_key)
        for old in existing:
            _check_extends(store, old, head.size, root)
        if existing and existing[-1].size == head.size:
            return existing[-1]
        checkpoint = note.Checkpoint(origin, head.size, root)
        signed = note.sign_note_with(
            note.format_checkpoint(checkpoint), origin, log_key.public_key, log_key.sign
        )
        store.add_checkpoint(head.size, signed)
    return StoredCheckpoint(head.size, signed, checkpoint)


def _check_extends(
    store: merkle.HashReader, old: StoredCheckpoint, size: int, root: merkle.Hash
) -> None:
    """The current tree must contain the stored checkpoint's tree as a prefix."""
    try:
        if old.size > size:
            raise VerificationError("the log is smaller than a stored checkpoint")
        if old.size == size:
            if root != old.checkpoint.root_hash:
                raise VerificationError("same size, different root")
        elif old.size > 0:
            proof = merkle.consistency_proof(old.size, size, store)
            merkle.check_consistency(proof.hashes, old.size, size, old.checkpoint.root_hash, root)
    except VerificationError:
        raise VerificationError(
            f"the log no longer extends the checkpoint at size {old.size}; not signing",
            step="checkpoints",
        ) from None


def add_cosignatures(
    app: LedgerApp,
    origin: str,
    log_public_key: bytes,
    text: str,
    witness: note.NoteVerifierKey,
    size: int | None = None,
) -> tuple[int, int]:
    """Verify the witness's cosignature lines in `text` against a stored checkpoint (the
    latest unless `size`) and store them. Returns (size, lines added)."""
    checkpoints = stored_checkpoints(app, origin, log_public_key)
    if not checkpoints:
        raise NotFound("no checkpoint is stored yet: run 'calm-ledger checkpoint' first")
    target = checkpoints[-1] if size is None else _at(checkpoints, size)
    body = note.format_checkpoint(target.checkpoint)
    lines = [line + "\n" for line in text.splitlines() if line.startswith(note.SIGNATURE_PREFIX)]
    mine = [line for line in lines if line.split(" ")[1:2] == [witness.name]]
    if not mine:
        raise ValidationError(f"no cosignature line from witness {witness.name!r} in the file")
    for line in mine:  # every line verifies, or none is stored
        note.verify_cosignature(body, line, witness)
    added = 0
    with storage_errors(app.store_url):
        for line in mine:
            added += app.store.add_cosignature(target.size, line)
    return target.size, added


def _at(checkpoints: list[StoredCheckpoint], size: int) -> StoredCheckpoint:
    for cp in checkpoints:
        if cp.size == size:
            return cp
    raise NotFound(f"no checkpoint is stored at size {size}")


def inclusion_proof_file(
    app: LedgerApp, origin: str, log_public_key: bytes, leaf_index: int, size: int | None
) -> str:
    """A C2SP tlog-proof for one leaf against a stored (signed) checkpoint."""
    checkpoints = stored_checkpoints(app, origin, log_public_key)
    if not checkpoints:
        raise NotFound("no checkpoint is stored yet: run 'calm-ledger checkpoint' first")
    target = checkpoints[-1] if size is None else _at(checkpoints, size)
    if not 0 <= leaf_index < target.size:
        raise ValidationError(
            f"leaf {leaf_index} is not in the checkpoint of size {target.size}"
            " (sign a newer checkpoint first)"
        )
    with storage_errors(app.store_url):
        proof = merkle.inclusion_proof(leaf_index, target.size, app.store)
    return note.format_tlog_proof(leaf_index, proof.hashes, target.signed)


def consistency_hashes(app: LedgerApp, size1: int, size2: int) -> list[merkle.Hash]:
    with storage_errors(app.store_url):
        size = app.store.head().size
        if not 0 < size1 <= size2 <= size:
            raise ValidationError(f"need 0 < FROM <= TO <= {size} (the log's size)")
        return list(merkle.consistency_proof(size1, size2, app.store).hashes)
