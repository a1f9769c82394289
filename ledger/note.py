"""C2SP signed notes, tlog checkpoints, Ed25519 cosignatures and tlog-proof files. Pure, no I/O.

A port of Go's golang.org/x/mod/sumdb/note rules (c2sp.org/signed-note), plus
c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature (cosignature/v1) and c2sp.org/tlog-proof.
Every parser is strict: after parsing it re-formats and compares, so each value has exactly one
accepted text (no alternative base64, leading zeros or stray whitespace to smuggle changes in).

Errors: `MalformedNote` for text that is not well formed, `SignatureInvalid` when a signature
from a known key fails or no known key signed, `ValidationError` for bad arguments.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Self, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import MalformedNote, SignatureInvalid, ValidationError
from ledger.merkle import Hash

SIGNATURE_PREFIX = "\u2014 "  # em dash and space start every signature line
COSIGNATURE_HEADER = "cosignature/v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_SIGNATURES = 100  # Go's limit; C2SP requires accepting at least 16
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_MAX_INT64 = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}", re.ASCII)
_T = TypeVar("_T")


class SignatureType(IntEnum):
    """Signed-note signature type bytes (c2sp.org/signed-note, "Signature types")."""

    ED25519 = 0x01
    COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignature


class KeyId(bytes):
    """The 4-byte key ID that prefixes every signature; `str()` gives 8 lowercase hex digits."""

    __slots__ = ()

    def __new__(cls, value: bytes) -> Self:
        if not isinstance(value, bytes) or len(value) != 4:
            raise ValidationError("a key id is 4 bytes")
        return super().__new__(cls, value)

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"KeyId.fromhex({self.hex()!r})"


def key_id(name: str, key_type: SignatureType, public_key: bytes) -> KeyId:
    """SHA-256(name || 0x0A || type || public key)[:4]; the type byte separates key uses."""
    preimage = name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key
    return KeyId(hashlib.sha256(preimage).digest()[:4])


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteVerifierKey:
    """A trusted public key: note signer (type 0x01) or cosigning witness (type 0x04)."""

    name: str
    public_key: bytes
    key_type: SignatureType = SignatureType.ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _ED25519_KEY_SIZE:
            raise ValidationError("an Ed25519 public key is 32 bytes")
        if self.key_type not in set(SignatureType):
            raise MalformedNote(f"unsupported signature type {self.key_type!r}")
        object.__setattr__(self, "key_type", SignatureType(self.key_type))

    @property
    def key_id(self) -> KeyId:
        return key_id(self.name, self.key_type, self.public_key)

    def __str__(self) -> str:
        return format_verifier_key(self.name, self.public_key, self.key_type)


@dataclass(frozen=True)
class NoteSignerKey:
    """A private Ed25519 note key. The seed is left out of repr() so it never reaches a log."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_seed(self.seed)

    @property
    def verifier(self) -> NoteVerifierKey:
        return NoteVerifierKey(self.name, _public_key(self.seed))

    @property
    def key_id(self) -> KeyId:
        return self.verifier.key_id


def format_verifier_key(
    name: str, public_key: bytes, key_type: SignatureType = SignatureType.ED25519
) -> str:
    """`name+hexid+base64(type || pubkey)`, the vkey form Go's note.NewVerifier reads."""
    key = NoteVerifierKey(name, public_key, key_type)
    return f"{name}+{key.key_id}+{_b64(bytes([key.key_type]) + public_key)}"


def parse_verifier_key(text: str) -> NoteVerifierKey:
    """Strict inverse of `format_verifier_key`; accepts types 0x01 and 0x04."""
    _require_text(text, "a verifier key")
    name, _, rest = text.partition("+")
    hex_id, _, key64 = rest.partition("+")
    raw = _unb64(key64)
    if not _HEX_KEY_ID.fullmatch(hex_id) or len(raw) != 1 + _ED25519_KEY_SIZE:
        raise MalformedNote("malformed verifier key")
    key = _as_malformed(lambda: NoteVerifierKey(name, raw[1:], raw[0]))  # type: ignore[arg-type]
    if str(key.key_id) != hex_id or str(key) != text:
        raise MalformedNote("verifier key id does not match its key")
    return key


