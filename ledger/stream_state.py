"""The head of every stream a chain check has seen, packed into flat arrays.

The chain check (docs/formats.md §4, check 5) needs, per stream, its last version and the
SHA-256 of its last header, for the whole run: the only state of a verifier that grows with
the log, and with one stream per event, as large as it. Kept as a dict of objects it cost
~270 bytes a stream; here a stream costs 56 bytes (its id's 16 UUID bytes, an 8-byte
version, the full 32-byte digest) plus 8 to 16 bytes of hash table, the digest kept whole so
the check is exactly the one it was.

Each stream also has a number, 0, 1, 2, … in the order first seen, which the bundle metrics
fold shares (`StreamNumbers`, `projections.incident_inputs`) rather than keep a second table
of stream ids. `PackedStrings` numbers strings the same way (the fold's incident refs, and
its stream ids when it has no verifier's to share).
"""

from __future__ import annotations

from array import array
from typing import Protocol

_ID, _DIGEST = 16, 32  # bytes a stream in `_ids` and `_digests`
_FREE = -1  # a table slot naming no stream
_FIRST_SLOTS = 1 << 10
_MAX_HINT = 1 << 22  # streams worth reserving room for up front (a hint is not trusted)
_NO_HEAD = -(2**63)  # the version of a stream numbered but not seen by the check (no version is)

Head = tuple[int, bytes]  # (last version, SHA-256 of the last header)


class StreamNumbers(Protocol):
    """Stream ids numbered 0, 1, 2, …: `StreamHeads` and `PackedStrings` both are."""

    def find(self, text: str) -> int | None: ...

    def add(self, text: str) -> int: ...


class StreamHeads:
    """Each stream's head by stream id, in an open-addressing table over flat arrays.

    Ids in the canonical UUID form the ledger writes are packed as their 16 bytes, so two
    ids share a key only if they are the same string; any other string a bundle holds
    (nothing refuses one) is found through a plain dict, apart, its 16 bytes left zero and
    out of the table. Versions are canonical JSON integers, within ±(2**53 - 1), so they
    fit the array's 64 bits. A stream `add`ed by a fold but not yet checked has no head.
    """

    __slots__ = ("_digests", "_ids", "_last", "_others", "_slots", "_versions")

    def __init__(self, expected: int = 0) -> None:
        """`expected`: how many streams there may be (the entries to check), to size the
        table once instead of growing it; capped, since it comes from the input."""
        self._ids = bytearray()  # stream i's packed id at [16 i, 16 i + 16)
        self._versions = array("q")  # stream i's last version
        self._digests = bytearray()  # stream i's last header digest at [32 i, 32 i + 32)
        self._slots = _free_slots(_table_size(min(expected, _MAX_HINT)))
        self._others: dict[str, int] = {}  # stream number of each id not packed
        # The stream last replaced and its number: the metrics fold asks for it next.
        self._last: tuple[str | None, int] = (None, -1)

    def __len__(self) -> int:
        return len(self._versions)

    def replace(self, stream: str, version: int, digest: bytes) -> Head | None:
        """Make (version, digest) the stream's head; return the head it had, if any."""
        if len(digest) != _DIGEST:  # a record of another length would shift every later one
            raise ValueError("a stream head's digest is 32 bytes")
        i = self.add(stream)
        self._last = (stream, i)
        at = _DIGEST * i
        had = self._versions[i]
        previous = None if had == _NO_HEAD else (had, bytes(self._digests[at : at + _DIGEST]))
        self._versions[i] = version
        self._digests[at : at + _DIGEST] = digest
        return previous

    def find(self, text: str) -> int | None:
        """The stream's number, if it was replaced or added."""
        if text == self._last[0]:
            return self._last[1]
        key = packed_stream_id(text)
        if key is None:
            return self._others.get(text)
        i = self._slots[self._slot(key)]
        return None if i == _FREE else i

    def add(self, text: str) -> int:
        """The stream's number, added without a head if new."""
        if text == self._last[0]:
            return self._last[1]
        key = packed_stream_id(text)
        if key is None:
            i = self._others.get(text)
            if i is None:
                i = self._others[text] = self._new(bytes(_ID))
            return i
        slot = self._slot(key)
        i = self._slots[slot]
        if i == _FREE:
            i = self._slots[slot] = self._new(key)
            if 2 * len(self._versions) > len(self._slots):  # half full: probes stay short
                self._grow()
        return i

    def _slot(self, key: bytes) -> int:
        """The slot holding `key`, or the free one where it would go."""
        slots, ids = self._slots, self._ids
        mask = len(slots) - 1
        slot = hash(key) & mask  # keyed per process, as for dicts: collisions cannot be aimed
        while (i := slots[slot]) != _FREE and ids[_ID * i : _ID * i + _ID] != key:
            slot = (slot + 1) & mask
        return slot

    def _new(self, key: bytes) -> int:
        self._ids += key
        self._versions.append(_NO_HEAD)
        self._digests += bytes(_DIGEST)
        return len(self._versions) - 1

    def _grow(self) -> None:
        slots = _free_slots(2 * len(self._slots))
        mask = len(slots) - 1
        ids = bytes(self._ids)
        others = set(self._others.values())  # not in the table
        for i in range(len(self._versions)):
            if i in others:
                continue
            slot = hash(ids[_ID * i : _ID * i + _ID]) & mask
            while slots[slot] != _FREE:
                slot = (slot + 1) & mask
            slots[slot] = i
        self._slots = slots


