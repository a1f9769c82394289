"""What both stores (SQLite, PostgreSQL) add to the library's events table, written once.

Tables beside the events (all append-only except `subject_keys`):
    ledger_meta    (key, value)                     origin, log verifier key, format version
    merkle_tree    (node, hash, notification_id)    complete subtrees, write-once; a leaf's
                                                    row also names its event
    checkpoints    (size, note)                     signed checkpoints
    cosignatures   (size, line)                     witness cosignature lines
    subject_keys   (subject, data_key)              per-subject AES keys; NULL once erased

The Merkle tree advances in the transaction that inserts the events, after the insert has
taken the write lock. A node's key is its completion order (`node_key`): the last leaf it
covers, then its level. Every row an append adds therefore sorts after every row before it
and next to the append's other rows, so an append writes one table page (plus the leaf →
event index) where a table per kind of row wrote five, and the log head is not stored at
all: its size is the greatest key's leaf plus one, its right border the nodes that key
implies (`merkle.border_indexes`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger import merkle
from ledger.envelope import decode_envelope, stored_header_bytes
from ledger.errors import (
    KeysOutdated,
    NotFound,
    SignerChanged,
    ValidationError,
    VerificationError,
)

KEY_CACHE_SUBJECTS = 50_000  # subjects whose data keys a process keeps in memory

APPEND_ONLY_TABLES = ("ledger_meta", "merkle_tree", "checkpoints", "cosignatures")
# The tree as ledgers written before merkle_tree keep it (`upgrade_tree_layout` moves it).
OLD_TREE_TABLES = ("merkle_leaves", "merkle_nodes", "log_heads")

LEVEL_BITS = 6  # levels 0..63 fit: a log of 2**57 leaves is far beyond any service's


def node_key(level: int, index: int) -> int:
    """The row key of node (level, index): its last leaf, then its level, so keys sort in
    the order appends complete the nodes (the order `merkle.append_leaves` yields them)."""
    return ((((index + 1) << level) - 1) << LEVEL_BITS) | level


def node_of_key(key: int) -> tuple[int, int]:
    """(level, index) of a row key. A key no append could write (its last leaf not the end
    of a subtree of its level) gives an index whose key differs, which verify reports."""
    level = key & ((1 << LEVEL_BITS) - 1)
    return level, (((key >> LEVEL_BITS) + 1) >> level) - 1


def size_of_top_key(top: int | None) -> int:
    """The log's size from its greatest node key (None: an empty log)."""
    return 0 if top is None else (int(top) >> LEVEL_BITS) + 1


@dataclass(frozen=True)
class LeafRow:
    """One leaf in leaf order, with its event (None if the event row is missing)."""

    leaf_index: int
    notification_id: int
    event: StoredEvent | None
    damage: str | None = None  # why the event row could not be read, if it could not


@dataclass(frozen=True)
class Head:
    size: int
    border: tuple[bytes, ...]


def stored_head(size: int, border: Sequence[bytes]) -> Head:
    """The head derived from the tree: refused if a node of its border is not stored (the
    append would otherwise build on a wrong border)."""
    if len(border) != size.bit_count():
        raise VerificationError(
            f"the log's right border at size {size} is not all stored", step="tree"
        )
    return Head(size, tuple(bytes(h) for h in border))