def format_signer_key(name: str, seed: bytes) -> str:
    """`PRIVATE+KEY+name+hexid+base64(0x01 || seed)`, as Go's note.GenerateKey writes."""
    key = NoteSignerKey(name, seed)
    return f"PRIVATE+KEY+{name}+{key.key_id}+{_b64(bytes([SignatureType.ED25519]) + seed)}"


def parse_signer_key(text: str) -> NoteSignerKey:
    """Strict inverse of `format_signer_key`; the key id must match the derived public key."""
    _require_text(text, "a signer key")
    prefix, _, rest = text.partition("+")
    tag, _, rest = rest.partition("+")
    name, _, rest = rest.partition("+")
    hex_id, _, key64 = rest.partition("+")  # split at most 4 times: base64 may contain '+'
    raw = _unb64(key64)
    if (prefix, tag) != ("PRIVATE", "KEY") or not _HEX_KEY_ID.fullmatch(hex_id):
        raise MalformedNote("malformed signer key")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != SignatureType.ED25519:
        raise MalformedNote("unsupported signer key")
    key = _as_malformed(lambda: NoteSignerKey(name, raw[1:]))
    if str(key.key_id) != hex_id or format_signer_key(name, key.seed) != text:
        raise MalformedNote("signer key id does not match its key")
    return key


# --- signed notes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key it claims (name, key id) and the bytes after the key id."""

    name: str
    key_id: KeyId
    signature: bytes

    @property
    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures verified by known keys, and the others."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...] = ()


def sign_note(text: str, name: str, seed: bytes) -> str:
    """Sign `text` (which must end in a newline) with an Ed25519 note key."""
    _check_seed(seed)
    return sign_note_with(text, name, _public_key(seed), _private_key(seed).sign)


def sign_note_with(text: str, name: str, public_key: bytes, sign: Callable[[bytes], bytes]) -> str:
    """Like `sign_note`, for keys that never hand out their seed (a keystore's `sign`).

    The signature is checked against `public_key` before it is returned: a mismatched pair
    would otherwise produce a note that no verifier accepts.
    """
    _check_text(text)
    key = NoteVerifierKey(name, public_key)
    message = text.encode("utf-8")
    signature = sign(message)
    if not _ed25519_verifies(public_key, message, signature):
        raise ValidationError(f"the signer for {name} does not match its public key")
    return text + "\n" + NoteSignature(name, key.key_id, signature).line


def open_note(message: str | bytes, verifiers: Sequence[NoteVerifierKey]) -> Note:
    """Parse a signed note and verify it, following Go's note.Open.

    Signatures from unknown keys (name and key id) are kept as unverified, never failed. A known
    key's bad signature rejects the whole note, and so does having no known signature at all.
    """
    text, signatures = _split_note(message)
    known = _index_verifiers(verifiers)
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            if sig not in unverified:  # drop repeated identical unknown lines
                unverified.append(sig)
        elif all((v.name, v.key_id) != (sig.name, sig.key_id) for v in verified):
            if not _verifies(key, text, sig.signature):
                raise SignatureInvalid(f"invalid signature for key {sig.name}+{sig.key_id}")
            verified.append(sig)
    if not verified:
        raise SignatureInvalid("note has no verifiable signatures")
    return Note(text, tuple(verified), tuple(unverified))


