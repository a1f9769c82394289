"""The signed envelope: one per event. Byte layout and rules are specified in docs/formats.md.

    envelope   = "CLE1" ‖ u32 len ‖ header ‖ signature(64) ‖ u32 len ‖ data ‖ u32 len ‖ disclosures
    header     = canonical JSON object (signed; its digest chains the stream and is the leaf)
    data       = canonical JSON object of the event's fields, personal fields sealed
    disclosures= canonical JSON object {field: base64(nonce ‖ AES-256-GCM ciphertext)}

Only the header is signed, and it carries SHA-256 of the data bytes, so the envelope can be
shown at three levels (header; + data; + disclosures) and the signature verifies at each.
Verification slices the stored bytes; it never re-serialises what it checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.canonical import canonical_bytes
from ledger.errors import ValidationError, VerificationError

MAGIC = b"CLE1"
FORMAT_VERSION = 1
EVENT_SIGNATURE_CONTEXT = b"calm-ledger/event/v1\n"
SIGNATURE_SIZE = 64
SEALED_KEY = "_sealed"
HEADER_FIELDS = frozenset(
    {
        "v",
        "origin",
        "stream",
        "version",
        "type",
        "schema",
        "recorded_at",
        "actor",
        "key_id",
        "prev",
        "scope",
        "data_digest",
    }
)
_U32 = struct.Struct(">I")

RandomBytes = Callable[[int], bytes]


class MalformedEnvelope(VerificationError):
    """Stored bytes that are not an envelope at all."""


@dataclass(frozen=True)
class Header:
    """The signed header, parsed. `raw` is the exact signed bytes."""

    raw: bytes
    origin: str
    stream: str
    version: int
    type: str
    schema: int
    recorded_at: str
    actor: str
    key_id: str
    prev: str | None
    service: str | None
    subject: str | None
    data_digest: str

    @property
    def digest(self) -> bytes:
        """SHA-256 of the header bytes: what the next envelope of the stream names as `prev`."""
        return hashlib.sha256(self.raw).digest()


@dataclass(frozen=True)
class Envelope:
    header_bytes: bytes
    signature: bytes
    data_bytes: bytes
    disclosures_bytes: bytes

    def encode(self) -> bytes:
        return encode_envelope(
            self.header_bytes, self.signature, self.data_bytes, self.disclosures_bytes
        )

    def header(self) -> Header:
        return parse_header(self.header_bytes)

    def data(self) -> dict[str, Any]:
        return _json_object(self.data_bytes, "data")

    def disclosures(self) -> dict[str, str]:
        if not self.disclosures_bytes:
            return {}
        parsed = _json_object(self.disclosures_bytes, "disclosures")
        if not all(isinstance(v, str) for v in parsed.values()):
            raise MalformedEnvelope("disclosures must map field names to base64 strings")
        return parsed


def encode_envelope(header: bytes, signature: bytes, data: bytes, disclosures: bytes) -> bytes:
    """The stored bytes of an envelope's four parts (the append path builds no `Envelope`)."""
    return b"".join(
        (
            MAGIC,
            _U32.pack(len(header)),
            header,
            signature,
            _U32.pack(len(data)),
            data,
            _U32.pack(len(disclosures)),
            disclosures,
        )
    )


def signing_input(header_bytes: bytes) -> bytes:
    """What the actor's Ed25519 key signs: a domain-separation prefix, then the header."""
    return EVENT_SIGNATURE_CONTEXT + header_bytes


def decode_envelope(raw: bytes) -> Envelope:
    """Split stored bytes into their four parts; strict about lengths and trailing bytes."""
    if raw[:4] != MAGIC:
        raise MalformedEnvelope("not a calm-ledger envelope (bad magic)")
    header, pos = _take(raw, 4, "header")
    if len(raw) < pos + SIGNATURE_SIZE:
        raise MalformedEnvelope("envelope truncated in the signature")
    signature = raw[pos : pos + SIGNATURE_SIZE]
    data, pos = _take(raw, pos + SIGNATURE_SIZE, "data")
    disclosures, pos = _take(raw, pos, "disclosures")
    if pos != len(raw):
        raise MalformedEnvelope("trailing bytes after the envelope")
    return Envelope(header, signature, data, disclosures)