def packed_stream_id(stream: str) -> bytes | None:
    """The 16 bytes of a stream id in canonical form (8-4-4-4-12 lowercase hex), else None:
    the round trip refuses upper case and stray characters, so the packing is one-to-one."""
    if len(stream) != 36 or stream[8:24:5] != "----":
        return None
    digits = stream.replace("-", "")
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        return None
    return key if len(key) == _ID and key.hex() == digits else None


def _table_size(streams: int) -> int:
    """The power of two that keeps `streams` at most half the table."""
    size = _FIRST_SLOTS
    while size < 2 * streams:
        size *= 2
    return size


def _free_slots(size: int) -> array[int]:
    slots = array("i")
    slots.frombytes(b"\xff" * (slots.itemsize * size))  # every slot _FREE (-1)
    return slots


class PackedStrings:
    """Strings numbered 0, 1, 2, … in the order first added, packed into one byte string
    (their UTF-8) with an array of ends, found through an open-addressing table like
    `StreamHeads`': ~1.2 times their length plus 16 to 24 bytes each, against ~100 for a
    dict of str objects. Lone surrogates are kept ("surrogatepass"), so the packing is
    one-to-one on every str."""

    __slots__ = ("_blob", "_ends", "_slots")

    def __init__(self) -> None:
        self._blob = bytearray()
        self._ends = array("q")  # string i is _blob[_ends[i - 1] : _ends[i]]
        self._slots = _free_slots(_FIRST_SLOTS)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        return self._bytes(i).decode("utf-8", "surrogatepass")

    def find(self, text: str) -> int | None:
        """The number of `text`, if added."""
        slot = self._slot(text.encode("utf-8", "surrogatepass"))
        return None if self._slots[slot] == _FREE else self._slots[slot]

    def add(self, text: str) -> int:
        """The number of `text`, added if new."""
        key = text.encode("utf-8", "surrogatepass")
        slot = self._slot(key)
        if self._slots[slot] != _FREE:
            return self._slots[slot]
        i = len(self._ends)
        self._slots[slot] = i
        self._blob += key
        self._ends.append(len(self._blob))
        if 2 * len(self._ends) > len(self._slots):
            self._grow()
        return i

    def _bytes(self, i: int) -> bytes:
        return bytes(self._blob[self._ends[i - 1] if i else 0 : self._ends[i]])

    def _slot(self, key: bytes) -> int:
        """The slot holding `key`, or the free one where it would go."""
        slots, blob, ends = self._slots, self._blob, self._ends
        mask = len(slots) - 1
        slot = hash(key) & mask  # keyed per process: an input cannot aim at one run
        while (i := slots[slot]) != _FREE and blob[ends[i - 1] if i else 0 : ends[i]] != key:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        slots = _free_slots(2 * len(self._slots))
        mask = len(slots) - 1
        for i in range(len(self._ends)):
            slot = hash(self._bytes(i)) & mask
            while slots[slot] != _FREE:
                slot = (slot + 1) & mask
            slots[slot] = i
        self._slots = slots
