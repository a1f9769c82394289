"""Re-check everything the ledger claims, from the stored bytes alone.

`EventChecker` is fed envelopes in leaf order and checks what each one can show by itself and
against what came before (signature, signer, chain, digests, disclosures). It holds no store,
so the export-bundle verifier reuses it. `verify_store` adds what only the store has: the
gapless leaves, the stored tree and the checkpoints.

Checks, numbered as printed:
  1 envelopes parse        5 stream chains          9 tree
  2 origin                 6 data digests           10 checkpoints
  3 signatures             7 disclosures
  4 signers                8 leaves
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.roles import Role, may_sign
from ledger import merkle, note
from ledger.actors import LOG_ACTOR, actor_id
from ledger.envelope import (
    SEALED_KEY,
    Envelope,
    Header,
    decode_envelope,
    open_disclosure,
    signing_input,
)
from ledger.erasure import SubjectErasure
from ledger.errors import LedgerError, VerificationError
from ledger.keys import actor_key_id, verify_many, verify_signature
from ledger.stream_state import StreamHeads

ERASURE_TYPE = SubjectErasure.Erased.TYPE

CHECKS = (
    "envelopes parse",
    "origin",
    "signatures",
    "signers",
    "stream chains",
    "data digests",
    "disclosures",
    "leaves",
    "tree",
    "checkpoints",
)

KeyLookup = Callable[[str], "bytes | None"]
Decoded = tuple[Envelope, Header] | LedgerError  # a stored envelope, or why it did not parse
_Signed = tuple[bytes, bytes, bytes]  # (public key, signing input, signature)


@dataclass(frozen=True)
class Failure:
    check: str
    where: str
    message: str

    def line(self) -> str:
        return f"FAIL {self.check}: {self.where}: {self.message}"


@dataclass
class Report:
    """Counts of what passed and every failure, per numbered check."""

    checks: tuple[str, ...] = CHECKS
    passed: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for check in self.checks:
            self.passed.setdefault(check, 0)

    def ok(self, check: str, n: int = 1) -> None:
        self.passed[check] += n

    def fail(self, check: str, where: str, message: str) -> None:
        self.failures.append(Failure(check, where, message))

    @property
    def verified(self) -> bool:
        return not self.failures

    def failed(self, check: str) -> int:
        return sum(1 for f in self.failures if f.check == check)

    def lines(self) -> Iterator[str]:
        width = max(len(c) for c in self.checks)
        for number, check in enumerate(self.checks, 1):
            bad = self.failed(check)
            status = "FAIL" if bad else "OK  "
            detail = f"{self.passed[check]} ok" + (f", {bad} failed" if bad else "")
            extra = f" ({self.notes[check]})" if check in self.notes else ""
            yield f"{number:>2}. {status} {check:<{width}} {detail}{extra}"

    def as_json(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "checks": [
                {
                    "number": n,
                    "check": c,
                    "ok": self.failed(c) == 0,
                    "passed": self.passed[c],
                    "failed": self.failed(c),
                    **({"note": self.notes[c]} if c in self.notes else {}),
                }
                for n, c in enumerate(self.checks, 1)
            ],
            "failures": [f.__dict__ for f in self.failures],
        }


@dataclass
class _ActorState:
    roles: frozenset[Role]
    public_key: bytes
    key_id: str
    revoked: bool = False


class EventChecker:
    """Checks envelopes fed in leaf order, keeping only actors and stream heads in memory."""

    def __init__(
        self,
        report: Report,
        *,
        origin: str,
        log_public_key: bytes,
        data_keys: KeyLookup | None = None,
    ) -> None:
        self.report = report
        self.origin = origin
        self.data_keys = data_keys
        self.actors: dict[str, _ActorState] = {
            LOG_ACTOR: _ActorState(
                frozenset({Role.LOG}), log_public_key, actor_key_id(log_public_key)
            )
        }
        self.streams = StreamHeads()  # the only state that grows with the log: packed
        self._actor_streams: dict[str, str] = {}  # actor stream id → actor name
        self.erased: set[str] = set()  # subjects whose key is gone (erased, or lost)
        self.erasures_recorded: set[str] = set()  # subjects of signed `subject.erased` events
        self.count = 0
        self._verified: set[_Signed] = set()  # the current batch's, if all verified

    def feed(self, where: str, raw: bytes) -> Header | None:
        """Check one stored envelope; returns its header if it parsed."""
        return self.feed_decoded(where, decode(raw))

    def feed_decoded(self, where: str, decoded: Decoded) -> Header | None:
        """`feed`, for an envelope already run through `decode`."""
        self.count += 1
        r = self.report
        if isinstance(decoded, LedgerError):
            r.fail("envelopes parse", where, decoded.diagnostics())
            return None
        envelope, header = decoded
        r.ok("envelopes parse")
        where = f"{where} stream {header.stream} v{header.version} ({header.type})"
        if header.origin == self.origin:
            r.ok("origin")
        else:
            r.fail("origin", where, f"origin {header.origin!r} is not this ledger's")
        signed_ok = self._check_signature(where, header, envelope.signature)
        permitted = signed_ok and self._check_signer(where, header)
        self._check_chain(where, header)
        data_ok = self._check_data(where, header, envelope)
        if permitted and data_ok:
            self._apply_actor_event(where, header, envelope)
            if header.type == ERASURE_TYPE and header.subject:
                self.erasures_recorded.add(header.subject)
        return header

    def keys_lost_without_erasure(self) -> list[str]:
        """Subjects whose sealed fields could not be opened for want of a key, with no signed
        erasure in the log: a key deleted or overwritten behind the ledger's back."""
        return sorted(self.erased - self.erasures_recorded)

    def preverify(self, signed: Iterable[tuple[Header, bytes]]) -> None:
        """Verify the next batch's signatures at once, on every core (libsodium releases the
        GIL), each with its signer's key as it stands before the batch.

        Only a speed-up: `_check_signature` still decides every signature in leaf order. If the
        whole batch verifies, it takes those (key, input, signature) triples as verified; if
        any fails, none is taken, so each is checked alone and reported exactly as without the
        batch. A key that changes inside the batch just misses and is checked alone too.
        """
        items: list[_Signed] = []
        for header, signature in signed:
            actor = self.actors.get(header.actor)
            if actor is not None and header.key_id == actor.key_id:
                items.append((actor.public_key, signing_input(header.raw), signature))
        self._verified = set()
        try:
            verify_many(items)
        except LedgerError:
            return
        self._verified = set(items)

    def _check_signature(self, where: str, header: Header, signature: bytes) -> bool:
        actor = self.actors.get(header.actor)
        if actor is None:
            self.report.fail("signatures", where, f"signer {header.actor!r} was never enrolled")
            return False
        if header.key_id != actor.key_id:
            self.report.fail(
                "signatures",
                where,
                f"key {header.key_id} is not {header.actor!r}'s key at this point of the log",
            )
            return False
        signed = (actor.public_key, signing_input(header.raw), signature)
        if signed not in self._verified:
            try:
                verify_signature(*signed)
            except LedgerError:
                self.report.fail(
                    "signatures", where, f"signature by {header.actor!r} does not verify"
                )
                return False
        self.report.ok("signatures")
        return True

    def _check_signer(self, where: str, header: Header) -> bool:
        actor = self.actors[header.actor]
        if actor.revoked:
            self.report.fail("signers", where, f"{header.actor!r} was revoked before signing this")
            return False
        if not may_sign(actor.roles, header.type):
            roles = ", ".join(sorted(actor.roles))
            self.report.fail(
                "signers", where, f"{header.actor!r} ({roles}) may not sign {header.type!r}"
            )
            return False
        self.report.ok("signers")
        return True

    def _check_chain(self, where: str, header: Header) -> None:
        last = self.streams.replace(header.stream, header.version, header.digest)
        if last is None and self.began_earlier(header):
            self.report.ok("stream chains")
            return
        expected_version = 1 if last is None else last[0] + 1
        expected_prev = None if last is None else last[1].hex()
        if header.version != expected_version:
            self.report.fail(
                "stream chains", where, f"version {header.version}, expected {expected_version}"
            )
        elif header.prev != expected_prev:
            self.report.fail("stream chains", where, "previous-envelope hash does not match")
        else:
            self.report.ok("stream chains")

    def began_earlier(self, header: Header) -> bool:
        """Whether a stream first seen here may have begun before what is checked (never,
        for a whole log)."""
        return False

    def _check_data(self, where: str, header: Header, envelope: Envelope) -> bool:
        if hashlib.sha256(envelope.data_bytes).hexdigest() != header.data_digest:
            self.report.fail("data digests", where, "data does not match the signed digest")
            return False
        self.report.ok("data digests")
        self._check_disclosures(where, header, envelope)
        return True

    def _check_disclosures(self, where: str, header: Header, envelope: Envelope) -> None:
        try:
            sealed = envelope.data().get(SEALED_KEY, {})
            encrypted = envelope.disclosures()
        except LedgerError as e:
            self.report.fail("disclosures", where, e.diagnostics())
            return
        if not isinstance(sealed, dict) or not all(isinstance(d, str) for d in sealed.values()):
            self.report.fail("disclosures", where, f"{SEALED_KEY} is not an object of digests")
            return
        if set(encrypted) - set(sealed):
            self.report.fail("disclosures", where, "a disclosure has no sealed digest")
        if not sealed:
            return
        key = self.data_keys(header.subject) if self.data_keys and header.subject else None
        if key is None:
            self.erased.add(header.subject or "")
            return
        for name, digest in sorted(sealed.items()):
            if name not in encrypted:
                self.report.fail("disclosures", where, f"no disclosure for sealed {name!r}")
                continue
            try:
                open_disclosure(
                    encrypted[name],
                    key,
                    stream=header.stream,
                    version=header.version,
                    name=name,
                    digest=digest,
                )
                self.report.ok("disclosures")
            except VerificationError as e:
                self.report.fail("disclosures", where, str(e))

    def _apply_actor_event(self, where: str, header: Header, envelope: Envelope) -> None:
        """Enrolments, re-keys and revocations take effect from their own leaf onward.

        One whose data is malformed, or that enrols a name already enrolled or outside the
        name's own stream (which would replace a key or undo a revocation), has no effect.
        """
        if not header.type.startswith("actor."):
            return
        try:
            data = envelope.data()
            if header.type == "actor.enrolled":
                name, roles = data["name"], frozenset(Role(r) for r in data["roles"])
                public_key = _public_key(data)
            elif header.type == "actor.rekeyed":
                public_key = _public_key(data)
        except (LedgerError, LookupError, TypeError, ValueError):
            self.report.fail("envelopes parse", where, f"malformed {header.type!r} data")
            return
        if header.type == "actor.enrolled":
            if not isinstance(name, str) or header.stream != str(actor_id(name)):
                self.report.fail("signers", where, "an enrolment outside the actor's own stream")
            elif name in self.actors:
                self.report.fail("signers", where, f"{name!r} is already enrolled")
            else:
                self.actors[name] = _ActorState(roles, public_key, actor_key_id(public_key))
                self._actor_streams[header.stream] = name
            return
        name = self._actor_streams.get(header.stream)
        if name is None:
            return
        if header.type == "actor.rekeyed":
            self.actors[name].public_key = public_key
            self.actors[name].key_id = actor_key_id(public_key)
        elif header.type == "actor.revoked":
            self.actors[name].revoked = True