def stored_header_bytes(raw: bytes) -> bytes:
    """The header bytes of stored envelope bytes (the leaf input), without splitting the rest:
    for envelopes this process has just built, on the append path."""
    if raw[:4] != MAGIC:
        raise MalformedEnvelope("not a calm-ledger envelope (bad magic)")
    return _take(raw, 4, "header")[0]


def _take(raw: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if len(raw) < pos + 4:
        raise MalformedEnvelope(f"envelope truncated before the {what} length")
    (length,) = _U32.unpack_from(raw, pos)
    end = pos + 4 + length
    if len(raw) < end:
        raise MalformedEnvelope(f"envelope truncated in the {what}")
    return raw[pos + 4 : end], end


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedEnvelope(f"{what} is not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise MalformedEnvelope(f"{what} is not a JSON object")
    return parsed


def trusted_header(raw: bytes) -> Header:
    """A header from bytes this process has already verified (or read from its own store for
    a query): fields taken as they are, without `parse_header`'s type and canonical-form
    checks. Raises `MalformedEnvelope` (with `parse_header`'s reason) if they are missing."""
    try:
        h = orjson.loads(raw)
        scope = h["scope"]
        return Header(
            raw,
            h["origin"],
            h["stream"],
            h["version"],
            h["type"],
            h["schema"],
            h["recorded_at"],
            h["actor"],
            h["key_id"],
            h["prev"],
            scope["service"],
            scope["subject"],
            h["data_digest"],
        )
    except (KeyError, TypeError, orjson.JSONDecodeError):
        parse_header(raw)  # raises the precise MalformedEnvelope
        raise


def parse_header(raw: bytes) -> Header:
    h = _json_object(raw, "header")
    if set(h) != HEADER_FIELDS:
        raise MalformedEnvelope(f"header fields differ from the format: {sorted(h)}")
    if type(h["v"]) is not int or h["v"] != FORMAT_VERSION:  # `true == 1` in Python
        raise MalformedEnvelope(f"unsupported envelope format version {h['v']!r}")
    scope = h["scope"]
    if not isinstance(scope, dict) or set(scope) != {"service", "subject"}:
        raise MalformedEnvelope("header scope must be {service, subject}")
    try:
        header = Header(
            raw=raw,
            origin=_typed(h["origin"], str),
            stream=_typed(h["stream"], str),
            version=_typed(h["version"], int),
            type=_typed(h["type"], str),
            schema=_typed(h["schema"], int),
            recorded_at=_typed(h["recorded_at"], str),
            actor=_typed(h["actor"], str),
            key_id=_typed(h["key_id"], str),
            prev=_optional(h["prev"]),
            service=_optional(scope["service"]),
            subject=_optional(scope["subject"]),
            data_digest=_typed(h["data_digest"], str),
        )
    except TypeError as e:
        raise MalformedEnvelope(f"header field has the wrong type: {e}") from None
    if canonical_or_none(h) != raw:
        raise MalformedEnvelope("header bytes are not canonical JSON")
    return header


def canonical_or_none(value: object) -> bytes | None:
    try:
        return canonical_bytes(value)
    except ValidationError:
        return None


def _typed(value: object, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value


def _optional(value: object) -> str | None:
    if value is None:
        return None
    return _typed(value, str)  # type: ignore[no-any-return]


def build_header(
    *,
    origin: str,
    stream: str,
    version: int,
    type_name: str,
    schema: int,
    recorded_at: str,
    actor: str,
    key_id: str,
    prev: bytes | None,
    service: str | None,
    subject: str | None,
    data_bytes: bytes,
) -> bytes:
    return canonical_bytes(
        {
            "v": FORMAT_VERSION,
            "origin": origin,
            "stream": stream,
            "version": version,
            "type": type_name,
            "schema": schema,
            "recorded_at": recorded_at,
            "actor": actor,
            "key_id": key_id,
            "prev": prev.hex() if prev is not None else None,
            "scope": {"service": service, "subject": subject},
            "data_digest": hashlib.sha256(data_bytes).hexdigest(),
        }
    )


# --- sealing personal fields -------------------------------------------------------------


def disclosure_bytes(salt: bytes, name: str, value: object) -> bytes:
    """The disclosure of one sealed field: canonical JSON [base64url(salt), name, value]."""
    return canonical_bytes([_b64url(salt), name, value])


def disclosure_digest(disclosure: bytes) -> str:
    return hashlib.sha256(disclosure).hexdigest()


def disclosure_aad(stream: str, version: int, name: str) -> bytes:
    """Binds a ciphertext to its place, so a disclosure cannot be moved to another event."""
    return f"calm-ledger/disclosure/v1\n{stream}\n{version}\n{name}".encode()


def seal(
    fields: Mapping[str, object],
    personal: frozenset[str],
    data_key: bytes | None,
    *,
    stream: str,
    version: int,
    random_bytes: RandomBytes = os.urandom,
) -> tuple[dict[str, object], dict[str, str]]:
    """Replace each non-null personal field by its salted digest; encrypt its disclosure.

    Returns the data object and the encrypted disclosures. Each field takes its salt, then
    its nonce, from `random_bytes`, fields in name order (the worked example relies on it).
    """
    data = {k: v for k, v in fields.items() if k not in personal or v is None}
    to_seal = sorted(k for k in personal if fields.get(k) is not None)
    if not to_seal:
        return data, {}
    if data_key is None:
        raise AssertionError("personal fields to seal but no data key")
    encrypt = AESGCM(data_key).encrypt
    # From the OS, one draw for every salt and nonce: a getrandom call costs more than the
    # AES-GCM of a field. An injected source (the worked example) is asked piece by piece.
    pool = os.urandom(28 * len(to_seal)) if random_bytes is os.urandom else None
    sealed: dict[str, str] = {}
    disclosures: dict[str, str] = {}
    for i, name in enumerate(to_seal):
        if pool is None:
            salt, nonce = random_bytes(16), random_bytes(12)
        else:
            salt, nonce = pool[28 * i : 28 * i + 16], pool[28 * i + 16 : 28 * i + 28]
        disclosure = disclosure_bytes(salt, name, fields[name])
        sealed[name] = disclosure_digest(disclosure)
        ciphertext = encrypt(nonce, disclosure, disclosure_aad(stream, version, name))
        disclosures[name] = binascii.b2a_base64(nonce + ciphertext, newline=False).decode()
    data[SEALED_KEY] = sealed
    return data, disclosures


def open_disclosure(
    encrypted: str, data_key: bytes, *, stream: str, version: int, name: str, digest: str
) -> object:
    """Decrypt one disclosure and check it against the sealed digest; return the value."""
    plain = decrypt_disclosure(
        encrypted, data_key, stream=stream, version=version, name=name, digest=digest
    )
    parsed = orjson.loads(plain)
    if not (isinstance(parsed, list) and len(parsed) == 3 and parsed[1] == name):
        raise VerificationError(f"disclosure of {name!r} is malformed", step="disclosures")
    return parsed[2]


def decrypt_disclosure(
    encrypted: str, data_key: bytes, *, stream: str, version: int, name: str, digest: str
) -> bytes:
    """The plaintext disclosure, after checking it hashes to the sealed digest."""
    try:
        blob = base64.b64decode(encrypted, validate=True)
        plain = AESGCM(data_key).decrypt(
            blob[:12], blob[12:], disclosure_aad(stream, version, name)
        )
    except (ValueError, InvalidTag):
        raise VerificationError(
            f"disclosure of {name!r} does not decrypt", step="disclosures"
        ) from None
    if disclosure_digest(plain) != digest:
        raise VerificationError(
            f"disclosure of {name!r} does not match its sealed digest", step="disclosures"
        )
    return plain


def _b64url(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_URLSAFE = bytes.maketrans(b"+/", b"-_")