def _split_note(message: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and well-formed signature lines; verifies nothing."""
    message = _check_note_characters(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNote("malformed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNote("malformed note: signatures must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote("malformed note: too many signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _check_note_characters(message: str | bytes) -> str:
    """Valid UTF-8 without ASCII control characters other than newline."""
    if not isinstance(message, str | bytes):
        raise MalformedNote(f"malformed note: {type(message).__name__}, not text")
    try:
        if isinstance(message, bytes):
            message = message.decode("utf-8")
        message.encode("utf-8")  # rejects lone surrogates in a str
    except UnicodeError as exc:
        raise MalformedNote("malformed note: not UTF-8") from exc
    if any(ch < " " and ch != "\n" for ch in message):
        raise MalformedNote("malformed note: control character")
    return message


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNote("malformed note: bad signature line")
    name, _, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    raw = _unb64(sig64)
    if not _is_valid_name(name) or len(raw) < 5:
        raise MalformedNote("malformed note: bad signature line")
    return NoteSignature(name, KeyId(raw[:4]), raw[4:])


def _index_verifiers(
    verifiers: Iterable[NoteVerifierKey],
) -> dict[tuple[str, KeyId], NoteVerifierKey]:
    known: dict[tuple[str, KeyId], NoteVerifierKey] = {}
    for key in verifiers:
        if (key.name, key.key_id) in known:
            raise ValidationError(f"ambiguous key {key.name}+{key.key_id}")
        known[(key.name, key.key_id)] = key
    return known


def _verifies(key: NoteVerifierKey, text: str, signature: bytes) -> bool:
    """Check one signature by its key's type; a cosignature carries its own timestamp."""
    if key.key_type is SignatureType.ED25519:
        return _ed25519_verifies(key.public_key, text.encode("utf-8"), signature)
    if len(signature) != 8 + _ED25519_SIG_SIZE:
        return False
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > _MAX_INT64:
        return False
    message = cosignature_message(text, timestamp)
    return _ed25519_verifies(key.public_key, message, signature[8:])


# --- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note body: origin, tree size, root hash, optional extension lines."""

    origin: str
    size: int
    root_hash: Hash
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line or not _has_no_controls(line):
                raise MalformedNote("checkpoint lines must be non-empty single lines")
            _check_note_characters(line)
        if isinstance(self.size, bool) or not 0 <= self.size <= _MAX_INT64:
            raise MalformedNote("checkpoint size out of range")
        object.__setattr__(self, "root_hash", _hash(self.root_hash))
        object.__setattr__(self, "extensions", tuple(self.extensions))


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text: origin, decimal size, base64 root hash, extension lines, each + newline."""
    lines = [checkpoint.origin, str(checkpoint.size), str(checkpoint.root_hash)]
    return "".join(line + "\n" for line in (*lines, *checkpoint.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Strict inverse of `format_checkpoint` (takes the note text, not the signed note)."""
    _require_text(text, "a checkpoint")
    if not text.endswith("\n"):
        raise MalformedNote("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNote("checkpoint needs origin, size and root hash lines")
    origin, size, root, *extensions = lines
    root_hash = _hash(_unb64(root))
    checkpoint = Checkpoint(origin, _parse_decimal(size), root_hash, tuple(extensions))
    if format_checkpoint(checkpoint) != text:
        raise MalformedNote("checkpoint is not in canonical form")
    return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, name: str, seed: bytes) -> str:
    """The signed checkpoint note; the log's key name should equal the origin."""
    return sign_note(format_checkpoint(checkpoint), name, seed)


def open_checkpoint(
    message: str | bytes, verifiers: Sequence[NoteVerifierKey]
) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint note and parse its text."""
    note = open_note(message, verifiers)
    return parse_checkpoint(note.text), note


# --- cosignatures (c2sp.org/tlog-cosignature, cosignature/v1) -----------------------------------


@dataclass(frozen=True)
class Cosignature:
    """A cosignature/v1 line: witness name, key id, timestamp, Ed25519 signature."""

    name: str
    key_id: KeyId
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.timestamp, bool) or not 0 <= self.timestamp <= _MAX_INT64:
            raise MalformedNote("cosignature timestamp out of range")
        if len(self.signature) != _ED25519_SIG_SIZE:
            raise MalformedNote("a cosignature carries a 64-byte Ed25519 signature")


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes a witness signs: header line, time line, then the checkpoint body."""
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def format_cosignature(cosignature: Cosignature) -> str:
    """`— name base64(key id || 8-byte big-endian timestamp || signature)` and a newline."""
    stamp = cosignature.timestamp.to_bytes(8, "big")
    payload = cosignature.key_id + stamp + cosignature.signature
    return f"{SIGNATURE_PREFIX}{cosignature.name} {_b64(payload)}\n"


def parse_cosignature(line: str) -> Cosignature:
    """Strict inverse of `format_cosignature`; the line must end with its newline."""
    _require_text(line, "a cosignature")
    if not line.endswith("\n") or "\n" in line[:-1]:
        raise MalformedNote("a cosignature is one line ending in a newline")
    sig = _parse_signature_line(_check_note_characters(line[:-1]))
    if len(sig.signature) != 8 + _ED25519_SIG_SIZE:
        raise MalformedNote("not a cosignature/v1 signature (wrong length)")
    stamp = int.from_bytes(sig.signature[:8], "big")
    cosignature = Cosignature(sig.name, sig.key_id, stamp, sig.signature[8:])
    if format_cosignature(cosignature) != line:
        raise MalformedNote("cosignature is not in canonical form")
    return cosignature


def cosign(checkpoint_text: str, witness_name: str, seed: bytes, timestamp: int) -> str:
    """A witness's cosignature line for a checkpoint body (append it to the signed note)."""
    parse_checkpoint(checkpoint_text)  # witnesses cosign checkpoints, nothing else
    _check_seed(seed)
    witness = NoteVerifierKey(witness_name, _public_key(seed), SignatureType.COSIGNATURE_V1)
    if isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_INT64:
        raise ValidationError("cosignature timestamp out of range")
    signature = _private_key(seed).sign(cosignature_message(checkpoint_text, timestamp))
    return format_cosignature(Cosignature(witness_name, witness.key_id, timestamp, signature))


def cosign_with(
    checkpoint_text: str,
    witness_name: str,
    public_key: bytes,
    sign: Callable[[bytes], bytes],
    timestamp: int,
) -> str:
    """Like `cosign`, for keys that never hand out their seed (a keystore's `sign`)."""
    parse_checkpoint(checkpoint_text)
    witness = NoteVerifierKey(witness_name, public_key, SignatureType.COSIGNATURE_V1)
    if isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_INT64:
        raise ValidationError("cosignature timestamp out of range")
    signature = sign(cosignature_message(checkpoint_text, timestamp))
    line = format_cosignature(Cosignature(witness_name, witness.key_id, timestamp, signature))
    verify_cosignature(checkpoint_text, line, witness)  # a mismatched key pair fails here
    return line


def verify_cosignature(checkpoint_text: str, line: str, witness_key: NoteVerifierKey) -> int:
    """Verify a witness's cosignature line over a checkpoint body; return its timestamp."""
    if witness_key.key_type is not SignatureType.COSIGNATURE_V1:
        raise ValidationError("a witness key must be a cosignature/v1 (type 0x04) key")
    parse_checkpoint(checkpoint_text)
    cosignature = parse_cosignature(line)
    if (cosignature.name, cosignature.key_id) != (witness_key.name, witness_key.key_id):
        raise SignatureInvalid(f"cosignature is not from witness {witness_key.name}")
    message = cosignature_message(checkpoint_text, cosignature.timestamp)
    if not _ed25519_verifies(witness_key.public_key, message, cosignature.signature):
        raise SignatureInvalid(f"invalid cosignature from witness {witness_key.name}")
    return cosignature.timestamp


# --- tlog-proof (c2sp.org/tlog-proof) -----------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    """An offline inclusion proof: leaf index, RFC 9162 path, signed checkpoint, opaque extra."""

    index: int
    hashes: tuple[Hash, ...]
    checkpoint: str  # the signed checkpoint note, verbatim (signatures not verified here)
    extra: bytes | None = None


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], signed_checkpoint: str, extra: bytes | None = None
) -> str:
    """Header, optional `extra` line, `index N`, one base64 hash per line, blank, checkpoint."""
    if isinstance(index, bool) or not 0 <= index <= _MAX_INT64:
        raise ValidationError("proof index out of range")
    _check_signed_checkpoint(signed_checkpoint)
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {_b64(extra)}")
    lines.append(f"index {index}")
    lines.extend(str(_hash(h)) for h in hashes)
    return "\n".join(lines) + "\n\n" + signed_checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Strict inverse of `format_tlog_proof`; the checkpoint must be a well-formed signed note."""
    _require_text(text, "a tlog-proof")
    head, blank, signed_checkpoint = text.partition("\n\n")
    if not blank:
        raise MalformedNote("tlog-proof has no blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise MalformedNote("not a c2sp.org/tlog-proof@v1 file")
    extra = None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = _unb64(lines.pop(1).removeprefix("extra "))
    if len(lines) < 2 or not lines[1].startswith("index "):
        raise MalformedNote("tlog-proof has no index line")
    index = _parse_decimal(lines[1].removeprefix("index "))
    hashes = tuple(_hash(_unb64(line)) for line in lines[2:])
    proof = TlogProof(index, hashes, signed_checkpoint, extra)
    if format_tlog_proof(index, hashes, signed_checkpoint, extra) != text:
        raise MalformedNote("tlog-proof is not in canonical form")
    return proof


def _check_signed_checkpoint(signed_checkpoint: str) -> None:
    text, _ = _split_note(signed_checkpoint)
    parse_checkpoint(text)


# --- small helpers ------------------------------------------------------------------------------


def _require_text(value: object, what: str) -> None:
    """Parsers also get values from JSON documents: anything but text is malformed."""
    if not isinstance(value, str):
        raise MalformedNote(f"{what} must be text, not {type(value).__name__}")


def _is_valid_name(name: str) -> bool:
    """Non-empty, no Unicode spaces (Go's unicode.IsSpace), no '+', encodable as UTF-8."""
    if not name or "+" in name or any(_is_space(ch) for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _is_space(ch: str) -> bool:
    # Go's unicode.IsSpace: in Latin-1 exactly these; above it, the White_Space property.
    return ch in "\t\n\v\f\r \x85\xa0" if ord(ch) < 0x100 else ch.isspace()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _is_valid_name(name):
        raise MalformedNote("a key name must be non-empty, without spaces or '+'")


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.endswith("\n"):
        raise MalformedNote("note text must end with a newline")
    _check_note_characters(text)


def _has_no_controls(line: str) -> bool:
    """No character below U+0020 (so no newline either)."""
    return all(ch >= " " for ch in line)


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes) or len(seed) != _ED25519_KEY_SIZE:
        raise ValidationError("an Ed25519 seed is 32 bytes")


def _parse_decimal(text: str) -> int:
    """ASCII decimal without leading zeros, at most 2**63 - 1 (int() would accept more)."""
    if not _DECIMAL.fullmatch(text) or len(text) > 19 or int(text) > _MAX_INT64:
        raise MalformedNote(f"not a canonical decimal: {text[:40]!r}")
    return int(text)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict standard base64: padded, canonical (so one value has one encoding)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as exc:
        raise MalformedNote("malformed base64") from exc
    if _b64(raw) != text:
        raise MalformedNote("malformed base64")
    return raw


def _as_malformed(build: Callable[[], _T]) -> _T:
    try:
        return build()
    except ValidationError as exc:
        raise MalformedNote(str(exc)) from exc


def _hash(raw: bytes) -> Hash:
    return _as_malformed(lambda: Hash(raw))


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_key(seed: bytes) -> bytes:
    return _private_key(seed).public_key().public_bytes_raw()


def _ed25519_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != _ED25519_SIG_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
