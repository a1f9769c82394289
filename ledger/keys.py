"""Ed25519 actor keys, signature checks and the passphrase-encrypted keystore.

Every event is signed by an actor's Ed25519 key, so this module is on the hot path of
appends (sign) and of verification (verify, millions of times by few actors).

Backend: PyNaCl (libsodium) is used for signing and verifying because it measured ~1.3x
faster to sign and ~1.6x faster to verify than `cryptography` (OpenSSL) here (see
`python -m bench.bench_ed25519`). If PyNaCl cannot be imported, `cryptography` is used.
Both produce identical signatures (Ed25519 is deterministic). libsodium is the stricter
verifier (it also refuses small-order public keys), so under the fallback a crafted
public key could verify a signature libsodium refuses: enrol only keys that verify here.

Keystore file format, version 1 (one file per actor, mode 0600, UTF-8 JSON written in
RFC 8785 canonical form followed by a newline; readers accept any JSON layout but no
unknown or missing member)::

    {
      "format": "calm-ledger-keystore/v1",
      "name": NAME,                 actor name: non-empty, printable, at most 128 characters
      "public_key": B64(32 bytes),  Ed25519 public key
      "key_id": HEX(16 bytes),      actor_key_id(public_key)
      "kdf": {"name": "argon2id", "salt": B64(16 bytes),
              "memory_kib": M, "iterations": T, "lanes": P},
      "cipher": {"name": "aes-256-gcm", "nonce": B64(12 bytes)},
      "ciphertext": B64(48 bytes)   AES-256-GCM(seed) followed by its 16-byte tag
    }

B64 is standard base64 with padding; HEX is lowercase. The 32-byte AES key is
Argon2id(password = UTF-8 of the NFC-normalised passphrase, salt, t = T, m = M KiB, p = P,
no secret, no associated data). The plaintext is the 32-byte Ed25519 seed; the AES-GCM
associated data is canonical_bytes(["calm-ledger-keystore/v1", NAME, B64(public key)]),
so a file whose name or public key was swapped does not decrypt. Defaults M = 65536,
T = 3, P = 1 (RFC 9106's second recommended setting, with one lane) take ~125-135 ms
here, which is interactive yet costly to guess at; readers refuse M > 1 GiB, T > 16 or
P > 16 so a hostile file cannot exhaust memory or time.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import os
import secrets
import stat
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn, TypeVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ledger.canonical import canonical_bytes
from ledger.errors import KeyLocked, SignatureInvalid, ValidationError

__all__ = [
    "DEFAULT_ARGON2_COST",
    "ED25519_BACKEND",
    "KEYSTORE_FORMAT",
    "Argon2Cost",
    "SigningKey",
    "actor_key_id",
    "failing_signatures",
    "read_keystore",
    "read_public_key",
    "verify_many",
    "verify_signature",
    "write_keystore",
]

KEYSTORE_FORMAT: Final = "calm-ledger-keystore/v1"
_KEY_ID_PREFIX: Final = b"calm-ledger/actor-key/v1\n"
_SEED_SIZE: Final = 32
_PUBLIC_KEY_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64
_SALT_SIZE: Final = 16
_NONCE_SIZE: Final = 12
_CIPHERTEXT_SIZE: Final = _SEED_SIZE + 16
_MAX_NAME_LENGTH: Final = 128
_MAX_KEYSTORE_BYTES: Final = 64 * 1024
_PARALLEL_MIN_ITEMS: Final = 256
_PARALLEL_MIN_SIGNATURES: Final = 16

_T = TypeVar("_T")
_Signer = Callable[[bytes], bytes]
_Verifier = Callable[[bytes, bytes], bool]


# --- Ed25519 backends -------------------------------------------------------------------


@dataclass(frozen=True)
class _Backend:
    name: str
    load_signer: Callable[[bytes], tuple[bytes, _Signer]]  # seed -> (public key, sign)
    load_verifier: Callable[[bytes], _Verifier]  # public key -> verify(message, signature)


def _load_pynacl() -> _Backend:
    from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
    from nacl.exceptions import BadSignatureError

    def load_signer(seed: bytes) -> tuple[bytes, _Signer]:
        public_key, secret_key = crypto_sign_seed_keypair(seed)

        def sign(message: bytes) -> bytes:
            return bytes(crypto_sign(message, secret_key)[:_SIGNATURE_SIZE])

        return bytes(public_key), sign

    def load_verifier(public_key: bytes) -> _Verifier:
        def verify(message: bytes, signature: bytes) -> bool:
            try:
                crypto_sign_open(signature + message, public_key)
            except BadSignatureError:
                return False
            return True

        return verify

    return _Backend("pynacl", load_signer, load_verifier)


def _load_openssl() -> _Backend:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    def load_signer(seed: bytes) -> tuple[bytes, _Signer]:
        key = Ed25519PrivateKey.from_private_bytes(seed)
        return key.public_key().public_bytes_raw(), key.sign

    def load_verifier(public_key: bytes) -> _Verifier:
        key = Ed25519PublicKey.from_public_bytes(public_key)

        def verify(message: bytes, signature: bytes) -> bool:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                return False
            return True

        return verify

    return _Backend("cryptography", load_signer, load_verifier)


def _select_backend(
    loaders: Sequence[Callable[[], _Backend]] = (_load_pynacl, _load_openssl),
) -> _Backend:
    """Return the first backend that imports; the fastest (measured) comes first."""
    for load in loaders:
        try:
            return load()
        except ImportError:
            continue
    raise ImportError("no Ed25519 backend: install PyNaCl or cryptography")


_BACKEND: Final = _select_backend()
ED25519_BACKEND: Final = _BACKEND.name
"""Name of the Ed25519 implementation in use: "pynacl" or "cryptography"."""


# --- keys and signatures ----------------------------------------------------------------


def actor_key_id(public_key: bytes) -> str:
    """Return the actor key id: hex of SHA-256("calm-ledger/actor-key/v1\\n" || key)[:16].

    The prefix separates it from every other hash of a public key (e.g. signed-note ids).
    """
    _check_public_key_size(public_key)
    return hashlib.sha256(_KEY_ID_PREFIX + public_key).digest()[:16].hex()


class SigningKey:
    """An actor's Ed25519 private key; the seed never leaves it except into a keystore."""

    __slots__ = ("_key_id", "_public_key", "_seed", "_sign")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != _SEED_SIZE:
            raise ValidationError(f"an Ed25519 seed is {_SEED_SIZE} bytes")
        self._seed = seed
        self._public_key, self._sign = _BACKEND.load_signer(seed)
        self._key_id = actor_key_id(self._public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a key from 32 bytes of the operating system's CSPRNG."""
        return cls(secrets.token_bytes(_SEED_SIZE))

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of `message` (callers add domain prefixes)."""
        return self._sign(message)

    def sign_many(self, messages: Sequence[bytes]) -> list[bytes]:
        """The signatures of `messages`, in order. Both backends release the GIL while
        signing, so a batch of 16 or more is split across CPU threads (a batched append's
        signing takes half the time on 2 CPUs); a smaller one is not worth the hand-off."""
        workers = _worker_count(len(messages), _PARALLEL_MIN_SIGNATURES)
        if workers == 1:
            return [self._sign(m) for m in messages]
        size = -(-len(messages) // workers)
        chunks = [messages[i : i + size] for i in range(0, len(messages), size)]
        sign = self._sign
        others = [_signing_pool().submit(_sign_all, sign, c) for c in chunks[1:]]
        signatures = _sign_all(sign, chunks[0])
        for other in others:
            signatures += other.result()
        return signatures

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self._key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey cannot be pickled; store it with write_keystore")


def _sign_all(sign: _Signer, messages: Sequence[bytes]) -> list[bytes]:
    return [sign(m) for m in messages]


_POOL: list[ThreadPoolExecutor] = []  # kept: starting threads per batch would cost more


def _signing_pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=_cpus() - 1, thread_name_prefix="sign"))
    return _POOL[0]


def _forget_pool_after_fork() -> None:
    _POOL.clear()  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere there is no fork to survive
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Return if `signature` is `public_key`'s signature of `message`; else raise."""
    if len(signature) != _SIGNATURE_SIZE:
        raise SignatureInvalid(f"an Ed25519 signature is 64 bytes, not {len(signature)}")
    if not _verifier(bytes(public_key))(message, signature):
        raise SignatureInvalid("Ed25519 signature does not verify")


@functools.lru_cache(maxsize=4096)
def _verifier(public_key: bytes) -> _Verifier:
    """Load each public key once: a ledger has few actors and millions of signatures.

    Measured saving is small (~2% per verify with OpenSSL, none with libsodium, which
    decodes the point inside every verify), but it also checks each key's length once.
    """
    if len(public_key) != _PUBLIC_KEY_SIZE:
        raise SignatureInvalid(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    try:
        return _BACKEND.load_verifier(public_key)
    except ValueError:
        raise SignatureInvalid("not a valid Ed25519 public key") from None


def verify_many(items: Sequence[tuple[bytes, bytes, bytes]]) -> None:
    """Verify (public_key, message, signature) triples; raise if any does not verify.

    Both backends release the GIL while verifying, so batches of 256 or more are split
    across CPU threads: ~1.8x a loop of `verify_signature` on 2 CPUs. Raising (rather
    than returning flags a caller could ignore) follows the verifier's rule; the error's
    `where` names the first failing index and its message lists up to ten.
    """
    failed = failing_signatures(items)
    if failed:
        shown = ", ".join(map(str, failed[:10])) + (", ..." if len(failed) > 10 else "")
        raise SignatureInvalid(
            f"{len(failed)} of {len(items)} signatures do not verify (items {shown})",
            where=f"item {failed[0]}",
        )


def failing_signatures(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[int]:
    """The indexes, in order, of the (public_key, message, signature) triples that do not
    verify; batches of 256 or more are split across CPU threads as in `verify_many`."""
    workers = _worker_count(len(items))
    if workers == 1:
        return _failures(items, range(len(items)))
    return _parallel_failures(items, workers)


def _worker_count(size: int, minimum: int = _PARALLEL_MIN_ITEMS) -> int:
    return 1 if size < minimum else _cpus()


def _cpus() -> int:
    """CPUs this process may run on, at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, 8))


def _parallel_failures(items: Sequence[tuple[bytes, bytes, bytes]], workers: int) -> list[int]:
    strides = [range(start, len(items), workers) for start in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(_failures, [items] * workers, strides)
        return sorted(index for part in parts for index in part)


def _failures(items: Sequence[tuple[bytes, bytes, bytes]], indices: range) -> list[int]:
    failed = []
    for index in indices:
        try:
            verify_signature(*items[index])
        except SignatureInvalid:
            failed.append(index)
    return failed


def _check_public_key_size(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_KEY_SIZE:
        raise ValidationError(f"an Ed25519 public key is {_PUBLIC_KEY_SIZE} bytes")


# --- keystore ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Argon2Cost:
    """Argon2id cost: memory in KiB, passes and lanes. Tests pass a tiny one for speed."""

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 1

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ValidationError(problem)

    def problem(self) -> str | None:
        """Describe why these parameters are unusable or unsafe to run, else None."""
        values = (self.memory_kib, self.iterations, self.lanes)
        if any(type(v) is not int for v in values):
            return "argon2id parameters must be integers"
        if not (1 <= self.lanes <= 16 and 1 <= self.iterations <= 16):
            return "argon2id lanes and iterations must be between 1 and 16"
        if not 8 * self.lanes <= self.memory_kib <= 1024 * 1024:
            return "argon2id memory must be between 8 KiB per lane and 1 GiB"
        return None


DEFAULT_ARGON2_COST: Final = Argon2Cost()


@dataclass(frozen=True)
class _Keystore:
    name: str
    public_key: bytes
    salt: bytes
    cost: Argon2Cost
    nonce: bytes
    ciphertext: bytes


class _Malformed(Exception):
    """A keystore member is missing or wrong; turned into KeyLocked naming the file."""


def write_keystore(
    path: Path,
    name: str,
    key: SigningKey,
    passphrase: str,
    *,
    cost: Argon2Cost = DEFAULT_ARGON2_COST,
) -> None:
    """Encrypt `key` under `passphrase` into a new file at `path`, created with mode 0600.

    Never overwrites: losing an existing key would orphan every event it signed.
    """
    _check_name(name)
    if not passphrase:
        raise ValidationError("the keystore passphrase must not be empty")
    if os.path.lexists(path):
        raise ValidationError(f"keystore {path} already exists; refusing to overwrite it")
    salt, nonce = secrets.token_bytes(_SALT_SIZE), secrets.token_bytes(_NONCE_SIZE)
    aes = AESGCM(_derive_key(passphrase, salt, cost))
    ciphertext = aes.encrypt(nonce, key._seed, _associated_data(name, key.public_key))
    keystore = _Keystore(name, key.public_key, salt, cost, nonce, ciphertext)
    _create_exclusive(Path(path), canonical_bytes(_encode(keystore)) + b"\n")


def read_keystore(path: Path, passphrase: str) -> SigningKey:
    """Unlock the keystore at `path`; refuse files that group or others may read or write."""
    keystore = _load(Path(path), private=True)
    key = SigningKey(_decrypt_seed(keystore, passphrase))
    if key.public_key != keystore.public_key:
        raise KeyLocked(f"keystore {path} is corrupt: its key does not match its public key")
    return key


def _decrypt_seed(keystore: _Keystore, passphrase: str) -> bytes:
    if passphrase:
        aes = AESGCM(_derive_key(passphrase, keystore.salt, keystore.cost))
        aad = _associated_data(keystore.name, keystore.public_key)
        try:
            return aes.decrypt(keystore.nonce, keystore.ciphertext, aad)
        except InvalidTag:
            pass  # a wrong passphrase and a tampered file are indistinguishable by design
    raise KeyLocked(f"wrong passphrase for keystore '{keystore.name}'")


def read_public_key(path: Path) -> tuple[str, bytes]:
    """Return (name, public key) without the passphrase (no file-mode check: nothing secret)."""
    keystore = _load(Path(path), private=False)
    return keystore.name, keystore.public_key


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME_LENGTH:
        raise ValidationError(f"an actor name has 1 to {_MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise ValidationError(f"actor name {name!r} contains control characters")


def _derive_key(passphrase: str, salt: bytes, cost: Argon2Cost) -> bytes:
    password = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kdf = Argon2id(
        salt=salt,
        length=32,
        iterations=cost.iterations,
        lanes=cost.lanes,
        memory_cost=cost.memory_kib,
    )
    return kdf.derive(password)


def _associated_data(name: str, public_key: bytes) -> bytes:
    """Bind the name and public key to the ciphertext, so neither can be swapped."""
    return canonical_bytes([KEYSTORE_FORMAT, name, _b64(public_key)])


def _encode(keystore: _Keystore) -> dict[str, object]:
    return {
        "format": KEYSTORE_FORMAT,
        "name": keystore.name,
        "public_key": _b64(keystore.public_key),
        "key_id": actor_key_id(keystore.public_key),
        "kdf": {
            "name": "argon2id",
            "salt": _b64(keystore.salt),
            "memory_kib": keystore.cost.memory_kib,
            "iterations": keystore.cost.iterations,
            "lanes": keystore.cost.lanes,
        },
        "cipher": {"name": "aes-256-gcm", "nonce": _b64(keystore.nonce)},
        "ciphertext": _b64(keystore.ciphertext),
    }


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write a private temporary file, then hard-link it into place.

    `link` fails if `path` exists, so nothing is overwritten, and readers see either no
    file or the whole file, never a partial one.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ValidationError(f"cannot create keystore {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        raise ValidationError(f"keystore {path} already exists; refusing to overwrite it") from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _load(path: Path, *, private: bool) -> _Keystore:
    raw = _read_file(path, private=private)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise KeyLocked(f"keystore {path} is not valid JSON") from None
    try:
        return _decode(document)
    except _Malformed as exc:
        raise KeyLocked(f"keystore {path} is malformed: {exc}") from None


def _read_file(path: Path, *, private: bool) -> bytes:
    """Read at most 64 KiB; check the mode of the opened file itself (no race with chmod)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not hang
    except FileNotFoundError:
        raise KeyLocked(f"keystore not found: {path}") from None
    except OSError as exc:
        raise KeyLocked(f"cannot open keystore {path}: {exc.strerror}") from None
    try:
        _check_file_mode(path, os.fstat(fd), private=private)
        raw = _read_at_most(fd, _MAX_KEYSTORE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > _MAX_KEYSTORE_BYTES:
        raise KeyLocked(f"keystore {path} is larger than {_MAX_KEYSTORE_BYTES} bytes")
    return raw


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _check_file_mode(path: Path, status: os.stat_result, *, private: bool) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise KeyLocked(f"keystore {path} is not a regular file")
    if private and status.st_mode & 0o077:
        mode = stat.S_IMODE(status.st_mode)
        raise KeyLocked(
            f"keystore {path} is accessible by group or others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )


def _decode(document: object) -> _Keystore:
    top = _members(document, "keystore", _TOP_MEMBERS)
    if top["format"] != KEYSTORE_FORMAT:
        raise _Malformed(f"format is {top['format']!r}, expected {KEYSTORE_FORMAT!r}")
    name = _typed(top, "name", str)
    try:
        _check_name(name)
    except ValidationError as exc:
        raise _Malformed(str(exc)) from None
    public_key = _base64(top, "public_key", _PUBLIC_KEY_SIZE)
    if _typed(top, "key_id", str) != actor_key_id(public_key):
        raise _Malformed("key_id does not match public_key")
    kdf = _members(top["kdf"], "kdf", _KDF_MEMBERS)
    cipher = _members(top["cipher"], "cipher", _CIPHER_MEMBERS)
    if kdf["name"] != "argon2id" or cipher["name"] != "aes-256-gcm":
        raise _Malformed("only kdf 'argon2id' and cipher 'aes-256-gcm' are supported")
    return _Keystore(
        name=name,
        public_key=public_key,
        salt=_base64(kdf, "salt", _SALT_SIZE),
        cost=_cost(kdf),
        nonce=_base64(cipher, "nonce", _NONCE_SIZE),
        ciphertext=_base64(top, "ciphertext", _CIPHERTEXT_SIZE),
    )


_TOP_MEMBERS: Final = frozenset(
    {"format", "name", "public_key", "key_id", "kdf", "cipher", "ciphertext"}
)
_KDF_MEMBERS: Final = frozenset({"name", "salt", "memory_kib", "iterations", "lanes"})
_CIPHER_MEMBERS: Final = frozenset({"name", "nonce"})


def _members(value: object, where: str, expected: frozenset[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where} is not a JSON object")
    if value.keys() != expected:
        missing = sorted(expected - value.keys())
        unknown = sorted(value.keys() - expected)
        raise _Malformed(f"{where} has missing members {missing} or unknown members {unknown}")
    return value


def _typed(members: dict[str, object], name: str, kind: type[_T]) -> _T:
    value = members[name]
    if type(value) is not kind:
        raise _Malformed(f"{name} is not a {kind.__name__}")
    return value


def _base64(members: dict[str, object], name: str, size: int) -> bytes:
    try:
        data = binascii.a2b_base64(_typed(members, name, str), strict_mode=True)
    except (binascii.Error, ValueError):
        raise _Malformed(f"{name} is not valid base64") from None
    if len(data) != size:
        raise _Malformed(f"{name} is {len(data)} bytes, expected {size}")
    return data


def _cost(kdf: dict[str, object]) -> Argon2Cost:
    try:
        return Argon2Cost(
            memory_kib=_typed(kdf, "memory_kib", int),
            iterations=_typed(kdf, "iterations", int),
            lanes=_typed(kdf, "lanes", int),
        )
    except ValidationError as exc:
        raise _Malformed(str(exc)) from None