class LedgerTables:
    """SQL over the ledger's own tables; subclasses provide the dialect and a transaction."""

    placeholder = "?"
    notification_column = "rowid"
    events_table = "stored_events"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_cache: dict[str, bytes | None] = {}  # None: erased
        self._used_keys: dict[str, bytes] = {}  # handed out for the next append
        self._keyless: set[str] = set()  # subjects known to have no key row yet
        self._new_subjects: set[str] = set()  # keys made here, not yet stored
        self._keys_in_flight: set[str] = set()  # being stored by the current append
        self._signer_guard: tuple[UUID, int] | None = None  # see signer_as_of
        self._signer_checked: tuple[UUID, int] | None = None  # the guard the last commit held
        self._signer_checked_pending: tuple[UUID, int] | None = None
        self._head: Head | None = None  # the head after this process's last commit
        self._head_pending: Head | None = None  # the head the append in flight writes
        self._sql: dict[str, str] = {}

    READ_BYTES: Mapping[str, Any] = MappingProxyType({})
    """Extra arguments of `execute` for queries that read envelopes (PostgreSQL: binary)."""

    def table(self, name: str) -> str:
        return name

    def transaction(self, *, commit: bool) -> Any:
        raise NotImplementedError

    def sql(self, template: str) -> str:
        """The template in this store's dialect: table names filled in, `?` as placeholder.
        Memoised: appends ask for the same few statements every time."""
        text = self._sql.get(template)
        if text is None:
            tables = (*APPEND_ONLY_TABLES, *OLD_TREE_TABLES, "subject_keys")
            names = {t: self.table(t) for t in tables}
            text = template.format(events=self.events_table, nid=self.notification_column, **names)
            text = text.replace("?", self.placeholder)
            if len(self._sql) < 1000:  # templates with inlined placeholder lists vary
                self._sql[template] = text
        return text

    # --- the tree, inside the events transaction ---------------------------------------------

    def write_tree(
        self, cursor: Any, head: Head, events: Sequence[StoredEvent], ids: Sequence[int]
    ) -> None:
        """Everything the append adds beside the events, given the head read under the lock."""
        ordered = sorted(zip(ids, events, strict=True), key=lambda pair: pair[0])
        leaf_hashes = [merkle.leaf_hash(stored_header_bytes(e.state)) for _, e in ordered]
        border, nodes = merkle.append_leaves(head.size, head.border, leaf_hashes)
        first = head.size
        self.insert_tree_rows(
            cursor,
            [
                (node_key(level, idx), bytes(h), ordered[idx - first][0] if level == 0 else None)
                for level, idx, h in nodes
            ],
        )
        self._head_pending = Head(first + len(ordered), tuple(border))

    def insert_tree_rows(self, cursor: Any, rows: list[tuple[int, bytes, int | None]]) -> None:
        """(node key, hash, the leaf's notification id or None): one statement."""
        cursor.executemany(
            self.sql("INSERT INTO {merkle_tree} (node, hash, notification_id) VALUES (?, ?, ?)"),
            rows,
        )

    def tree_committed(self, committed: bool) -> None:
        """After the events transaction: the head it wrote is current, or it never was."""
        self._head = self._head_pending if committed else None
        self._head_pending = None
        self._signer_checked = self._signer_checked_pending if committed else None
        self._signer_checked_pending = None

    # --- the signer, checked under the write lock --------------------------------------------
    #
    # The service authorises a signer from its actor state as of that actor's stream version;
    # the append then fails unless the stream is still at that version while the write lock is
    # held, so a key revoked or replaced by another process an instant earlier is never used.

    @contextmanager
    def signer_as_of(self, stream: UUID | None, version: int) -> Iterator[None]:
        self._signer_guard = None if stream is None else (stream, version)
        try:
            yield
        finally:
            self._signer_guard = None

    def check_signer_versions(self, versions: Iterable[int], events: Sequence[StoredEvent]) -> None:
        """`versions`: those of the signer's actor stream after the one it was authorised
        from, as stored now, under the lock; the batch's own events may be among them."""
        if self._signer_guard is None:
            return
        stream = self._signer_guard[0]
        ours = {e.originator_version for e in events if e.originator_id == stream}
        if {int(v) for v in versions} - ours:
            raise SignerChanged(
                "the signer's actor record changed while this was being recorded"
                " (re-keyed or revoked); nothing was written"
            )
        self._signer_checked_pending = None if ours else self._signer_guard

    def signer_checked_at_last_commit(self, events: Sequence[StoredEvent]) -> bool:
        """Whether this process's last commit held the same signer guard and did not change
        that actor itself: if nothing has been appended since (the caller knows), the actor's
        stream is still where the guard says, and need not be read."""
        guard = self._signer_guard
        if guard is None or guard != self._signer_checked:
            return False
        ours = any(e.originator_id == guard[0] for e in events)
        self._signer_checked_pending = None if ours else guard
        return True

    def check_signer_unchanged(self, cursor: Any, events: Sequence[StoredEvent]) -> None:
        """The SQLite form (PostgreSQL reads the versions with the head, in one statement)."""
        if self._signer_guard is None:
            return
        stream, version = self._signer_guard
        cursor.execute(
            self.sql(
                "SELECT originator_version FROM {events}"
                " WHERE originator_id = ? AND originator_version > ?"
            ),
            (self.stream_param(stream), version),
        )
        self.check_signer_versions([r["originator_version"] for r in cursor.fetchall()], events)

    def read_head(self, cursor: Any) -> Head:
        """The head, derived from the tree: its size from the greatest key; its border from
        memory if this process wrote that size last, else read."""
        cursor.execute(self.sql("SELECT max(node) AS top FROM {merkle_tree}"))
        size = size_of_top_key(cursor.fetchone()["top"])
        if self._head is not None and self._head.size == size:
            return self._head
        wanted = [node_key(level, idx) for level, idx in merkle.border_indexes(size)]
        found = self._hashes_by_key(cursor, wanted)
        return stored_head(size, [found[k] for k in wanted if k in found])

    def _hashes_by_key(self, cursor: Any, keys: Sequence[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for chunk in chunks(sorted(set(keys)), 500):
            marks = ", ".join("?" for _ in chunk)
            cursor.execute(
                self.sql(f"SELECT node, hash FROM {{merkle_tree}} WHERE node IN ({marks})"),
                list(chunk),
            )
            found.update((int(r["node"]), bytes(r["hash"])) for r in cursor.fetchall())
        return found

    # --- reads ------------------------------------------------------------------------------

    def head(self) -> Head:
        with self.transaction(commit=False) as c:
            return self.read_head(c)

    def read_hashes(self, indexes: Sequence[tuple[int, int]]) -> Sequence[bytes]:
        """The HashReader of merkle.py: one query for all the nodes a proof needs."""
        if not indexes:
            return []
        keys = [node_key(level, idx) for level, idx in indexes]
        with self.transaction(commit=False) as c:
            found = self._hashes_by_key(c, keys)
        missing = [i for i, k in zip(indexes, keys, strict=True) if k not in found]
        if missing:
            raise NotFound(f"tree nodes missing from the store: {missing[:5]}")
        return [found[k] for k in keys]

    def iter_leaves(
        self, start: int = 0, stop: int | None = None, batch: int = 2000
    ) -> Iterator[LeafRow]:
        """Leaves in order with their events, in batches so memory stays flat."""
        position = start
        while stop is None or position < stop:
            limit = batch if stop is None else min(batch, stop - position)
            with self.transaction(commit=False) as c:
                c.execute(
                    self.sql(
                        "SELECT t.node, t.notification_id, e.originator_id,"
                        " e.originator_version, e.topic, e.state"
                        " FROM {merkle_tree} t"
                        " LEFT JOIN {events} e ON e.{nid} = t.notification_id"
                        " WHERE t.node >= ? AND t.notification_id IS NOT NULL"
                        " ORDER BY t.node LIMIT ?"
                    ),
                    (position << LEVEL_BITS, limit),
                    **self.READ_BYTES,
                )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                yield self._leaf_row(row)
            position = (int(rows[-1]["node"]) >> LEVEL_BITS) + 1

    def leaf_states(self, start: int, stop: int) -> list[tuple[int, bytes | None]]:
        """(leaf index, the event's stored bytes) for the leaves in [start, stop), in one
        query; None where the event row is missing. For readers that take stream and version
        from the signed header (catch-up): no StoredEvent, no UUID, per leaf."""
        with self.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT t.node, e.state FROM {merkle_tree} t"
                    " LEFT JOIN {events} e ON e.{nid} = t.notification_id"
                    " WHERE t.node >= ? AND t.node < ? AND t.notification_id IS NOT NULL"
                    " ORDER BY t.node"
                ),
                (start << LEVEL_BITS, stop << LEVEL_BITS),
                **self.READ_BYTES,
            )
            rows = c.fetchall()
        return [
            (int(r["node"]) >> LEVEL_BITS, None if r["state"] is None else bytes(r["state"]))
            for r in rows
        ]

    def _leaf_row(self, row: Any) -> LeafRow:
        index, nid = int(row["node"]) >> LEVEL_BITS, int(row["notification_id"])
        if row["state"] is None:
            return LeafRow(index, nid, None)
        try:
            stream = _uuid(row["originator_id"])
        except VerificationError as e:
            return LeafRow(index, nid, None, damage=str(e))
        event = StoredEvent(
            originator_id=stream,
            originator_version=int(row["originator_version"]),
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        return LeafRow(index, nid, event)

    def leaf_of(self, stream: UUID, version: int) -> int | None:
        """The leaf index of the event at (stream, version), if it is in the log."""
        with self.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT t.node FROM {merkle_tree} t"
                    " JOIN {events} e ON e.{nid} = t.notification_id"
                    " WHERE e.originator_id = ? AND e.originator_version = ?"
                ),
                (self.stream_param(stream), version),
            )
            row = c.fetchone()
        return None if row is None else int(row["node"]) >> LEVEL_BITS

    def stream_param(self, stream: UUID) -> Any:
        """How this store binds a stream id in a query."""
        return stream.hex

    def events_without_leaf(self) -> list[tuple[str, int]]:
        with self.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT e.originator_id, e.originator_version FROM {events} e"
                    " WHERE NOT EXISTS (SELECT 1 FROM {merkle_tree} t"
                    " WHERE t.notification_id = e.{nid}) ORDER BY e.{nid}"
                )
            )
            return [
                (str(_uuid(r["originator_id"])), int(r["originator_version"])) for r in c.fetchall()
            ]

    def count(self, table: str) -> int:
        with self.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT COUNT(*) AS n FROM {{{table}}}"))
            return int(c.fetchone()["n"])

    def nodes_in_completion_order(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored node, in the order appends complete them — the order of their keys,
        and the order `merkle.append_leaves` yields them."""
        query = self.sql("SELECT node, hash FROM {merkle_tree} ORDER BY node")
        for row in self.stream_rows(query):
            yield (*node_of_key(int(row["node"])), bytes(row["hash"]))

    def stream_rows(self, query: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows of a large query without holding them all in memory."""
        with self.transaction(commit=False) as c:
            c.execute(query, params)
            while True:
                row = c.fetchone()
                if row is None:
                    return
                yield row

    def header_digest(self, stream: UUID, version: int) -> bytes:
        stored = self._select_event(stream, version)
        return decode_envelope(stored.state).header().digest

    def _select_event(self, stream: UUID, version: int) -> StoredEvent:
        found = self.select_events(stream, gt=version - 1, lte=version)  # type: ignore[attr-defined]
        if not found:
            raise NotFound(f"no event {stream} v{version} in the store")
        event: StoredEvent = found[0]
        return event

    # --- the layout before v2 ---------------------------------------------------------------

    def table_exists(self, cursor: Any, name: str) -> bool:
        raise NotImplementedError

    def lock_for_upgrade(self, cursor: Any) -> None:
        """Keep every other writer out until the upgrade commits."""

    def upgrade_tree_layout(self) -> int | None:
        """Move a ledger written with one table per kind of tree row (`OLD_TREE_TABLES`)
        into `merkle_tree`, in one transaction, and drop the old tables. Returns the number
        of leaves moved, or None if there was nothing to upgrade. The old per-append log
        heads are not carried over: they were derived from the nodes, as the head is now,
        and `verify` checked them against the same recomputation it now does for the nodes."""
        with self.transaction(commit=True) as c:
            self.lock_for_upgrade(c)
            if not self.table_exists(c, "merkle_nodes"):
                return None
            c.execute(self.sql("SELECT count(*) AS n FROM {merkle_tree}"))
            if int(c.fetchone()["n"]):
                raise VerificationError(
                    "both tree layouts hold nodes; restore the database from a backup",
                    step="tree",
                )
            c.execute(
                self.sql(
                    "INSERT INTO {merkle_tree} (node, hash, notification_id)"
                    " SELECT ((((n.idx + 1) << n.level) - 1) << 6) | n.level, n.hash,"
                    " l.notification_id FROM {merkle_nodes} n"
                    " LEFT JOIN {merkle_leaves} l ON n.level = 0 AND l.leaf_index = n.idx"
                )
            )
            c.execute(self.sql("SELECT count(*) AS n FROM {merkle_leaves}"))
            leaves = int(c.fetchone()["n"])
            for table in OLD_TREE_TABLES:
                c.execute(self.sql(f"DROP TABLE {{{table}}}"))
        self._head = None
        return leaves

    # --- metadata ---------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        with self.transaction(commit=False) as c:
            c.execute(self.sql("SELECT key, value FROM {ledger_meta}"))
            return {r["key"]: r["value"] for r in c.fetchall()}

    def write_meta(self, values: dict[str, str]) -> None:
        with self.transaction(commit=True) as c:
            c.executemany(
                self.sql("INSERT INTO {ledger_meta} (key, value) VALUES (?, ?)"),
                sorted(values.items()),
            )

    # --- checkpoints ------------------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, str]]:
        with self.transaction(commit=False) as c:
            c.execute(self.sql("SELECT size, note FROM {checkpoints} ORDER BY size"))
            return [(int(r["size"]), r["note"]) for r in c.fetchall()]

    def add_checkpoint(self, size: int, note: str) -> None:
        with self.transaction(commit=True) as c:
            c.execute(
                self.sql("INSERT INTO {checkpoints} (size, note) VALUES (?, ?)"), (size, note)
            )

    def cosignatures(self, size: int) -> list[str]:
        with self.transaction(commit=False) as c:
            c.execute(
                self.sql("SELECT line FROM {cosignatures} WHERE size = ? ORDER BY line"), (size,)
            )
            return [r["line"] for r in c.fetchall()]

    def all_cosignatures(self) -> list[tuple[int, str]]:
        with self.transaction(commit=False) as c:
            c.execute(self.sql("SELECT size, line FROM {cosignatures} ORDER BY size, line"))
            return [(int(r["size"]), r["line"]) for r in c.fetchall()]

    def add_cosignature(self, size: int, line: str) -> bool:
        """Store a cosignature line; False if it was already stored."""
        if line in self.cosignatures(size):
            return False
        with self.transaction(commit=True) as c:
            c.execute(
                self.sql("INSERT INTO {cosignatures} (size, line) VALUES (?, ?)"), (size, line)
            )
        return True

    # --- subject data keys ------------------------------------------------------------------
    #
    # Keys handed out for writing are remembered in `_used` and written (if new) and checked
    # (if old) inside the transaction that stores the events sealed under them: a key is never
    # stored without its events, and a subject erased meanwhile by another process makes the
    # whole append fail rather than seal new data under a destroyed key.

    def data_key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's key; a new one if asked and absent; None once erased.

        Writing under a subject not looked up (the service skips the subjects a batch
        registers) does not read first: a new key is made and the append stores it only if the
        subject has none (`new_keys_clashed`); if it has, the append fails with `KeysOutdated`
        and the service seals again under the stored key.
        """
        if subject not in self._key_cache and subject not in self._keyless:
            if create:
                self._bound_key_cache(1)
                self._keyless.add(subject)
            else:
                self.prefetch_keys([subject])
        key = self._key_cache.get(subject)
        if key is None and create and subject in self._keyless:
            key = os.urandom(32)
            self._key_cache[subject] = key
            self._keyless.discard(subject)
            self._new_subjects.add(subject)
        if key is not None and create:
            self._used_keys[subject] = key
        return key

    def prefetch_keys(self, subjects: Iterable[str]) -> None:
        """Load many subjects' keys in one query (before sealing a batch of events)."""
        cache, keyless = self._key_cache, self._keyless
        wanted = sorted({s for s in subjects if s not in cache and s not in keyless})
        if not wanted:
            return  # all known: no read transaction
        self._bound_key_cache(len(wanted))
        with self.transaction(commit=False) as c:
            for chunk in chunks(wanted, 500):
                marks = ", ".join("?" for _ in chunk)
                c.execute(
                    self.sql(
                        f"SELECT subject, data_key FROM {{subject_keys}} WHERE subject IN ({marks})"
                    ),
                    list(chunk),
                )
                found = {r["subject"]: r["data_key"] for r in c.fetchall()}
                for subject in chunk:
                    if subject not in found:
                        self._keyless.add(subject)  # never had a key: one may be made
                    else:  # None: a tombstone left by erasure
                        key = found[subject]
                        self._key_cache[subject] = None if key is None else bytes(key)

    def _bound_key_cache(self, incoming: int) -> None:
        """Keep a long-lived writer's memory flat: past the limit, forget the older three
        quarters of the cached subjects (read again if needed), never one whose new key is not
        stored yet. Amortised O(1) per subject."""
        if len(self._key_cache) + len(self._keyless) + incoming <= KEY_CACHE_SUBJECTS:
            return
        pinned = self._new_subjects | self._used_keys.keys()
        keep = KEY_CACHE_SUBJECTS // 4
        old = list(self._key_cache)
        for subject in old[: max(0, len(old) - keep)]:
            if subject not in pinned:
                del self._key_cache[subject]
        self._keyless = set()

    def new_keys_clashed(self, subjects: set[str]) -> None:
        """Some subjects we made a key for already have one (or a tombstone): forget ours so
        the service's retry reads theirs, and fail this append."""
        if not subjects:
            return
        for subject in subjects:
            self._forget_key(subject)
        raise KeysOutdated(
            f"{len(subjects)} subject(s) were given a data key by another writer meanwhile",
            frozenset(subjects),
        )

    def take_used_keys(self) -> list[tuple[str, bytes]]:
        """Inside the events transaction: the keys made for new subjects, to insert.

        If another writer made a key for the same subject meanwhile, or the subject was erased
        (its tombstone row exists), the whole append fails and nothing is written. A key
        already stored needs no check: if it is destroyed after we sealed under it, what we
        wrote is erased too, which is what erasure asks.
        """
        new = {s: k for s, k in self._used_keys.items() if s in self._new_subjects}
        self._used_keys.clear()
        self._keys_in_flight = set(new)
        return sorted(new.items())

    def appended(self) -> None:
        """After the events transaction commits: its new keys are stored now."""
        self._new_subjects -= self._keys_in_flight
        self._keys_in_flight = set()

    def _forget_key(self, subject: str) -> None:
        self._key_cache.pop(subject, None)
        self._keyless.discard(subject)
        self._new_subjects.discard(subject)

    def _key_row(self, subject: str) -> Any:
        with self.transaction(commit=False) as c:
            c.execute(self.sql("SELECT data_key FROM {subject_keys} WHERE subject = ?"), (subject,))
            return c.fetchone()

    def destroy_data_key(self, subject: str) -> None:
        """Crypto-shredding: overwrite the key with NULL. The row stays as a tombstone, so no
        new key is ever made for the subject."""
        self._forget_key(subject)
        with self.transaction(commit=True) as c:
            self._null_key(c, subject)

    def _null_key(self, cursor: Any, subject: str) -> None:
        cursor.execute(
            self.sql(
                "INSERT INTO {subject_keys} (subject, data_key) VALUES (?, NULL)"
                " ON CONFLICT (subject) DO UPDATE SET data_key = NULL"
            ),
            (subject,),
        )

    def is_erased(self, subject: str) -> bool:
        row = self._key_row(subject)
        return row is not None and row["data_key"] is None


def _uuid(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise VerificationError(
            f"stored stream id {value!r} is not a UUID", step="leaves"
        ) from None


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def check_subject(subject: str) -> None:
    if not subject or len(subject) > 200 or not subject.isprintable():
        raise ValidationError(f"invalid subject id {subject!r}")
