"""Signed notes, checkpoints, cosignatures and tlog-proof files against the Go and C2SP vectors,
and against a separate from-the-spec verifier written below."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError, MalformedNote, SignatureInvalid, ValidationError
from ledger.merkle import (
    Hash,
    ListHashReader,
    check_consistency,
    check_inclusion,
    consistency_proof,
    leaf_hash,
)
from ledger.note import (
    Checkpoint,
    NoteSignerKey,
    NoteVerifierKey,
    SignatureType,
    TlogProof,
    cosign,
    cosignature_message,
    format_checkpoint,
    format_signer_key,
    format_tlog_proof,
    format_verifier_key,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_cosignature,
    parse_signer_key,
    parse_tlog_proof,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    sign_note_with,
    verify_cosignature,
)

VECTOR_DIR = Path(__file__).parent / "vectors"
NOTES: dict[str, Any] = json.loads((VECTOR_DIR / "signed-note.json").read_text(encoding="utf-8"))
MERKLE: dict[str, Any] = json.loads((VECTOR_DIR / "rfc6962.json").read_text(encoding="utf-8"))

GO = NOTES["official_go_note"]
C2SP = NOTES["official_c2sp_signed_note"]
C2SP_FORMATS = NOTES["c2sp_format_examples_unverifiable"]
FORMATS_COSIG = NOTES["official_formats_cosig_timestamp_parse"]
DERIVED = NOTES["derived_checkpoint_cosign_proof"]

PETER = parse_verifier_key(GO["verifier_key_PeterNeumann"])
ENOCH = parse_verifier_key(GO["verifier_key_EnochRoot"])
ENOCH_SEED = bytes.fromhex(GO["EnochRoot_seed_hex"])
LOG_NAME = DERIVED["log"]["origin"]
LOG_SEED = bytes.fromhex(DERIVED["log"]["ed25519_seed_hex"])
LOG_KEY = parse_verifier_key(DERIVED["log"]["vkey"])
WITNESS_NAME = DERIVED["witness"]["name"]
WITNESS_SEED = bytes.fromhex(DERIVED["witness"]["ed25519_seed_hex"])
WITNESS_KEY = parse_verifier_key(DERIVED["witness"]["vkey_cosignature_type4"])
CHECKPOINTS = [DERIVED["checkpoint_size5"], DERIVED["checkpoint_size8"]]
OFFICIAL_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in MERKLE["official_tree"]["leaf_inputs_hex"]]


# --- an independent verifier, written from c2sp.org/signed-note and tlog-cosignature ------------
# Deliberately shares no code with ledger.note: only base64, hashlib and `cryptography`.


def independently_verified(message: str, vkey: str) -> bool:
    """True if `message` carries a valid signature by `vkey` (type 0x01 note or 0x04 cosig)."""
    name, hex_id, key64 = vkey.split("+", 2)
    key = base64.b64decode(key64, validate=True)
    if hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() != hex_id:
        return False
    cut = message.rindex("\n\n")
    text, signature_lines = message[: cut + 1], message[cut + 2 :].splitlines()
    for line in signature_lines:
        prefix = "\u2014 " + name + " "
        if not line.startswith(prefix):
            continue
        blob = base64.b64decode(line[len(prefix) :], validate=True)
        if blob[:4].hex() != hex_id:
            continue
        signed = text.encode()
        if key[0] == 0x04:
            stamp = int.from_bytes(blob[4:12], "big")
            signed = b"cosignature/v1\ntime " + str(stamp).encode() + b"\n" + signed
            blob = blob[:4] + blob[12:]
        try:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(blob[4:], signed)
        except InvalidSignature:
            return False
        return True
    return False


def test_independent_verifier_accepts_the_published_notes() -> None:
    assert independently_verified(GO["signed_note_peter"], GO["verifier_key_PeterNeumann"])
    assert independently_verified(C2SP["signed_note"], C2SP["verifier_key"])
    note = DERIVED["checkpoint_size8"]["full_note"]
    assert independently_verified(note, DERIVED["witness"]["vkey_cosignature_type4"])
    assert not independently_verified(
        DERIVED["negative"]["tampered_size_note"], DERIVED["log"]["vkey"]
    )


# --- Go's note package examples -----------------------------------------------------------------


def test_signing_the_go_example_reproduces_peter_neumanns_note() -> None:
    signer = parse_signer_key(GO["signer_key_PeterNeumann"])
    assert sign_note(GO["text"], signer.name, signer.seed) == GO["signed_note_peter"]


def test_signing_through_a_callback_gives_the_same_note_as_signing_with_the_seed() -> None:
    signer = parse_signer_key(GO["signer_key_PeterNeumann"])
    sign = Ed25519PrivateKey.from_private_bytes(signer.seed).sign
    signed = sign_note_with(GO["text"], signer.name, PETER.public_key, sign)
    assert signed == GO["signed_note_peter"]


def test_signing_through_a_callback_refuses_a_key_that_does_not_match() -> None:
    sign = Ed25519PrivateKey.from_private_bytes(ENOCH_SEED).sign
    with pytest.raises(ValidationError):
        sign_note_with(GO["text"], "PeterNeumann", PETER.public_key, sign)


def test_go_example_opens_with_peter_neumanns_key() -> None:
    note = open_note(GO["signed_note_peter"], [PETER])
    assert note.text == GO["text"]
    assert [(s.name, str(s.key_id)) for s in note.signatures] == [("PeterNeumann", "c74f20a3")]
    assert note.unverified == ()


def test_signature_by_an_unknown_key_is_kept_as_unverified_not_failed() -> None:
    note = open_note(GO["signed_note_peter_and_enoch"], [PETER])
    expected = GO["expected_open_peter_only_verifier"]
    assert [f"{s.name}+{s.key_id}" for s in note.signatures] == expected["verified"]
    assert [f"{s.name}+{s.key_id}" for s in note.unverified] == expected["unverified"]


def test_both_signatures_verify_when_both_keys_are_known() -> None:
    note = open_note(GO["signed_note_peter_and_enoch"], [ENOCH, PETER])
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]


def test_enoch_roots_zero_seed_reproduces_his_key_and_signature() -> None:
    assert str(NoteSignerKey("EnochRoot", ENOCH_SEED).verifier) == GO["verifier_key_EnochRoot"]
    enoch_line = GO["signed_note_peter_and_enoch"].splitlines(keepends=True)[-1]
    assert sign_note(GO["text"], "EnochRoot", ENOCH_SEED) == GO["text"] + "\n" + enoch_line


@pytest.mark.parametrize("message", GO["malformed_messages_expect_error_malformed_note"])
def test_go_malformed_notes_are_rejected(message: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(message, [PETER])


def test_note_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(MalformedNote):
        open_note(b"\xff" + GO["signed_note_peter"].encode(), [PETER])


def test_note_with_more_than_100_signatures_is_malformed() -> None:
    line = GO["signed_note_peter"].splitlines(keepends=True)[-1]
    assert open_note(GO["text"] + "\n" + line * 100, [PETER]).signatures
    with pytest.raises(MalformedNote):
        open_note(GO["text"] + "\n" + line * 101, [PETER])


def test_corrupted_signature_from_a_known_key_rejects_the_whole_note() -> None:
    case = GO["invalid_signature_expect_error"]
    with pytest.raises(SignatureInvalid, match=re.escape(case["error"])):
        open_note(case["message"], [PETER, ENOCH])


def test_note_without_a_known_signature_is_rejected() -> None:
    with pytest.raises(SignatureInvalid, match=GO["no_known_key_error"]):
        open_note(GO["signed_note_peter"], [ENOCH])


def test_an_empty_trusted_key_list_fails_closed() -> None:
    with pytest.raises(SignatureInvalid):
        open_note(GO["signed_note_peter"], [])


def test_the_same_key_trusted_twice_is_ambiguous() -> None:
    with pytest.raises(ValidationError, match=re.escape(GO["duplicate_verifier_error"])):
        open_note(GO["signed_note_peter_and_enoch"], [PETER, ENOCH, ENOCH])


def test_a_repeated_signature_counts_once() -> None:
    peter_line = GO["signed_note_peter"].splitlines(keepends=True)[-1]
    note = open_note(GO["signed_note_peter"] + peter_line, [PETER])
    assert len(note.signatures) == 1


# --- C2SP signed-note example and key ids -------------------------------------------------------


def test_c2sp_example_note_verifies() -> None:
    note = open_note(C2SP["signed_note"], [parse_verifier_key(C2SP["verifier_key"])])
    assert note.text == C2SP["signed_text"]


@pytest.mark.parametrize(
    ("who", "key_type"),
    [("log", SignatureType.ED25519), ("witness", SignatureType.COSIGNATURE_V1)],
)
def test_key_id_is_sha256_of_name_newline_type_and_key(who: str, key_type: SignatureType) -> None:
    entry = DERIVED[who]
    public_key = bytes.fromhex(entry["public_key_hex"])
    name = entry.get("origin") or entry["name"]
    assert str(key_id(name, key_type, public_key)) == entry["key_id_hex"]
    preimage = name.encode() + b"\n" + bytes([key_type]) + public_key
    assert key_id(name, key_type, public_key) == hashlib.sha256(preimage).digest()[:4]


def test_the_type_byte_gives_one_key_different_ids_for_notes_and_cosignatures() -> None:
    public_key = WITNESS_KEY.public_key
    note_id = key_id(WITNESS_NAME, SignatureType.ED25519, public_key)
    assert note_id != WITNESS_KEY.key_id


@pytest.mark.parametrize(
    "vkey",
    [
        GO["verifier_key_PeterNeumann"],
        GO["verifier_key_EnochRoot"],
        C2SP["verifier_key"],
        DERIVED["log"]["vkey"],
        DERIVED["witness"]["vkey_cosignature_type4"],
    ],
)
def test_verifier_keys_round_trip(vkey: str) -> None:
    key = parse_verifier_key(vkey)
    assert format_verifier_key(key.name, key.public_key, key.key_type) == vkey
    assert str(key) == vkey
    assert vkey.split("+")[1] == str(key.key_id)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case id
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+ApRc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy",  # short key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # no name
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(MalformedNote):
        parse_verifier_key(vkey)


def test_signer_key_round_trips_and_derives_the_published_verifier_key() -> None:
    signer = parse_signer_key(GO["signer_key_PeterNeumann"])
    assert format_signer_key(signer.name, signer.seed) == GO["signer_key_PeterNeumann"]
    assert signer.verifier == PETER
    assert "seed" not in repr(signer) and signer.seed.hex() not in repr(signer)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEYS+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
)
def test_malformed_signer_keys_are_rejected(skey: str) -> None:
    with pytest.raises(MalformedNote):
        parse_signer_key(skey)


# --- checkpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", CHECKPOINTS, ids=["size5", "size8"])
def test_our_checkpoints_reproduce_the_vectors_and_commit_to_the_rfc6962_root(
    vector: dict[str, Any],
) -> None:
    checkpoint = parse_checkpoint(vector["body"])
    size = checkpoint.size
    assert checkpoint.root_hash.hex() == MERKLE["official_tree"]["roots_by_size"][str(size)]
    assert format_checkpoint(checkpoint) == vector["body"]
    signed = sign_checkpoint(checkpoint, LOG_NAME, LOG_SEED)
    assert signed == vector["body"] + "\n" + vector["log_sig_line"]


@pytest.mark.parametrize("vector", CHECKPOINTS, ids=["size5", "size8"])
def test_cosigned_checkpoint_opens_with_log_and_witness_keys(vector: dict[str, Any]) -> None:
    checkpoint, note = open_checkpoint(vector["full_note"], [LOG_KEY, WITNESS_KEY])
    assert checkpoint == parse_checkpoint(vector["body"])
    assert [s.name for s in note.signatures] == [LOG_NAME, WITNESS_NAME]


def test_our_signed_checkpoints_verify_with_the_independent_verifier() -> None:
    root = Hash(OFFICIAL_LEAVES[0])
    checkpoint = Checkpoint("calm-ledger.example/org-1", 1, root, ("ext \u00e9 line", "x"))
    signed = sign_checkpoint(checkpoint, "calm-ledger.example/org-1", LOG_SEED)
    vkey = format_verifier_key("calm-ledger.example/org-1", LOG_KEY.public_key)
    assert independently_verified(signed, vkey)
    line = cosign(format_checkpoint(checkpoint), WITNESS_NAME, WITNESS_SEED, 1_700_000_123)
    assert independently_verified(signed + line, str(WITNESS_KEY))


def test_c2sp_example_checkpoint_parses() -> None:
    body = C2SP_FORMATS["checkpoint"].split("\n\n")[0] + "\n"
    checkpoint = parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert str(checkpoint.root_hash) == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


ROOT64 = "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ="


@pytest.mark.parametrize(
    "text",
    [
        f"log\n05\n{ROOT64}\n",  # leading zero
        f"log\n+5\n{ROOT64}\n",
        f"log\n 5\n{ROOT64}\n",
        f"log\n1_0\n{ROOT64}\n",  # int() would accept it
        f"log\n\uff15\n{ROOT64}\n",  # fullwidth digit five
        f"log\n9223372036854775808\n{ROOT64}\n",  # 2**63
        f"log\n-1\n{ROOT64}\n",
        f"log\n5\n{ROOT64}",  # no final newline
        f"log\n5\n{ROOT64}\n\n",  # empty extension line
        f"log\n5\n{ROOT64}\r\n",
        f"\n5\n{ROOT64}\n",  # empty origin
        "log\n5\nTju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNR=\n",  # non-canonical base64
        "log\n5\nTju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZA==\n",  # 31 bytes
        "log\n5\n",
        "",
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(MalformedNote):
        parse_checkpoint(text)


def test_checkpoint_refuses_to_be_built_with_an_unformattable_field() -> None:
    root = Hash(OFFICIAL_LEAVES[0])
    for bad in [("a\nb", 1, root, ()), ("log", -1, root, ()), ("log", 1, root, ("",))]:
        with pytest.raises(MalformedNote):
            Checkpoint(*bad)


def test_tampered_checkpoint_size_rejects_the_note() -> None:
    with pytest.raises(SignatureInvalid):
        open_note(DERIVED["negative"]["tampered_size_note"], [LOG_KEY])


def test_checkpoint_signed_only_by_unknown_keys_is_rejected() -> None:
    with pytest.raises(SignatureInvalid, match="no verifiable signatures"):
        open_note(DERIVED["negative"]["unknown_key_only_note"], [LOG_KEY, WITNESS_KEY])


# --- cosignatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", CHECKPOINTS, ids=["size5", "size8"])
def test_cosigning_reproduces_the_witness_line_and_verifies(vector: dict[str, Any]) -> None:
    stamp = vector["cosig_timestamp"]
    assert cosignature_message(vector["body"], stamp).decode() == vector["cosig_signed_message"]
    line = cosign(vector["body"], WITNESS_NAME, WITNESS_SEED, stamp)
    assert line == vector["witness_cosig_line"]
    assert verify_cosignature(vector["body"], line, WITNESS_KEY) == stamp


def test_cosignature_with_a_changed_timestamp_fails_but_the_log_signature_stands() -> None:
    message = DERIVED["negative"]["cosig_with_wrong_timestamp"]
    with pytest.raises(SignatureInvalid):
        open_note(message, [LOG_KEY, WITNESS_KEY])
    note = open_note(message, [LOG_KEY])
    assert [s.name for s in note.unverified] == [WITNESS_NAME]
    with pytest.raises(SignatureInvalid):
        verify_cosignature(note.text, note.unverified[0].line, WITNESS_KEY)


def test_cosignature_for_another_checkpoint_fails() -> None:
    size5, size8 = CHECKPOINTS
    with pytest.raises(SignatureInvalid):
        verify_cosignature(size8["body"], size5["witness_cosig_line"], WITNESS_KEY)


def test_cosignature_from_another_witness_is_not_accepted() -> None:
    other = NoteVerifierKey("witness.example.com/w2", WITNESS_KEY.public_key, WITNESS_KEY.key_type)
    vector = CHECKPOINTS[1]
    with pytest.raises(SignatureInvalid):
        verify_cosignature(vector["body"], vector["witness_cosig_line"], other)


def test_witness_key_must_be_a_cosignature_key() -> None:
    vector = CHECKPOINTS[1]
    note_key = NoteVerifierKey(WITNESS_NAME, WITNESS_KEY.public_key)
    with pytest.raises(ValidationError):
        verify_cosignature(vector["body"], vector["witness_cosig_line"], note_key)


def test_c2sp_cosignature_example_decodes_to_id_timestamp_and_signature() -> None:
    decoded = C2SP_FORMATS["cosignature_decoded"]
    cosignature = parse_cosignature(C2SP_FORMATS["cosigned_checkpoint_extra_line"])
    assert (str(cosignature.key_id), cosignature.timestamp) == (
        decoded["key_id"],
        decoded["timestamp"],
    )
    body = C2SP_FORMATS["checkpoint"].split("\n\n")[0] + "\n"
    expected = C2SP_FORMATS["cosignature_signed_message_example"]
    assert cosignature_message(body, cosignature.timestamp).decode() == expected


def test_formats_cosignature_timestamp_vector_parses() -> None:
    line = f"\u2014 example.com/w {FORMATS_COSIG['signature_b64']}\n"
    cosignature = parse_cosignature(line)
    assert cosignature.timestamp == FORMATS_COSIG["want_timestamp"]
    assert str(cosignature.key_id) == FORMATS_COSIG["decoded_key_id"]


def test_plain_note_signature_is_not_a_cosignature() -> None:
    line = f"\u2014 example.com/w {FORMATS_COSIG['wrong_type_signature_b64_expect_error']}\n"
    with pytest.raises(MalformedNote):
        parse_cosignature(line)


def test_cosignature_line_must_end_with_its_newline() -> None:
    line = CHECKPOINTS[0]["witness_cosig_line"]
    with pytest.raises(MalformedNote):
        parse_cosignature(line.rstrip("\n"))


# --- consistency between the two checkpoints, and tlog-proof files ------------------------------


def test_witness_consistency_proof_from_5_to_8_matches_ours_and_verifies() -> None:
    ours = consistency_proof(5, 8, ListHashReader(OFFICIAL_LEAVES))
    assert [str(h) for h in ours.hashes] == DERIVED["consistency_proof_5_to_8_b64"]
    old, new = (parse_checkpoint(vector["body"]) for vector in CHECKPOINTS)
    check_consistency(ours.hashes, old.size, new.size, old.root_hash, new.root_hash)


def test_tlog_proof_vector_parses_round_trips_and_proves_leaf_6() -> None:
    text = DERIVED["tlog_proof_leaf6_size8"]
    proof = parse_tlog_proof(text)
    assert (proof.index, proof.extra) == (6, None)
    assert format_tlog_proof(proof.index, proof.hashes, proof.checkpoint) == text
    checkpoint, note = open_checkpoint(proof.checkpoint, [LOG_KEY, WITNESS_KEY])
    assert len(note.signatures) == 2
    leaf = leaf_hash(bytes.fromhex(DERIVED["tlog_proof_leaf6_leaf_input_hex"]))
    check_inclusion(proof.hashes, proof.index, checkpoint.size, leaf, checkpoint.root_hash)


def test_tlog_proof_with_extra_data_round_trips() -> None:
    vector = parse_tlog_proof(DERIVED["tlog_proof_leaf6_size8"])
    extra = b"vrf proof \x00\xff"
    text = format_tlog_proof(6, vector.hashes, vector.checkpoint, extra=extra)
    assert text.splitlines()[1] == "extra " + base64.b64encode(extra).decode()
    assert parse_tlog_proof(text) == TlogProof(6, vector.hashes, vector.checkpoint, extra)


TLOG_PROOF = DERIVED["tlog_proof_leaf6_size8"]


@pytest.mark.parametrize(
    "text",
    [
        TLOG_PROOF.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        TLOG_PROOF.replace("index 6", "index 06"),
        TLOG_PROOF.replace("index 6", "index  6"),
        TLOG_PROOF.replace("index 6", "extra !!\nindex 6"),
        TLOG_PROOF.replace("index 6\n", ""),
        TLOG_PROOF.replace("index 6\n", "index 6\n\n"),  # blank line inside the hashes
        TLOG_PROOF.replace("Rvb/rdPQagn/PFhg0nVci5gZ2330QlF4jH2OMYDejrE=", "Rvb/rdPQ"),
        TLOG_PROOF.replace("\n\nexample.com", "\nexample.com"),  # no blank line
        TLOG_PROOF.split("\n\n")[0] + "\n\n" + "example.com/audit-ledger\n8\n",  # no signatures
        TLOG_PROOF.replace("\n8\n", "\n08\n"),  # checkpoint not canonical
        TLOG_PROOF.rstrip("\n"),
    ],
)
def test_malformed_tlog_proofs_are_rejected(text: str) -> None:
    with pytest.raises(MalformedNote):
        parse_tlog_proof(text)


# --- properties ---------------------------------------------------------------------------------

line_text = st.text(
    st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=30
)
hashes = st.binary(min_size=32, max_size=32).map(Hash)
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(min_value=0, max_value=2**63 - 1),
    root_hash=hashes,
    extensions=st.lists(line_text, max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(checkpoint=checkpoints)
def test_checkpoints_round_trip(checkpoint: Checkpoint) -> None:
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint


SIGNED_8 = CHECKPOINTS[1]["full_note"]


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=2**63 - 1),
    path=st.lists(hashes, max_size=8).map(tuple),
    extra=st.none() | st.binary(max_size=40),
)
def test_tlog_proofs_round_trip(index: int, path: tuple[Hash, ...], extra: bytes | None) -> None:
    proof = TlogProof(index, path, SIGNED_8, extra)
    assert parse_tlog_proof(format_tlog_proof(index, path, SIGNED_8, extra)) == proof


@settings(max_examples=50, deadline=None)
@given(checkpoint=checkpoints, stamp=st.integers(min_value=0, max_value=2**63 - 1))
def test_our_cosigned_checkpoints_verify_with_both_implementations(
    checkpoint: Checkpoint, stamp: int
) -> None:
    assume(" " not in checkpoint.origin and "+" not in checkpoint.origin)
    assume(not any(ch.isspace() for ch in checkpoint.origin))
    signed = sign_checkpoint(checkpoint, checkpoint.origin, LOG_SEED)
    signed += cosign(format_checkpoint(checkpoint), WITNESS_NAME, WITNESS_SEED, stamp)
    log_key = NoteVerifierKey(checkpoint.origin, LOG_KEY.public_key)
    assert open_checkpoint(signed, [log_key, WITNESS_KEY])[0] == checkpoint
    assert independently_verified(signed, str(log_key))
    assert independently_verified(signed, str(WITNESS_KEY))


NOTES_TO_MUTATE = [
    CHECKPOINTS[1]["body"] + "\n" + CHECKPOINTS[1]["log_sig_line"],  # log signature only
    CHECKPOINTS[1]["full_note"],  # log signature and cosignature
    GO["signed_note_peter_and_enoch"],
]
MUTATION_KEYS = [LOG_KEY, WITNESS_KEY, PETER, ENOCH]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), which=st.sampled_from(range(len(NOTES_TO_MUTATE))))
def test_mutated_notes_never_verify_with_all_their_signatures(
    data: st.DataObject, which: int
) -> None:
    original = NOTES_TO_MUTATE[which].encode()
    position = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    byte = data.draw(st.integers(min_value=0, max_value=255))
    mutated = data.draw(
        st.sampled_from(
            [
                original[:position] + bytes([byte]) + original[position + 1 :],  # replace
                original[:position] + original[position + 1 :],  # delete
                original[:position] + bytes([byte]) + original[position:],  # insert
            ]
        )
    )
    assume(mutated != original)
    signed_by = len(open_note(original, MUTATION_KEYS).signatures)
    try:
        note = open_note(mutated, MUTATION_KEYS)
    except LedgerError:
        return  # rejected, as it should be; any other exception type fails the test
    # Still opening is only allowed when a whole signature dropped out (e.g. its name changed,
    # making it an unknown key), never with every original signature still verified.
    assert len(note.signatures) < signed_by