def _public_key(data: dict[str, Any]) -> bytes:
    """The base64 Ed25519 public key of an actor event's data; ValueError if it is not one."""
    encoded = data["public_key"]
    if not isinstance(encoded, str):
        raise TypeError("public_key is not a string")
    key = base64.b64decode(encoded, validate=True)
    if len(key) != 32:
        raise ValueError("public_key is not 32 bytes")
    return key


def decode(raw: bytes) -> Decoded:
    """A stored envelope and its header, or the error that `feed_decoded` will report."""
    try:
        envelope = decode_envelope(raw)
        return envelope, envelope.header()
    except LedgerError as e:
        return e


def split_after_actor_events(headers: Sequence[Header | None]) -> Iterator[slice]:
    """A batch's parts, each ending at an actor event, so that `preverify` of the next part
    sees the keys that event enrols or changes (they are rare: most batches stay whole)."""
    start = 0
    for i, header in enumerate(headers):
        if header is not None and header.type.startswith("actor."):
            yield slice(start, i + 1)
            start = i + 1
    if start < len(headers):
        yield slice(start, len(headers))


def check_tree(
    report: Report,
    leaf_hashes: bytes,
    stored_nodes: Iterable[tuple[int, int, bytes]],
    *,
    root_sizes: Iterable[int] = (),
) -> dict[int, bytes]:
    """Recompute the tree from the leaves and compare the stored nodes (in completion order)
    — every one, so the log head, which the store derives from them, is checked too. Returns
    the recomputed root at each of `root_sizes` (the checkpoints' sizes) that the log
    reaches: a root costs log2(size) hashes, so only the sizes asked for get one."""
    size = len(leaf_hashes) // merkle.HASH_SIZE
    wanted = {s for s in root_sizes if 0 <= s <= size}
    roots = {0: bytes(merkle.EMPTY_ROOT)} if 0 in wanted else {}
    node_iter = iter(stored_nodes)
    border: list[bytes] = []  # plain bytes: this loop runs once per leaf
    sha256 = hashlib.sha256
    bad_nodes = 0
    for i in range(size):
        node = leaf_hashes[i * 32 : (i + 1) * 32]
        completed = [(0, i, node)]
        level = 0
        while i >> level & 1:  # each trailing 1 bit of i closes a subtree with the border
            node = sha256(b"\x01" + border.pop() + node).digest()
            level += 1
            completed.append((level, i >> level, node))
        border.append(node)
        for expected in completed:
            if next(node_iter, None) != expected:
                bad_nodes += 1
                if bad_nodes <= 5:
                    report.fail(
                        "tree",
                        f"node ({expected[0]}, {expected[1]})",
                        "stored hash differs or is missing",
                    )
        if i + 1 in wanted:
            roots[i + 1] = bytes(merkle.root_from_border(i + 1, border))
    extra = sum(1 for _ in node_iter)
    if extra:
        report.fail("tree", "merkle_tree", f"{extra} stored node(s) beyond the leaves")
    if bad_nodes > 5:
        report.fail("tree", "merkle_tree", f"{bad_nodes} stored nodes differ in all")
    if report.failed("tree") == 0:
        report.ok("tree", size)
    return roots


