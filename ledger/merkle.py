"""RFC 6962 / RFC 9162 Merkle tree maths: hashes, tree heads, proofs. Pure functions, no I/O.

Storage model (as in Go's sumdb/tlog): only complete subtrees are stored, each addressed by a
`NodeIndex` (level, index) covering leaves [index * 2**level, (index + 1) * 2**level). Level 0
holds the leaf hashes. Anything else a tree head or proof needs -- the hash of a right edge that is
not a power of two wide -- is folded from the stored complete subtrees that tile it, so the store
stays append-only and write-once.

Provers first compute every node they need, then call `HashReader.read_hashes` exactly once.
Checkers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step and raise `ProofError`, with
one deliberately uninformative message, for every failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from ledger.errors import NotFound, ProofError, ValidationError

HASH_SIZE = 32

NodeIndex = tuple[int, int]
"""(level, index): the complete subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

_PROOF_FAILED = "invalid transparency proof"


class Hash(bytes):
    """A SHA-256 value: exactly 32 bytes; `str()` gives standard base64 (as checkpoints do)."""

    __slots__ = ()

    def __new__(cls, value: bytes) -> Self:
        if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
            raise ValidationError(f"a hash must be {HASH_SIZE} bytes")
        return super().__new__(cls, value)

    def __str__(self) -> str:
        return base64.b64encode(self).decode("ascii")

    def __repr__(self) -> str:
        return f"Hash.from_base64({str(self)!r})"

    @classmethod
    def from_base64(cls, text: str) -> Self:
        """Strict: standard alphabet, padded, canonical, 32 bytes."""
        if not isinstance(text, str):  # e.g. a value from a JSON document
            raise ValidationError("malformed base64 hash")
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValidationError("malformed base64 hash") from exc
        if base64.b64encode(raw).decode("ascii") != text:
            raise ValidationError("malformed base64 hash")
        return cls(raw)


def leaf_hash(leaf_input: bytes) -> Hash:
    """SHA-256(0x00 || leaf): the 0x00 prefix keeps leaves and interior nodes apart."""
    return _digest(hashlib.sha256(b"\x00" + leaf_input).digest())


def node_hash(left: bytes, right: bytes) -> Hash:
    """SHA-256(0x01 || left || right)."""
    return _digest(hashlib.sha256(b"\x01" + left + right).digest())


def _digest(sha256: bytes) -> Hash:
    """A SHA-256 digest as a Hash, without `Hash`'s checks: it is 32 bytes by construction
    (an append makes two of these an event)."""
    return bytes.__new__(Hash, sha256)


EMPTY_ROOT = Hash(hashlib.sha256(b"").digest())
"""RFC 6962 MTH({}): the root of the empty tree (Go's tlog uses all zeros instead)."""


class HashReader(Protocol):
    """Storage of complete-subtree hashes, e.g. one SQL query per call."""

    def read_hashes(self, indexes: Sequence[NodeIndex]) -> Sequence[bytes]:
        """Return the hashes of `indexes`, in the same order."""
        ...


