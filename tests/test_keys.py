"""Actor keys, signatures and the passphrase-encrypted keystore."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nacl.signing
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import keys
from ledger.errors import KeyLocked, SignatureInvalid, ValidationError
from ledger.keys import (
    DEFAULT_ARGON2_COST,
    KEYSTORE_FORMAT,
    Argon2Cost,
    SigningKey,
    actor_key_id,
    read_keystore,
    read_public_key,
    verify_many,
    verify_signature,
    write_keystore,
)

FAST = Argon2Cost(memory_kib=8, iterations=1, lanes=1)
FIXED_SEED = bytes(range(32))
# Computed independently: cryptography's public key for FIXED_SEED, then
# hashlib.sha256(b"calm-ledger/actor-key/v1\n" + public_key).hexdigest()[:32].
FIXED_PUBLIC_KEY = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
FIXED_KEY_ID = "098e5f4ace4dc1aa4ce8612e9b60e79b"

RFC8032_VECTORS = [  # RFC 8032 section 7.1, TEST 1 and TEST 2: (seed, public key, message, sig)
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
        "1cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
        "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


@pytest.fixture
def alice() -> SigningKey:
    return SigningKey(FIXED_SEED)


@pytest.fixture
def keystore(tmp_path: Path, alice: SigningKey) -> Path:
    path = tmp_path / "alice.key"
    write_keystore(path, "alice", alice, "correct horse", cost=FAST)
    return path


def edit_keystore(path: Path, change: Callable[[dict[str, object]], object]) -> None:
    document = json.loads(path.read_bytes())
    change(document)
    path.write_text(json.dumps(document))


def flip_bit(text: str) -> str:
    data = bytearray(base64.b64decode(text))
    data[0] ^= 1
    return base64.b64encode(bytes(data)).decode()


# --- keys and signatures -------------------------------------------------------------------


def test_key_id_is_stable_for_a_fixed_seed(alice: SigningKey) -> None:
    expected = hashlib.sha256(b"calm-ledger/actor-key/v1\n" + FIXED_PUBLIC_KEY).hexdigest()[:32]
    assert expected == FIXED_KEY_ID
    assert alice.public_key == FIXED_PUBLIC_KEY
    assert alice.key_id == FIXED_KEY_ID
    assert actor_key_id(FIXED_PUBLIC_KEY) == FIXED_KEY_ID


def test_actor_key_id_refuses_a_public_key_of_the_wrong_size() -> None:
    with pytest.raises(ValidationError):
        actor_key_id(FIXED_PUBLIC_KEY[:31])


@pytest.mark.parametrize(("seed", "public_key", "message", "signature"), RFC8032_VECTORS)
def test_signatures_match_the_rfc8032_vectors(
    seed: str, public_key: str, message: str, signature: str
) -> None:
    key = SigningKey(bytes.fromhex(seed))
    assert key.public_key.hex() == public_key
    assert key.sign(bytes.fromhex(message)).hex() == signature
    verify_signature(key.public_key, bytes.fromhex(message), bytes.fromhex(signature))


def test_a_signature_round_trips() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"event header")
    assert len(signature) == 64
    verify_signature(key.public_key, b"event header", signature)


def test_generated_keys_differ() -> None:
    assert SigningKey.generate().public_key != SigningKey.generate().public_key


def test_a_signature_over_another_message_is_refused(alice: SigningKey) -> None:
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_signature(alice.public_key, b"edited header", alice.sign(b"event header"))


def test_every_flipped_bit_of_a_signature_is_refused(alice: SigningKey) -> None:
    signature = alice.sign(b"event header")
    for bit in range(len(signature) * 8):
        tampered = bytearray(signature)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(SignatureInvalid):
            verify_signature(alice.public_key, b"event header", bytes(tampered))


def test_a_signature_by_another_key_is_refused(alice: SigningKey) -> None:
    mallory = SigningKey.generate()
    with pytest.raises(SignatureInvalid):
        verify_signature(alice.public_key, b"event header", mallory.sign(b"event header"))


@pytest.mark.parametrize(
    ("public_key", "signature", "message"),
    [
        (FIXED_PUBLIC_KEY, bytes(63), "signature is 64 bytes"),
        (FIXED_PUBLIC_KEY[:31], bytes(64), "public key is 32 bytes"),
        (bytes(32), bytes(64), "verify"),  # a small-order point: never verifies
    ],
)
def test_malformed_signatures_and_keys_are_refused(
    public_key: bytes, signature: bytes, message: str
) -> None:
    with pytest.raises(SignatureInvalid, match=message):
        verify_signature(public_key, b"event header", signature)


@settings(max_examples=50)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=600))
def test_the_two_backends_produce_identical_signatures(seed: bytes, message: bytes) -> None:
    ours = SigningKey(seed).sign(message)
    by_openssl = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    by_libsodium = nacl.signing.SigningKey(seed).sign(message).signature
    assert ours == by_openssl == by_libsodium


def test_falls_back_to_cryptography_when_pynacl_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nacl.bindings", None)
    backend = keys._select_backend()
    assert backend.name == "cryptography"
    public_key, sign = backend.load_signer(FIXED_SEED)
    assert public_key == FIXED_PUBLIC_KEY
    assert sign(b"m") == SigningKey(FIXED_SEED).sign(b"m")
    verify = backend.load_verifier(public_key)
    assert verify(b"m", sign(b"m"))
    assert not verify(b"n", sign(b"m"))


def test_the_faster_backend_is_preferred() -> None:
    assert keys.ED25519_BACKEND == "pynacl"  # measured by bench/bench_ed25519.py


def test_seed_never_appears_in_repr_or_str(alice: SigningKey) -> None:
    shown = repr(alice) + str(alice) + f"{alice}" + repr([alice])
    for form in (FIXED_SEED.hex(), repr(FIXED_SEED), base64.b64encode(FIXED_SEED).decode()):
        assert form not in shown
    assert FIXED_KEY_ID in repr(alice)


def test_signing_keys_cannot_be_pickled(alice: SigningKey) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(alice)


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), "x" * 32])
def test_a_seed_must_be_32_bytes(seed: bytes) -> None:
    with pytest.raises(ValidationError):
        SigningKey(seed)


def test_public_keys_are_loaded_once_for_many_verifications(alice: SigningKey) -> None:
    signature = alice.sign(b"m")
    keys._verifier.cache_clear()
    for _ in range(100):
        verify_signature(alice.public_key, b"m", signature)
    info = keys._verifier.cache_info()
    assert (info.misses, info.hits) == (1, 99)


@pytest.fixture(scope="module")
def batch() -> list[tuple[bytes, bytes, bytes]]:
    signers = [SigningKey.generate() for _ in range(3)]
    items = []
    for index in range(600):  # above the threshold, so the threaded path runs
        signer, message = signers[index % 3], f"event {index}".encode()
        items.append((signer.public_key, message, signer.sign(message)))
    return items


@pytest.mark.parametrize("size", [0, 1, 10, 600])
def test_verify_many_accepts_valid_batches(
    batch: list[tuple[bytes, bytes, bytes]], size: int
) -> None:
    verify_many(batch[:size])


@pytest.mark.parametrize("size", [10, 600])
def test_verify_many_names_every_failing_item(
    batch: list[tuple[bytes, bytes, bytes]], size: int
) -> None:
    items = list(batch[:size])
    items[7] = (items[7][0], b"edited", items[7][2])
    items[3] = (items[3][0][:5], items[3][1], items[3][2])  # a malformed key fails, not crashes
    with pytest.raises(SignatureInvalid, match=rf"2 of {size} signatures .*\(items 3, 7\)") as err:
        verify_many(items)
    assert err.value.where == "item 3"


@pytest.mark.parametrize("size", [10, 600])
def test_failing_signatures_lists_every_failure_in_order(
    batch: list[tuple[bytes, bytes, bytes]], size: int
) -> None:
    items = list(batch[:size])
    bad = [1, 4, 5, 6, 7, 8, 9] + [n for n in range(11, size, 50)]
    for n in bad:
        items[n] = (items[n][0], items[n][1] + b"!", items[n][2])
    assert keys.failing_signatures(items) == bad  # all of them: an audit marks each row


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 101])
def test_sign_many_gives_each_message_its_own_signature_in_order(
    alice: SigningKey, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "_cpus", lambda: 3)  # threads even on a 1-CPU machine
    messages = [f"event {i}".encode() for i in range(size)]
    assert alice.sign_many(messages) == [alice.sign(m) for m in messages]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_signs_batches_with_threads_of_its_own(
    alice: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "_cpus", lambda: 2)
    messages = [f"event {i}".encode() for i in range(40)]
    expected = alice.sign_many(messages)  # the parent's signing threads exist now
    pid = os.fork()
    if pid == 0:  # the child has none of them: without a new pool it would wait forever
        signal.alarm(20)  # so the child dies instead, and the test fails rather than hangs
        os._exit(0 if alice.sign_many(messages) == expected else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# --- keystore ------------------------------------------------------------------------------


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_keystore_unlocks_to_the_same_key(keystore: Path, alice: SigningKey) -> None:
    key = read_keystore(keystore, "correct horse")
    assert key.public_key == alice.public_key
    assert key.sign(b"m") == alice.sign(b"m")


@pytest.mark.usefixtures("loose_umask")
def test_the_keystore_file_is_created_with_mode_0600(tmp_path: Path, alice: SigningKey) -> None:
    path = tmp_path / "alice.key"
    write_keystore(path, "alice", alice, "correct horse", cost=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["alice.key"]  # no temporary file left


def test_the_seed_never_appears_in_the_keystore_file(keystore: Path) -> None:
    raw = keystore.read_bytes()
    for form in (
        FIXED_SEED,
        FIXED_SEED.hex().encode(),
        base64.b64encode(FIXED_SEED),
        base64.urlsafe_b64encode(FIXED_SEED),
        base64.b64encode(FIXED_SEED)[:20],  # any aligned part of it either
    ):
        assert form not in raw


def test_the_keystore_file_has_the_documented_format(keystore: Path) -> None:
    document = json.loads(keystore.read_bytes())
    assert keystore.read_bytes().endswith(b"}\n")
    assert document["format"] == KEYSTORE_FORMAT
    assert document["name"] == "alice"
    assert base64.b64decode(document["public_key"]) == FIXED_PUBLIC_KEY
    assert document["key_id"] == FIXED_KEY_ID
    assert document["kdf"] == {
        "name": "argon2id",
        "salt": document["kdf"]["salt"],
        "memory_kib": 8,
        "iterations": 1,
        "lanes": 1,
    }
    assert len(base64.b64decode(document["kdf"]["salt"])) == 16
    assert document["cipher"]["name"] == "aes-256-gcm"
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 12
    assert len(base64.b64decode(document["ciphertext"])) == 48


def test_the_default_cost_is_the_documented_argon2id_setting(
    tmp_path: Path, alice: SigningKey
) -> None:
    path = tmp_path / "alice.key"
    write_keystore(path, "alice", alice, "correct horse")
    started = time.perf_counter()
    assert read_keystore(path, "correct horse").key_id == alice.key_id
    elapsed = time.perf_counter() - started
    kdf = json.loads(path.read_bytes())["kdf"]
    assert (kdf["memory_kib"], kdf["iterations"], kdf["lanes"]) == (65536, 3, 1)
    assert Argon2Cost(65536, 3, 1) == DEFAULT_ARGON2_COST
    assert elapsed < 2.0  # ~0.14 s here; a generous bound so a busy machine does not flake


def test_a_wrong_passphrase_is_refused_naming_the_keystore(keystore: Path) -> None:
    with pytest.raises(KeyLocked, match=r"^wrong passphrase for keystore 'alice'$"):
        read_keystore(keystore, "wrong horse")


def test_an_empty_passphrase_never_unlocks(keystore: Path) -> None:
    with pytest.raises(KeyLocked, match="wrong passphrase"):
        read_keystore(keystore, "")


def test_equivalent_unicode_passphrases_unlock(tmp_path: Path, alice: SigningKey) -> None:
    path = tmp_path / "alice.key"
    write_keystore(path, "alice", alice, "caf\u00e9", cost=FAST)  # composed é
    assert read_keystore(path, "cafe\u0301").key_id == alice.key_id  # decomposed é


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644, 0o666])
def test_a_keystore_group_or_others_can_access_is_refused(keystore: Path, mode: int) -> None:
    keystore.chmod(mode)
    with pytest.raises(KeyLocked, match=rf"run: chmod 600 {keystore}$"):
        read_keystore(keystore, "correct horse")


def test_an_owner_read_only_keystore_is_accepted(keystore: Path, alice: SigningKey) -> None:
    keystore.chmod(0o400)
    assert read_keystore(keystore, "correct horse").key_id == alice.key_id


def test_a_missing_keystore_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nobody.key"
    with pytest.raises(KeyLocked, match=f"keystore not found: {path}"):
        read_keystore(path, "correct horse")


def test_a_directory_is_not_a_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeyLocked, match="not a regular file"):
        read_keystore(tmp_path, "correct horse")


def test_tampered_ciphertext_is_refused(keystore: Path) -> None:
    edit_keystore(keystore, lambda d: d.update(ciphertext=flip_bit(str(d["ciphertext"]))))
    with pytest.raises(KeyLocked, match="wrong passphrase"):
        read_keystore(keystore, "correct horse")


def test_a_renamed_keystore_is_refused(keystore: Path) -> None:
    edit_keystore(keystore, lambda d: d.update(name="mallory"))
    with pytest.raises(KeyLocked, match="wrong passphrase for keystore 'mallory'"):
        read_keystore(keystore, "correct horse")


def test_a_swapped_public_key_is_refused(keystore: Path) -> None:
    other = SigningKey.generate()
    edit_keystore(
        keystore,
        lambda d: d.update(
            public_key=base64.b64encode(other.public_key).decode(), key_id=other.key_id
        ),
    )
    with pytest.raises(KeyLocked, match="wrong passphrase"):
        read_keystore(keystore, "correct horse")


def _set_kdf(member: str, value: object) -> Callable[[dict[str, object]], object]:
    return lambda d: d["kdf"].update({member: value})  # type: ignore[attr-defined]


MALFORMED: list[tuple[str, Callable[[dict[str, object]], object], str]] = [
    ("missing member", lambda d: d.pop("cipher"), r"missing members \['cipher'\]"),
    ("unknown member", lambda d: d.update(extra=1), r"unknown members \['extra'\]"),
    ("other format", lambda d: d.update(format="calm-ledger-keystore/v2"), "format is"),
    ("bad base64", lambda d: d.update(ciphertext="not base64!"), "ciphertext is not valid base64"),
    ("short salt", _set_kdf("salt", "AAAA"), "salt is 3 bytes, expected 16"),
    ("key id mismatch", lambda d: d.update(key_id="0" * 32), "key_id does not match"),
    ("other kdf", _set_kdf("name", "scrypt"), "only kdf 'argon2id'"),
    ("huge memory", _set_kdf("memory_kib", 2**40), "memory must be between"),
    ("zero passes", _set_kdf("iterations", 0), "between 1 and 16"),
    ("boolean lanes", _set_kdf("lanes", True), "lanes is not a int"),
    ("numeric name", lambda d: d.update(name=7), "name is not a str"),
    ("kdf not object", lambda d: d.update(kdf=[]), "kdf is not a JSON object"),
]


@pytest.mark.parametrize(
    ("change", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_keystores_are_refused_saying_what_is_wrong(
    keystore: Path, change: Callable[[dict[str, object]], object], message: str
) -> None:
    edit_keystore(keystore, change)
    with pytest.raises(KeyLocked, match=f"keystore {keystore} is malformed: .*{message}"):
        read_keystore(keystore, "correct horse")


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"\xff"])
def test_a_keystore_that_is_not_a_json_object_is_refused(keystore: Path, raw: bytes) -> None:
    keystore.write_bytes(raw)
    with pytest.raises(KeyLocked, match=f"keystore {keystore} is"):
        read_keystore(keystore, "correct horse")


def test_write_refuses_to_overwrite_an_existing_file(keystore: Path, alice: SigningKey) -> None:
    before = keystore.read_bytes()
    with pytest.raises(ValidationError, match="already exists"):
        write_keystore(keystore, "alice", SigningKey.generate(), "other", cost=FAST)
    assert keystore.read_bytes() == before


def test_write_refuses_an_empty_passphrase(tmp_path: Path, alice: SigningKey) -> None:
    with pytest.raises(ValidationError, match="passphrase must not be empty"):
        write_keystore(tmp_path / "alice.key", "alice", alice, "", cost=FAST)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "a\nb", "tab\there", "x" * 129])
def test_write_refuses_unusable_names(tmp_path: Path, alice: SigningKey, name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        write_keystore(tmp_path / "k.key", name, alice, "correct horse", cost=FAST)


def test_write_refuses_a_missing_directory(tmp_path: Path, alice: SigningKey) -> None:
    with pytest.raises(ValidationError, match="cannot create keystore"):
        write_keystore(tmp_path / "no" / "k.key", "alice", alice, "correct horse", cost=FAST)


@pytest.mark.parametrize(
    "cost", [(8, 0, 1), (8, 1, 0), (7, 1, 1), (64, 1, 9), (2**21, 1, 1), (8.0, 1, 1)]
)
def test_unusable_argon2_costs_are_refused(cost: tuple[int, int, int]) -> None:
    with pytest.raises(ValidationError, match="argon2id"):
        Argon2Cost(*cost)


def test_the_public_key_is_readable_without_the_passphrase(
    keystore: Path, alice: SigningKey
) -> None:
    keystore.chmod(0o644)  # nothing secret is read, so the mode is not checked
    assert read_public_key(keystore) == ("alice", alice.public_key)
    assert read_public_key(str(keystore)) == ("alice", alice.public_key)  # type: ignore[arg-type]