def check_checkpoints(
    report: Report,
    checkpoints: Iterable[tuple[int, str]],
    roots: Mapping[int, bytes],
    *,
    log_size: int,
    origin: str,
    log_name: str,
    log_public_key: bytes,
) -> None:
    """Every stored checkpoint is signed by the log key and names the recomputed root
    (`roots`, from `check_tree`, at every checkpoint size up to `log_size`)."""
    verifier = note.NoteVerifierKey(log_name, log_public_key)
    for size, text in checkpoints:
        where = f"checkpoint at size {size}"
        try:
            opened = note.open_note(text, [verifier])
            cp = note.parse_checkpoint(opened.text)
        except LedgerError as e:
            report.fail("checkpoints", where, e.diagnostics())
            continue
        if cp.origin != origin or cp.size != size:
            report.fail("checkpoints", where, "origin or size differs from the stored row")
        elif size > log_size or size not in roots:
            report.fail("checkpoints", where, f"names size {size} but the log has {log_size}")
        elif bytes(cp.root_hash) != roots[size]:
            report.fail("checkpoints", where, "root differs from the tree recomputed from leaves")
        else:
            report.ok("checkpoints")


def check_cosignatures(
    report: Report, cosignatures: Iterable[tuple[int, str]], checkpoint_sizes: Iterable[int]
) -> None:
    """Each stored cosignature is a well-formed cosignature/v1 line for a stored checkpoint.
    Whose signature it is, and whether it verifies, only the witness's own key can tell; a
    regulator checks that with `verify-bundle --witness-key`."""
    sizes = set(checkpoint_sizes)
    for size, line in cosignatures:
        where = f"cosignature at size {size}"
        try:
            note.parse_cosignature(line)
        except LedgerError as e:
            report.fail("checkpoints", where, f"not a cosignature line: {e.diagnostics()}")
            continue
        if size not in sizes:
            report.fail("checkpoints", where, "no checkpoint of this size is stored")
