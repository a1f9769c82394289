"""Fixed-size records numbered 0, 1, 2, …, most of them in a temporary file.

verify-bundle keeps a few records per entry for the whole run (a digest of each line, each
incident's metric inputs): at 10^6 entries, tens of megabytes. Here only the newest
`block` records are in memory; older ones are written to an unnamed temporary file, in the
operating system's page cache rather than this process's memory, and read back (a record,
or all in order) when asked for. Every file operation seeks first, so reads, rewrites and
appends may interleave (one thread; but not appends with a pass over all). Not a database:
the verifier needs none.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from typing import IO, Any

_BLOCK = 1 << 14  # records kept in memory before they are written out


class SpilledRecords:
    """Records of one `struct` layout, appended, read and rewritten by number."""

    __slots__ = ("_block", "_file", "_layout", "_tail", "_written")

    def __init__(self, layout: struct.Struct, block: int | None = None) -> None:
        self._layout = layout
        self._block = block or _BLOCK
        self._file: IO[bytes] | None = None  # made when the first block is written out
        self._written = 0  # records in the file
        self._tail = bytearray()  # the records after them

    def __len__(self) -> int:
        return self._written + len(self._tail) // self._layout.size

    def append(self, *values: Any) -> None:
        self._tail += self._layout.pack(*values)
        if len(self._tail) >= self._block * self._layout.size:
            self._write_tail()

    def __getitem__(self, k: int) -> tuple[Any, ...]:
        size = self._layout.size
        if k >= self._written:
            return self._layout.unpack_from(self._tail, (k - self._written) * size)
        assert self._file is not None and k >= 0
        self._file.seek(k * size)
        return self._layout.unpack(self._file.read(size))

    def __setitem__(self, k: int, values: tuple[Any, ...]) -> None:
        size = self._layout.size
        if k >= self._written:
            self._layout.pack_into(self._tail, (k - self._written) * size, *values)
            return
        assert self._file is not None and k >= 0
        self._file.seek(k * size)
        self._file.write(self._layout.pack(*values))

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Every record in order, read a block at a time."""
        size = self._layout.size
        for start in range(0, self._written, self._block):
            assert self._file is not None
            self._file.seek(start * size)
            count = min(self._block, self._written - start)
            yield from self._layout.iter_unpack(self._file.read(count * size))
        yield from self._layout.iter_unpack(bytes(self._tail))

    def _write_tail(self) -> None:
        if self._file is None:
            # Unnamed, removed when closed (by `close`, or when collected).
            self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._file.seek(self._written * self._layout.size)
        self._file.write(self._tail)
        self._written += len(self._tail) // self._layout.size
        self._tail = bytearray()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
