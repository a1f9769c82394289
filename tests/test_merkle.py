"""RFC 6962/9162 Merkle maths: published vectors, every small tree, tampered proofs, appends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import NotFound, ProofError, ValidationError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Hash,
    ListHashReader,
    NodeIndex,
    append_leaves,
    border_indexes,
    check_consistency,
    check_inclusion,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_border,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc6962.json").read_text(encoding="utf-8")
)
OFFICIAL = VECTORS["official_tree"]
OFFICIAL_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in OFFICIAL["leaf_inputs_hex"]]
OFFICIAL_READER = ListHashReader(OFFICIAL_LEAVES)

MAX_SIZE = 64
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(100)]  # Go tlog_test.go's data
READER = ListHashReader(LEAVES)
ROOTS = [tree_hash(n, READER) for n in range(101)]
STRAY = Hash(hashlib.sha256(b"not part of any tree").digest())


def _hexes(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _fails(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


def _flip_bit(h: bytes, bit: int) -> bytes:
    flipped = bytearray(h)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


def _tampered_paths(proof: Sequence[Hash], seed: int) -> Iterator[list[bytes]]:
    """One flipped bit in each hash (bit position varies), each hash dropped, one added."""
    for k in range(len(proof)):
        bit = (31 * k + seed) % (8 * HASH_SIZE)
        yield [*proof[:k], _flip_bit(proof[k], bit), *proof[k + 1 :]]
        yield [*proof[:k], *proof[k + 1 :]]
    yield [*proof, STRAY]
    yield [STRAY, *proof]


class CountingReader:
    """Wraps a reader to prove that provers fetch everything in one call."""

    def __init__(self, inner: ListHashReader) -> None:
        self.inner = inner
        self.calls: list[Sequence[NodeIndex]] = []

    def read_hashes(self, indexes: Sequence[NodeIndex]) -> list[Hash]:
        self.calls.append(list(indexes))
        return self.inner.read_hashes(indexes)


# --- published vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["hasher_vectors"], ids=lambda v: v["desc"])
def test_hasher_matches_rfc6962_vectors(vector: dict[str, str]) -> None:
    if vector["kind"] == "empty_root":
        got = EMPTY_ROOT
    elif vector["kind"] == "leaf":
        got = leaf_hash(bytes.fromhex(vector["input_hex"]))
    else:
        got = node_hash(bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"]))
    assert got.hex() == vector["hash"]


def test_official_leaf_hashes_are_sha256_of_zero_prefixed_inputs() -> None:
    assert _hexes(OFFICIAL_LEAVES) == OFFICIAL["leaf_hashes"]


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_hash_matches_official_root_for_each_size(size: int) -> None:
    assert tree_hash(size, OFFICIAL_READER).hex() == OFFICIAL["roots_by_size"][str(size)]


def test_empty_tree_hash_is_sha256_of_nothing() -> None:
    assert tree_hash(0, OFFICIAL_READER).hex() == OFFICIAL["root_size_0"]


@pytest.mark.parametrize("vector", VECTORS["official_inclusion_proofs"])
def test_official_inclusion_proofs_are_reproduced_and_verify(vector: dict[str, Any]) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    proof = inclusion_proof(index, size, OFFICIAL_READER)
    assert _hexes(proof.hashes) == vector["proof"]
    assert (proof.index, proof.size) == (index, size)
    hashes = [bytes.fromhex(h) for h in vector["proof"]]
    leaf, root = bytes.fromhex(vector["leaf_hash"]), bytes.fromhex(vector["root"])
    check_inclusion(hashes, index, size, leaf, root)


@pytest.mark.parametrize("vector", VECTORS["official_consistency_proofs"])
def test_official_consistency_proofs_are_reproduced_and_verify(vector: dict[str, Any]) -> None:
    size1, size2 = vector["size1"], vector["size2"]
    proof = consistency_proof(size1, size2, OFFICIAL_READER)
    assert _hexes(proof.hashes) == vector["proof"]
    assert (proof.size1, proof.size2) == (size1, size2)
    hashes = [bytes.fromhex(h) for h in vector["proof"]]
    root1, root2 = bytes.fromhex(vector["root1"]), bytes.fromhex(vector["root2"])
    check_consistency(hashes, size1, size2, root1, root2)


def test_every_derived_inclusion_proof_up_to_8_leaves_is_reproduced_and_verifies() -> None:
    for vector in VECTORS["derived_all_inclusion_proofs_n_le_8"]:
        index, size = vector["leaf_index"], vector["tree_size"]
        proof = inclusion_proof(index, size, OFFICIAL_READER)
        assert _hexes(proof.hashes) == vector["proof"], (index, size)
        root = tree_hash(size, OFFICIAL_READER)
        check_inclusion(proof.hashes, index, size, OFFICIAL_LEAVES[index], root)


def test_every_derived_consistency_proof_up_to_8_leaves_is_reproduced_and_verifies() -> None:
    for vector in VECTORS["derived_all_consistency_proofs_n_le_8"]:
        size1, size2 = vector["size1"], vector["size2"]
        proof = consistency_proof(size1, size2, OFFICIAL_READER)
        assert _hexes(proof.hashes) == vector["proof"], (size1, size2)
        root1, root2 = tree_hash(size1, OFFICIAL_READER), tree_hash(size2, OFFICIAL_READER)
        check_consistency(proof.hashes, size1, size2, root1, root2)


def test_go_tlog_data_gives_the_derived_roots() -> None:
    for size, root in VECTORS["derived_tree_leaf_N"]["roots_by_size"].items():
        assert tree_hash(int(size), READER).hex() == root, size


def test_go_tlog_data_gives_the_derived_proofs() -> None:
    derived = VECTORS["derived_tree_leaf_N"]
    for v in derived["inclusion_samples"]:
        proof = inclusion_proof(v["leaf_index"], v["tree_size"], READER)
        assert _hexes(proof.hashes) == v["proof"]
        leaf, root = LEAVES[v["leaf_index"]], ROOTS[v["tree_size"]]
        check_inclusion(proof.hashes, v["leaf_index"], v["tree_size"], leaf, root)
    for v in derived["consistency_samples"]:
        cproof = consistency_proof(v["size1"], v["size2"], READER)
        assert _hexes(cproof.hashes) == v["proof"]
        root1, root2 = ROOTS[v["size1"]], ROOTS[v["size2"]]
        check_consistency(cproof.hashes, v["size1"], v["size2"], root1, root2)


def test_stored_hash_index_matches_go_tlog_append_order() -> None:
    go = VECTORS["derived_go_tlog_storage_index"]
    for entry in go["stored_order_first_31"]:
        assert stored_hash_index(entry["level"], entry["n"]) == entry["index"], entry
    for size, count in go["stored_hash_count"].items():
        assert stored_hash_count(int(size)) == count


def test_stored_hash_index_numbers_nodes_in_the_order_append_leaves_completes_them() -> None:
    _, completed = append_leaves(0, [], LEAVES)
    assert [stored_hash_index(level, index) for level, index, _ in completed] == list(
        range(stored_hash_count(len(LEAVES)))
    )


# --- probes in the style of transparency-dev/merkle testdata ------------------------------------
# (The vectors file says the published probe corpus is not included, so each official proof is
# probed here with the same categories: wrong index, size, leaf or root; proof extended,
# truncated, or with a corrupted hash. The root handed over always belongs to the stated size.)


def _inclusion_probes(v: dict[str, Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    index, size = v["leaf_index"], v["tree_size"]
    proof = [bytes.fromhex(h) for h in v["proof"]]
    leaf, root = bytes.fromhex(v["leaf_hash"]), bytes.fromhex(v["root"])
    for wrong_index in (index - 1, index + 1, index ^ 2, size):
        yield f"index {wrong_index}", (proof, wrong_index, size, leaf, root)
    for wrong_size in (size - 1, size + 1, size * 2, size // 2):
        if wrong_size > index:
            yield f"size {wrong_size}", (proof, index, wrong_size, leaf, ROOT_OF[wrong_size])
    yield "other leaf", (proof, index, size, STRAY, root)
    yield "other root", (proof, index, size, leaf, STRAY)
    yield "empty root", (proof, index, size, leaf, EMPTY_ROOT)
    for k, path in enumerate(_tampered_paths([Hash(h) for h in proof], seed=index)):
        yield f"tampered path {k}", (path, index, size, leaf, root)


def _consistency_probes(v: dict[str, Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    size1, size2 = v["size1"], v["size2"]
    proof = [bytes.fromhex(h) for h in v["proof"]]
    root1, root2 = bytes.fromhex(v["root1"]), bytes.fromhex(v["root2"])
    for wrong in (size1 - 1, size1 + 1, 0):
        yield f"size1 {wrong}", (proof, wrong, size2, ROOT_OF[wrong], root2)
    for wrong in (size2 - 1, size2 + 1, size2 * 2):
        yield f"size2 {wrong}", (proof, size1, wrong, root1, ROOT_OF[wrong])
    yield "other root1", (proof, size1, size2, STRAY, root2)
    yield "other root2", (proof, size1, size2, root1, STRAY)
    if size1 != size2:
        yield "swapped roots", (proof, size1, size2, root2, root1)
        yield "swapped sizes", (proof, size2, size1, root2, root1)
    for k, path in enumerate(_tampered_paths([Hash(h) for h in proof], seed=size1)):
        yield f"tampered path {k}", (path, size1, size2, root1, root2)


ROOT_OF = {n: tree_hash(n, OFFICIAL_READER) for n in range(len(OFFICIAL_LEAVES) + 1)}
ROOT_OF.update({n: STRAY for n in range(len(OFFICIAL_LEAVES) + 1, 17)})  # unknown trees


@pytest.mark.parametrize("vector", VECTORS["official_inclusion_proofs"])
def test_probes_of_official_inclusion_proofs_fail(vector: dict[str, Any]) -> None:
    for name, args in _inclusion_probes(vector):
        assert _fails(check_inclusion, *args), name


@pytest.mark.parametrize("vector", VECTORS["official_consistency_proofs"])
def test_probes_of_official_consistency_proofs_fail(vector: dict[str, Any]) -> None:
    for name, args in _consistency_probes(vector):
        if name.startswith("size2") and args[2] < args[1]:
            continue  # shrinking size2 below size1 is covered by the swapped cases
        assert _fails(check_consistency, *args), name


# --- every tree up to 64 leaves -----------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_every_inclusion_proof_verifies_and_every_tampering_fails(size: int) -> None:
    root = ROOTS[size]
    for index in range(size):
        proof = inclusion_proof(index, size, READER).hashes
        check_inclusion(proof, index, size, LEAVES[index], root)
        for path in _tampered_paths(proof, seed=size + index):
            assert _fails(check_inclusion, path, index, size, LEAVES[index], root)
        for wrong in (index - 1, index + 1):
            assert _fails(check_inclusion, proof, wrong, size, LEAVES[index], root)
            if 0 <= wrong < size:
                assert _fails(check_inclusion, proof, wrong, size, LEAVES[wrong], root)
        for wrong in (size - 1, size + 1):  # with the root that size would really have
            assert _fails(check_inclusion, proof, index, wrong, LEAVES[index], ROOTS[wrong])
        # Same root, bigger tree: the proof is too short for the size (RFC 9162's final sn == 0).
        assert _fails(check_inclusion, proof, index, 2 * size, LEAVES[index], root)
        # A hash beyond the root, with the root it implies (RFC 9162's sn == 0 inside the loop).
        above = node_hash(STRAY, root)
        assert _fails(check_inclusion, [*proof, STRAY], index, size, LEAVES[index], above)


@pytest.mark.parametrize("size2", range(1, MAX_SIZE + 1))
def test_every_consistency_proof_verifies_and_every_tampering_fails(size2: int) -> None:
    root2 = ROOTS[size2]
    for size1 in range(1, size2 + 1):
        root1 = ROOTS[size1]
        proof = consistency_proof(size1, size2, READER).hashes
        check_consistency(proof, size1, size2, root1, root2)
        for path in _tampered_paths(proof, seed=size1 + size2):
            assert _fails(check_consistency, path, size1, size2, root1, root2)
        for wrong in (size1 - 1, size1 + 1):
            assert _fails(check_consistency, proof, wrong, size2, ROOTS[wrong], root2)
        for wrong in (size2 - 1, size2 + 1):
            assert _fails(check_consistency, proof, size1, wrong, root1, ROOTS[wrong])
        if size1 != size2:
            assert _fails(check_consistency, proof, size1, size2, root2, root1)
            assert _fails(check_consistency, proof, size1, 2 * size2, root1, root2)
            above1, above2 = node_hash(STRAY, root1), node_hash(STRAY, root2)
            assert _fails(check_consistency, [*proof, STRAY], size1, size2, above1, above2)


@pytest.mark.parametrize("size", range(1, 17))
def test_flipping_any_bit_of_any_proof_hash_fails(size: int) -> None:
    for index in range(size):
        proof = list(inclusion_proof(index, size, READER).hashes)
        for k, bit in ((k, bit) for k in range(len(proof)) for bit in range(8 * HASH_SIZE)):
            path = [*proof[:k], _flip_bit(proof[k], bit), *proof[k + 1 :]]
            assert _fails(check_inclusion, path, index, size, LEAVES[index], ROOTS[size])
    for size1 in range(1, size):
        proof = list(consistency_proof(size1, size, READER).hashes)
        for k, bit in ((k, bit) for k in range(len(proof)) for bit in range(8 * HASH_SIZE)):
            path = [*proof[:k], _flip_bit(proof[k], bit), *proof[k + 1 :]]
            assert _fails(check_consistency, path, size1, size, ROOTS[size1], ROOTS[size])


def test_a_root_alone_does_not_pin_the_tree_size() -> None:
    # RFC 9162 checks only the path shape, and leaf 0 of 8 leaves has the same shape as in 7.
    # This is why (size, root) must always come from one signed checkpoint.
    proof = inclusion_proof(0, 8, READER).hashes
    check_inclusion(proof, 0, 7, LEAVES[0], ROOTS[8])
    assert _fails(check_inclusion, proof, 0, 7, LEAVES[0], ROOTS[7])


# --- edge cases of the checkers -----------------------------------------------------------------


def test_consistency_from_the_empty_tree_is_left_to_callers() -> None:
    assert _fails(check_consistency, [], 0, 5, EMPTY_ROOT, ROOTS[5])
    assert _fails(check_consistency, [], 0, 0, EMPTY_ROOT, EMPTY_ROOT)


def test_consistency_of_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    check_consistency([], 5, 5, ROOTS[5], ROOTS[5])
    assert _fails(check_consistency, [ROOTS[5]], 5, 5, ROOTS[5], ROOTS[5])
    assert _fails(check_consistency, [], 5, 5, ROOTS[5], ROOTS[6])


def test_consistency_to_a_smaller_tree_fails() -> None:
    proof = consistency_proof(5, 8, READER).hashes
    assert _fails(check_consistency, proof, 8, 5, ROOTS[8], ROOTS[5])


def test_inclusion_outside_the_tree_fails() -> None:
    assert _fails(check_inclusion, [], 0, 0, LEAVES[0], EMPTY_ROOT)
    assert _fails(check_inclusion, [], 1, 1, LEAVES[0], ROOTS[1])
    assert _fails(check_inclusion, [], -1, 1, LEAVES[0], ROOTS[1])


def test_checkers_reject_hashes_of_the_wrong_length_as_proof_errors() -> None:
    proof = inclusion_proof(2, 5, READER).hashes
    assert _fails(check_inclusion, [*proof[:-1], proof[-1][:31]], 2, 5, LEAVES[2], ROOTS[5])
    assert _fails(check_inclusion, proof, 2, 5, LEAVES[2][:31], ROOTS[5])
    assert _fails(check_inclusion, proof, 2, 5, LEAVES[2], ROOTS[5] + b"\x00")
    cproof = consistency_proof(3, 5, READER).hashes
    assert _fails(check_consistency, [h + b"\x00" for h in cproof], 3, 5, ROOTS[3], ROOTS[5])


def test_every_proof_failure_says_the_same_thing() -> None:
    messages = set()
    for args in ([], 9, 5, LEAVES[0], ROOTS[5]), ([STRAY], 0, 1, LEAVES[0], ROOTS[1]):
        with pytest.raises(ProofError) as failure:
            check_inclusion(*args)
        messages.add(str(failure.value))
    assert len(messages) == 1


@pytest.mark.parametrize(
    ("prove", "args"),
    [
        (inclusion_proof, (5, 5)),
        (inclusion_proof, (-1, 5)),
        (consistency_proof, (0, 5)),
        (consistency_proof, (6, 5)),
    ],
)
def test_provers_refuse_impossible_requests(
    prove: Callable[[int, int, ListHashReader], object], args: tuple[int, int]
) -> None:
    with pytest.raises(ValidationError):
        prove(*args, READER)


# --- one read per tree head or proof ------------------------------------------------------------


def test_provers_and_tree_hash_read_storage_once() -> None:
    for size in range(1, 40):
        for index in range(size):
            reader = CountingReader(READER)
            inclusion_proof(index, size, reader)
            assert len(reader.calls) <= 1
        for size1 in range(1, size + 1):
            reader = CountingReader(READER)
            consistency_proof(size1, size, reader)
            assert len(reader.calls) <= 1
        reader = CountingReader(READER)
        tree_hash(size, reader)
        assert len(reader.calls) == 1 and len(reader.calls[0]) == size.bit_count()


def test_provers_only_ask_for_complete_subtrees_inside_the_tree() -> None:
    reader = ListHashReader(LEAVES[:13])
    consistency_proof(5, 13, reader)
    inclusion_proof(12, 13, reader)
    with pytest.raises(NotFound):
        reader.read_hashes([(2, 3)])  # leaves 12..15: not complete in a 13-leaf tree


# --- appending with a right border --------------------------------------------------------------


def _all_complete_nodes(size: int) -> set[tuple[int, int, Hash]]:
    reader = ListHashReader(LEAVES[:size])
    return {
        (level, index, reader.node(level, index))
        for level in range(size.bit_length())
        for index in range(size >> level)
    }


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.integers(min_value=0, max_value=9), max_size=11))
def test_appending_in_batches_gives_the_same_roots_and_nodes(batches: list[int]) -> None:
    size, border, stored = 0, list[Hash](), list[tuple[int, int, Hash]]()
    for batch in batches:
        border, completed = append_leaves(size, border, LEAVES[size : size + batch])
        stored.extend(completed)
        size += batch
        assert root_from_border(size, border) == tree_hash(size, READER) == ROOTS[size]
        assert border == READER.read_hashes(border_indexes(size))
    assert len({(level, index) for level, index, _ in stored}) == len(stored)  # write-once
    assert set(stored) == _all_complete_nodes(size)


def test_border_of_a_tree_lists_its_maximal_complete_subtrees_highest_first() -> None:
    assert border_indexes(0) == []
    assert border_indexes(1) == [(0, 0)]
    assert border_indexes(13) == [(3, 0), (2, 2), (0, 12)]
    assert border_indexes(64) == [(6, 0)]


def test_root_of_the_empty_border_is_the_empty_root() -> None:
    assert root_from_border(0, []) == EMPTY_ROOT


def test_appending_refuses_a_border_that_does_not_fit_the_size() -> None:
    with pytest.raises(ValidationError):
        append_leaves(3, [LEAVES[0]], [LEAVES[3]])
    with pytest.raises(ValidationError):
        root_from_border(-1, [])
    with pytest.raises(ValidationError):
        append_leaves(1, [b"short"], [])


# --- the Hash type ------------------------------------------------------------------------------


def test_hash_is_exactly_32_bytes_and_prints_as_base64() -> None:
    h = leaf_hash(b"")
    assert str(h) == "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0="
    assert Hash.from_base64(str(h)) == h
    assert eval(repr(h)) == h  # repr is a readable constructor call
    for bad in (b"", b"\x00" * 31, b"\x00" * 33, "x" * 32):
        with pytest.raises(ValidationError):
            Hash(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0",  # unpadded
        "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB1=",  # non-canonical last bits
        "bjQLnP-zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",  # URL alphabet
        " bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
        "AAAA",
    ],
)
def test_hash_from_base64_is_strict(text: str) -> None:
    with pytest.raises(ValidationError):
        Hash.from_base64(text)