class ListHashReader:
    """A HashReader over an in-memory list of leaf hashes, for tests and offline verifiers."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves = [Hash(h) for h in leaf_hashes]
        self._nodes: dict[NodeIndex, Hash] = {}

    def __len__(self) -> int:
        return len(self._leaves)

    def read_hashes(self, indexes: Sequence[NodeIndex]) -> list[Hash]:
        return [self.node(level, index) for level, index in indexes]

    def node(self, level: int, index: int) -> Hash:
        """Hash of complete node (level, index); NotFound unless all its leaves are present."""
        if level < 0 or index < 0 or (index + 1) << level > len(self._leaves):
            raise NotFound(f"node ({level}, {index}) is not a complete subtree of this tree")
        if level == 0:
            return self._leaves[index]
        found = self._nodes.get((level, index))
        if found is None:
            found = node_hash(self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1))
            self._nodes[(level, index)] = found
        return found


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 PATH for leaf `index` in the tree of `size` leaves, leaf side first."""

    index: int
    size: int
    hashes: tuple[Hash, ...]


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 PROOF that the tree of `size1` leaves is a prefix of the tree of `size2`."""

    size1: int
    size2: int
    hashes: tuple[Hash, ...]


# --- appending with a right border ("compact range") -------------------------------------------


def border_indexes(size: int) -> list[NodeIndex]:
    """Nodes (k, (size >> k) - 1) for every bit k set in `size`, highest level first."""
    _check_size(size)
    return [(k, (size >> k) - 1) for k in reversed(range(size.bit_length())) if size >> k & 1]


def append_leaves(
    size: int, border: Sequence[bytes], leaf_hashes: Sequence[bytes]
) -> tuple[list[Hash], list[tuple[int, int, Hash]]]:
    """Append leaves to a tree known only by its size and right border.

    Returns the new border and every node completed on the way, (level, index, hash), leaves
    included, in append order -- exactly the rows a write-once store must insert.
    """
    stack = _checked_border(size, border)
    completed: list[tuple[int, int, Hash]] = []
    n = size
    for raw in leaf_hashes:
        node = raw if type(raw) is Hash else Hash(raw)  # an append's leaves are Hashes already
        completed.append((0, n, node))
        level = 0
        while n >> level & 1:  # each trailing 1 bit of n closes a subtree with the border
            node = node_hash(stack.pop(), node)
            level += 1
            completed.append((level, n >> level, node))
        stack.append(node)
        n += 1
    return stack, completed


def root_from_border(size: int, border: Sequence[bytes]) -> Hash:
    """The tree head of `size` leaves from its right border alone (EMPTY_ROOT for size 0)."""
    return _fold(_checked_border(size, border)) if size else EMPTY_ROOT


def _checked_border(size: int, border: Sequence[bytes]) -> list[Hash]:
    _check_size(size)
    if len(border) != size.bit_count():
        raise ValidationError(f"a border for size {size} has {size.bit_count()} hashes")
    return [h if type(h) is Hash else Hash(h) for h in border]  # an append's cached border


def _check_size(size: int) -> None:
    if size < 0:
        raise ValidationError("a tree size cannot be negative")


# --- Go tlog's dense stored-hash numbering, for stores that prefer one integer key -------------


def stored_hash_index(level: int, index: int) -> int:
    """Position of node (level, index) in append order (Go tlog `StoredHashIndex`)."""
    n = ((index + 1) << level) - 1  # the last leaf under the node; it was appended just before
    total = 0
    while n > 0:
        total += n
        n >>= 1
    return total + level


def stored_hash_count(size: int) -> int:
    """How many complete-subtree hashes a tree of `size` leaves stores (Go `StoredHashCount`)."""
    _check_size(size)
    return 2 * size - size.bit_count()


# --- tree heads and proofs ----------------------------------------------------------------------


def tree_hash(size: int, reader: HashReader) -> Hash:
    """RFC 9162 MTH of the first `size` leaves, from one read of at most log2(size)+1 hashes."""
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    (root,) = _hashes_of_ranges([(0, size)], reader)
    return root


def inclusion_proof(index: int, size: int, reader: HashReader) -> InclusionProof:
    """RFC 9162 PATH(index, D[0:size]) (section 2.1.3.1)."""
    if not 0 <= index < size:
        raise ValidationError(f"leaf {index} is not in a tree of size {size}")
    hashes = _hashes_of_ranges(_inclusion_ranges(index, size), reader)
    return InclusionProof(index, size, tuple(hashes))


def consistency_proof(size1: int, size2: int, reader: HashReader) -> ConsistencyProof:
    """RFC 9162 PROOF(size1, D[0:size2]) (section 2.1.4.1); empty when the sizes are equal."""
    if not 0 < size1 <= size2:
        raise ValidationError(f"no consistency proof from size {size1} to size {size2}")
    hashes = _hashes_of_ranges(_consistency_ranges(size1, size2), reader)
    return ConsistencyProof(size1, size2, tuple(hashes))


def _split(width: int) -> int:
    """The largest power of two strictly less than `width` (>= 2): RFC 9162's k."""
    return 1 << ((width - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form PATH(index, D[0:size]), leaf side first."""
    lo, hi, ranges = 0, size, []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return ranges[::-1]


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes form SUBPROOF(size1, D[0:size2], true), leaf side first."""
    lo, hi, ranges = 0, size2, []
    while size1 != hi:
        k = _split(hi - lo)
        if size1 <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    if lo != 0:  # the old tree's last subtree; the whole old tree is known to the verifier
        ranges.append((lo, hi))
    return ranges[::-1]


def _tiles(lo: int, hi: int) -> list[NodeIndex]:
    """The stored complete subtrees that tile leaves [lo, hi), largest (leftmost) first."""
    tiles = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise AssertionError(f"range [{lo}, {hi}) is not aligned")
        tiles.append((level, lo >> level))
        lo += 1 << level
    return tiles


def _fold(hashes: Sequence[Hash]) -> Hash:
    """Combine a tiling's hashes right to left, as MTH does for a non-power-of-two width."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[Hash]:
    """MTH of each range, reading every tile of every range in one call."""
    tilings = [_tiles(lo, hi) for lo, hi in ranges]
    wanted = [tile for tiling in tilings for tile in tiling]
    if not wanted:
        return []
    got = reader.read_hashes(wanted)
    if len(got) != len(wanted):
        raise AssertionError(f"read_hashes returned {len(got)} hashes for {len(wanted)} nodes")
    stream: Iterator[Hash] = (Hash(h) for h in got)
    return [_fold([next(stream) for _ in tiling]) for tiling in tilings]


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2, literally) ----------------------------


def check_inclusion(
    proof_hashes: Sequence[bytes], index: int, size: int, leaf: bytes, root: bytes
) -> None:
    """Verify that `leaf` (the leaf *hash*) is leaf `index` of the tree of `size` with `root`.

    The root does not commit to the size: callers must take (size, root) from one checkpoint.
    """
    path = _proof_path(proof_hashes)
    _require(0 <= index < size and len(leaf) == HASH_SIZE and len(root) == HASH_SIZE)
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in path:
        _require(sn != 0)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    _require(sn == 0 and r == root)


def check_consistency(
    proof_hashes: Sequence[bytes], size1: int, size2: int, root1: bytes, root2: bytes
) -> None:
    """Verify that the tree (size1, root1) is a prefix of the tree (size2, root2).

    size1 == 0 is rejected: every tree extends the empty one, so callers decide that case.
    """
    path = _proof_path(proof_hashes)
    # size1 > 0 also keeps fn = size1 - 1 >= 0: with -1 the shifting below would never end.
    _require(0 < size1 <= size2 and len(root1) == HASH_SIZE and len(root2) == HASH_SIZE)
    if size1 == size2:
        _require(not path and root1 == root2)
        return
    _require(bool(path))
    if size1 & (size1 - 1) == 0:
        path.insert(0, Hash(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        _require(sn != 0)
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    _require(fr == root1 and sr == root2 and sn == 0)


def _proof_path(proof_hashes: Sequence[bytes]) -> list[Hash]:
    _require(all(len(h) == HASH_SIZE for h in proof_hashes))
    return [Hash(h) for h in proof_hashes]


def _require(condition: bool) -> None:
    if not condition:
        raise ProofError(_PROOF_FAILED)
