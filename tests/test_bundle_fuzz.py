"""Fuzzing the bundle verifier: a valid bundle, mutated in every way hypothesis can think of,
never verifies, and the verifier never raises anything but the ledger's own errors.

One bundle is made per module, on SQLite: the second export of a ledger (from the checkpoint
of the first), with `--disclose personal`, so it has context lines, a left border, a
consistency proof, entries with data, with plaintext disclosures, and an erased subject's
(`{}`). Each example mutates it one way, rebuilds the zip and runs what `verify-bundle` runs
(`ledger.bundle.verify_bundle`, then `projections.bundles.check_bundle_metrics`):

- member bytes: bytes replaced, inserted or deleted in any member;
- whole lines of entries.jsonl or context.jsonl: dropped, repeated, swapped or moved (and,
  for entries, renumbered so the leaf indexes still run on);
- JSON fields of the manifest or of an entry or context line, or of the header or data inside
  an entry: a value changed (to a near value or one of another type), a member removed or
  added;
- the manifest re-signed by the log key after a field changed (the provider, who holds the
  key, lying about the bundle's range, counts, level, metrics or previous checkpoint);
- the zip container's own bytes.

A mutation that leaves every member's content as it was (swapping two equal lines, a zip
byte nothing reads) is no mutation and is skipped with `assume`. The CI run is a few thousand
examples; `-m slow` runs thirty times as many. The pinned tests at the end are the bundles
that verified, or crashed the verifier, before the fixes they name.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.roles import Role
from ledger import bundle_workers, merkle, note
from ledger.app import open_app
from ledger.bundle import (
    ACTOR_EVENTS,
    MANIFEST_SIGNATURE_CONTEXT,
    BundleVerification,
    Entry,
    verify_bundle,
)
from ledger.canonical import canonical_bytes
from ledger.envelope import decode_envelope
from ledger.errors import LedgerError, ValidationError
from ledger.setup import init_ledger
from projections.bundles import MetricsFold, check_bundle_metrics
from tests.conftest import FAST_KDF, ORIGIN, PASSPHRASE, Ledger
from tests.history import add_incidents, setup_ward
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
CI_EXAMPLES = 4000
WORKER_EXAMPLES = 500  # each starts two worker processes (~30 ms)
LONG = 30
Members = dict[str, bytes]


@dataclass(frozen=True)
class Bundle:
    members: Members  # in the zip's order
    raw: bytes  # the zip as exported
    previous: str  # the checkpoint it continues from
    vkey: str
    ledger: Ledger
    work: Path

    @property
    def trusted(self) -> note.NoteVerifierKey:
        return note.parse_verifier_key(self.vkey)

    def write(self, members: Members | None = None, raw: bytes | None = None) -> Path:
        path = self.work / "mutant.bundle"
        path.write_bytes(raw if raw is not None else zip_bytes(members or self.members))
        return path


def zip_bytes(members: Members) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.getvalue()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    work = tmp_path_factory.mktemp("fuzz")
    db = f"sqlite:///{work / 'ledger.db'}"
    made = init_ledger(
        work / "ledger",
        origin=ORIGIN,
        db=db,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=FAST_KDF,
    )
    ledger = Ledger(work / "ledger", db, made.log_key, made.admin_key)

    def cli(*args: str) -> str:
        result = run_cli(["--dir", str(ledger.directory), *args], env=ENV)
        assert result.exit_code == 0, result.stderr
        return str(result.stdout)

    service = setup_ward(ledger)
    add_incidents(service, 4)
    service.app.close()
    cli("checkpoint")
    previous = cli("checkpoint", "show")
    (work / "previous.txt").write_text(previous)
    app = ledger.open()
    ledger.enrol(app, "rita", Role.RECORDER)
    service = ledger.service(app, "lee")
    service.register_person("P-ERASED", "ward-3", full_name="Forget Me")
    add_incidents(service, 3, seed=5, offset=30)
    service.erase_subject("P-ERASED", "retention period ended")
    app.close()
    cli("checkpoint")
    out = work / "q2.bundle"
    cli(
        "export",
        "--out",
        str(out),
        "--from-checkpoint",
        str(work / "previous.txt"),
        "--disclose",
        "personal",
    )
    raw = out.read_bytes()
    with zipfile.ZipFile(out) as z:
        members = {name: z.read(name) for name in z.namelist()}
    made_bundle = Bundle(members, raw, previous, cli("checkpoint", "--vkey").strip(), ledger, work)
    assert verdict(made_bundle, out, with_previous=True) is None, "the bundle must verify"
    assert verdict(made_bundle, out, with_previous=False) is None
    shown = [json.loads(line)["disclosures"] for line in lines_of(members, "entries.jsonl")]
    assert members["context.jsonl"] and members["consistency.txt"] and members["metrics.json"]
    assert {} in shown and any(shown), "disclosures, and an erased subject's, are shown"
    return made_bundle


def verify(bundle: Bundle, path: Path, *, with_previous: bool) -> BundleVerification:
    """What verify-bundle runs: the checklist, folding the metrics as it goes, then the
    metrics check."""
    fold = MetricsFold()
    result = verify_bundle(
        path,
        trusted_key=bundle.trusted,
        previous_checkpoint=bundle.previous if with_previous else None,
        on_event=fold.add,
    )
    check_bundle_metrics(path, result, fold)
    return result


def verdict(bundle: Bundle, path: Path, *, with_previous: bool) -> str | None:
    """None if the bundle verifies, else why not: the first failed check, or "unusable" when
    the verifier refused it with one of the ledger's own errors. Any other exception escapes
    (and fails the test)."""
    try:
        report = verify(bundle, path, with_previous=with_previous).report
    except (LedgerError, DomainError):
        return "unusable"
    return report.failures[0].check if report.failures else None


# --- mutations ---------------------------------------------------------------------------------


def lines_of(members: Members, name: str) -> list[bytes]:
    return members[name].splitlines(keepends=True)


def encode_json(value: Any) -> bytes:
    """Canonical JSON where the value allows it, else sorted compact JSON (huge integers)."""
    try:
        return canonical_bytes(value)
    except ValidationError:
        return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@functools.cache
def structural_positions(raw: bytes) -> tuple[int, ...]:
    """Where edits are most likely to slip past a lax parser: every line end, quote,
    separator and padding character."""
    marks = {ord(c) for c in '\n"{}[],:='}
    return tuple(i for i, b in enumerate(raw) if b in marks) or (0,)


@st.composite
def byte_edits(draw: st.DrawFn, members: Members) -> Members:
    """One to three bytes replaced, runs inserted or deleted, in one member."""
    name = draw(st.sampled_from(sorted(members)))
    raw = bytearray(members[name])
    marks = st.sampled_from(structural_positions(members[name]))
    for _ in range(draw(st.integers(1, 3))):
        ends = st.sampled_from((0, len(raw) - 1, len(raw)))
        at = max(0, min(draw(ends | marks | st.integers(0, len(raw))), len(raw)))
        edit = draw(st.sampled_from(("flip", "replace", "insert", "delete")))
        if edit == "flip" and at < len(raw):
            raw[at] ^= draw(st.integers(1, 255))
        elif edit == "replace" and at < len(raw):
            raw[at] = draw(st.sampled_from(b'AZaz09+/="{}[],:\n\r -'))
        elif edit == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8) | st.just(b"\n"))
        else:
            del raw[at : at + draw(st.integers(1, 16))]
    return {**members, name: bytes(raw)}


@st.composite
def line_edits(draw: st.DrawFn, members: Members) -> Members:
    """A whole line of entries.jsonl or context.jsonl dropped, repeated, swapped or moved."""
    name = draw(st.sampled_from(("entries.jsonl", "context.jsonl")))
    lines = lines_of(members, name)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    edit = draw(st.sampled_from(("drop", "repeat", "swap", "move")))
    if edit == "drop":
        del lines[i]
    elif edit == "repeat":
        lines.insert(j, lines[i])
    elif edit == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(j, lines.pop(i))
    if name == "entries.jsonl" and draw(st.booleans()):  # keep the leaf indexes running on
        first = json.loads(lines_of(members, name)[0])["leaf"]
        lines = [
            canonical_bytes({**json.loads(line), "leaf": first + n}) + b"\n"
            for n, line in enumerate(lines)
        ]
    return {**members, name: b"".join(lines)}


Path_ = tuple[str | int, ...]


def node_paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every member and array item inside a JSON value."""
    found: list[Path_] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        found.append((*prefix, key))
        found += node_paths(child, (*prefix, key))
    return found


def get(value: Any, path: Path_) -> Any:
    for key in path:
        value = value[key]
    return value


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.text(max_size=12)
    | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def near_values(draw: st.DrawFn, old: Any) -> Any:
    """A value close to `old`: the same type, slightly changed."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return old + draw(st.sampled_from((-1, 1, 2**32, -(2 * old) - 1)))
    if isinstance(old, str):
        try:
            raw = bytearray(base64.b64decode(old, validate=True))
        except (binascii.Error, ValueError):
            raw = None
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
            return base64.b64encode(bytes(raw)).decode()
        return draw(st.sampled_from((old + "x", old[:-1], old.upper(), "")))
    if isinstance(old, list):
        return old[:-1] if old else [None]
    if isinstance(old, dict):
        return {k: v for k, v in list(old.items())[:-1]}
    return draw(st.sampled_from(("", 0, False, [], {})))


@st.composite
def edit_json(draw: st.DrawFn, doc: Any, *, depth: int = 0) -> Any:
    """`doc` with one node changed, removed or a member added; inside base64 headers and
    data, sometimes the decoded JSON is edited and re-encoded instead."""
    doc = json.loads(json.dumps(doc))
    paths = node_paths(doc)
    path = draw(st.sampled_from(paths)) if paths else ()
    parent = get(doc, path[:-1]) if path else doc
    old = get(doc, path) if path else doc
    if (
        depth == 0
        and path in (("header",), ("data",))
        and isinstance(old, str)
        and draw(st.booleans())
    ):
        inner = json.loads(base64.b64decode(old))
        parent[path[-1]] = base64.b64encode(encode_json(draw(edit_json(inner, depth=1)))).decode()
        return doc
    edit = draw(st.sampled_from(("near", "any", "remove", "add")))
    if not path or edit == "add":
        target = old if isinstance(old, dict) else parent if isinstance(parent, dict) else None
        if target is None:
            return doc if not path else _set(doc, path, draw(json_values))
        target[draw(st.text(max_size=8))] = draw(json_values)
    elif edit == "remove":
        del parent[path[-1]]
    else:
        value = draw(near_values(old)) if edit == "near" else draw(json_values)
        parent[path[-1]] = value
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    get(doc, path[:-1])[path[-1]] = value
    return doc


@st.composite
def json_edits(draw: st.DrawFn, members: Members) -> Members:
    name = draw(st.sampled_from(("manifest.json", "entries.jsonl", "context.jsonl")))
    if name == "manifest.json":
        return {**members, name: encode_json(draw(edit_json(json.loads(members[name]))))}
    lines = lines_of(members, name)
    n = draw(st.integers(0, len(lines) - 1))
    lines[n] = encode_json(draw(edit_json(json.loads(lines[n])))) + b"\n"
    return {**members, name: b"".join(lines)}


RESIGNABLE = (
    "format",
    "origin",
    "range",
    "disclosure",
    "previous_size",
    "counts",
    "metrics_sha256",
)


def resigned_edits(
    sign: Callable[[bytes], bytes],
) -> Callable[[Members], st.SearchStrategy[Members]]:
    """The provider changes what the manifest says (not its recipient, creation time or
    scope, which it may state as it likes) and signs it again with the log key."""

    @st.composite
    def edits(draw: st.DrawFn, members: Members) -> Members:
        doc = json.loads(members["manifest.json"])
        paths = [p for p in node_paths(doc) if p[0] in RESIGNABLE]
        path = draw(st.sampled_from(paths))
        old = get(doc, path)
        choices = {
            "disclosure": st.sampled_from(("none", "data")),
            "previous_size": st.none() | st.integers(0, 100),
        }
        value = draw(
            choices.get(str(path[0]), near_values(old)) if len(path) == 1 else near_values(old)
        )
        _set(doc, path, value)
        body = encode_json(doc)
        return {
            **members,
            "manifest.json": body,
            "manifest.sig": base64.b64encode(sign(MANIFEST_SIGNATURE_CONTEXT + body)) + b"\n",
        }

    return edits


@st.composite
def container_edits(draw: st.DrawFn, raw: bytes) -> bytes:
    """Bytes of the zip file itself replaced, inserted or deleted."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(("flip", "insert", "delete")))
        if edit == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


def readable_members(raw: bytes) -> Members | None:
    """The members as Python's zipfile reads them, or None if it cannot."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return {name: z.read(name) for name in z.namelist()}
    except Exception:  # any failure to read means: not the same content
        return None


def only_unknown_signatures_added(original: bytes, mutated: bytes, vkey: str) -> bool:
    """checkpoint.txt with extra signature lines of keys the verifier does not know: a signed
    note ignores those, so the checkpoint is the same one."""
    try:
        before = note.open_note(original.decode(), [note.parse_verifier_key(vkey)])
        after = note.open_note(mutated.decode(), [note.parse_verifier_key(vkey)])
    except (LedgerError, UnicodeDecodeError):
        return False
    return after.text == before.text and after.signatures == before.signatures


# --- the property ----------------------------------------------------------------------------


KINDS = ("bytes", "lines", "json", "resigned", "container")


def _mutants(bundle: Bundle, data: st.DataObject, kind: str) -> tuple[Members | None, bytes | None]:
    """A mutated bundle: its members (rezipped by the caller) or, for "container", its zip."""
    members = bundle.members
    if kind == "container":
        raw = data.draw(container_edits(bundle.raw))
        read = readable_members(raw)
        assume(read is None or read != members)
        return None, raw
    strategy = {
        "bytes": byte_edits,
        "lines": line_edits,
        "json": json_edits,
        "resigned": resigned_edits(bundle.ledger.log_key.sign),
    }[kind]
    mutated = data.draw(strategy(members))
    assume(mutated != members)
    changed = [name for name in members if mutated[name] != members[name]]
    assume(
        changed != ["checkpoint.txt"]
        or not only_unknown_signatures_added(
            members["checkpoint.txt"], mutated["checkpoint.txt"], bundle.vkey
        )
    )
    return mutated, None


def _never_verifies(bundle: Bundle, data: st.DataObject, kind: str) -> None:
    members, raw = _mutants(bundle, data, kind)
    path = bundle.write(members, raw)
    why = verdict(bundle, path, with_previous=data.draw(st.booleans()))
    event(f"first failed check: {why or 'NONE, VERIFIED'}")  # --hypothesis-show-statistics
    assert why is not None, "a mutated bundle verified"


COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=CI_EXAMPLES // len(KINDS), **COMMON)
@given(data=st.data())
def test_a_mutated_bundle_never_verifies(bundle: Bundle, kind: str, data: st.DataObject) -> None:
    _never_verifies(bundle, data, kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=CI_EXAMPLES // len(KINDS) * LONG, **COMMON)
@given(data=st.data())
def test_a_mutated_bundle_never_verifies_long(
    bundle: Bundle, kind: str, data: st.DataObject
) -> None:
    _never_verifies(bundle, data, kind)


def outcome(bundle: Bundle, path: Path, *, with_previous: bool, workers: int) -> Any:
    """All that verify-bundle makes of a bundle (with this many worker processes)."""
    fold = MetricsFold()
    try:
        result = verify_bundle(
            path,
            trusted_key=bundle.trusted,
            previous_checkpoint=bundle.previous if with_previous else None,
            on_event=fold,
            workers=workers,
        )
        check_bundle_metrics(path, result, fold)
    except (LedgerError, DomainError) as e:
        return ("refused", type(e).__name__, str(e))
    r = result.report
    return r.failures, r.passed, r.notes, list(result.events), fold.metrics(), fold.problems


@settings(max_examples=WORKER_EXAMPLES, **COMMON)
@given(data=st.data())
def test_a_mutant_gets_the_same_report_with_worker_processes(
    bundle: Bundle, data: st.DataObject
) -> None:
    """Checked by worker processes (chunks of two lines, so many are in flight), a mutant
    gets the one-process verifier's report, failure for failure, or its refusal."""
    members, raw = _mutants(bundle, data, data.draw(st.sampled_from(KINDS)))
    path = bundle.write(members, raw)
    with_previous = data.draw(st.booleans())
    alone = outcome(bundle, path, with_previous=with_previous, workers=0)
    with (
        patch.object(bundle_workers, "CHUNK_LINES", 2),
        patch.object(bundle_workers, "FIRST_CHUNK_LINES", 1),
    ):
        assert outcome(bundle, path, with_previous=with_previous, workers=2) == alone


@settings(max_examples=12, **COMMON)
@given(data=st.data())
def test_verify_bundle_command_refuses_mutants_without_a_traceback(
    bundle: Bundle, data: st.DataObject
) -> None:
    members, raw = _mutants(bundle, data, data.draw(st.sampled_from(KINDS)))
    path = bundle.write(members, raw)
    result = run_cli(["verify-bundle", str(path), "--trusted-key", bundle.vkey])
    assert result.exit_code in (1, 2), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
    assert "verified leaves" not in result.stdout


# --- pinned: bundles that verified, or crashed the verifier, before the fixes -------------------


def failures(bundle: Bundle, members: Members, *, with_previous: bool = False) -> str:
    """The verifier's FAIL lines (or its refusal) for a bundle with these members."""
    try:
        result = verify(bundle, bundle.write(members), with_previous=with_previous)
    except LedgerError as e:
        return f"REFUSED {e.diagnostics()}"
    assert not result.report.verified
    return "\n".join(f.line() for f in result.report.failures)


def edit_lines(members: Members, name: str, change: Callable[[dict[str, Any]], bool]) -> Members:
    """Apply `change` to the first line it accepts (returns True for)."""
    lines = [json.loads(line) for line in lines_of(members, name)]
    assert any(change(line) for line in lines), "no line to change"
    return {**members, name: b"".join(canonical_bytes(line) + b"\n" for line in lines)}


def header_of(line: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(line["header"])))


def resign(bundle: Bundle, members: Members, **changes: Any) -> Members:
    doc = json.loads(members["manifest.json"])
    doc.update(changes)
    body = canonical_bytes(doc)
    signature = bundle.ledger.log_key.sign(MANIFEST_SIGNATURE_CONTEXT + body)
    return {**members, "manifest.json": body, "manifest.sig": base64.b64encode(signature) + b"\n"}


@pytest.mark.parametrize("name", ["entries.jsonl", "context.jsonl"])
def test_a_last_line_without_its_newline_is_refused(bundle: Bundle, name: str) -> None:
    members = {**bundle.members, name: bundle.members[name][:-1]}
    assert "does not end with a newline" in failures(bundle, members)


def test_a_manifest_signature_without_its_newline_does_not_verify(bundle: Bundle) -> None:
    members = {**bundle.members, "manifest.sig": bundle.members["manifest.sig"][:-1]}
    assert "FAIL log signatures: manifest.sig" in failures(bundle, members)


@pytest.mark.parametrize("name", ["left-border.txt", "consistency.txt"])
def test_hash_lists_have_one_text(bundle: Bundle, name: str) -> None:
    for text in (
        bundle.members[name].replace(b"\n", b"\r", 1),
        bundle.members[name][:-1],
        bundle.members[name] + b"\n",
    ):
        assert "each followed by a newline" in failures(bundle, {**bundle.members, name: text})


def test_the_consistency_proof_is_checked_without_a_previous_checkpoint(bundle: Bundle) -> None:
    proof = bundle.members["consistency.txt"].split(b"\n")
    proof[0] = str(merkle.Hash(bytes(32))).encode()
    members = {**bundle.members, "consistency.txt": b"\n".join(proof)}
    assert "FAIL consistency" in failures(bundle, members, with_previous=False)


def test_an_entry_whose_data_is_withheld_does_not_verify(bundle: Bundle) -> None:
    def drop(line: dict[str, Any]) -> bool:
        if line["data"] is None or line["disclosures"] is not None:
            return False
        if header_of(line)["type"] in ACTOR_EVENTS:
            return False
        line["data"] = None
        return True

    assert "FAIL completeness: manifest.json: counts" in failures(
        bundle, edit_lines(bundle.members, "entries.jsonl", drop)
    )


def test_an_actor_event_must_carry_its_data(bundle: Bundle) -> None:
    def drop(line: dict[str, Any]) -> bool:
        if header_of(line)["type"] != "actor.enrolled":
            return False
        line["data"] = None
        return True

    assert "an actor event must carry its data" in failures(
        bundle, edit_lines(bundle.members, "entries.jsonl", drop)
    )


@pytest.mark.parametrize("name", ["entries.jsonl", "context.jsonl"])
def test_empty_disclosures_where_none_may_be_do_not_verify(bundle: Bundle, name: str) -> None:
    def empty(line: dict[str, Any]) -> bool:
        if line["data"] is None or line["disclosures"] is not None:
            return False
        line["disclosures"] = {}
        return True

    assert "disclosures shown where none may be" in failures(
        bundle, edit_lines(bundle.members, name, empty)
    )


def test_an_erased_subjects_empty_disclosures_cannot_become_null(bundle: Bundle) -> None:
    def null(line: dict[str, Any]) -> bool:
        if line["disclosures"] != {}:
            return False
        line["disclosures"] = None
        return True

    assert "the sealed fields' disclosures are missing" in failures(
        bundle, edit_lines(bundle.members, "entries.jsonl", null)
    )


def test_data_that_is_not_an_object_fails_its_digest_without_a_crash(bundle: Bundle) -> None:
    def array(line: dict[str, Any]) -> bool:
        line["data"] = base64.b64encode(b"[]").decode()
        return True

    assert "FAIL data digests" in failures(
        bundle, edit_lines(bundle.members, "entries.jsonl", array)
    )


def test_a_proof_on_a_range_entry_does_not_verify(bundle: Bundle) -> None:
    def prove(line: dict[str, Any]) -> bool:
        line["proof"] = []
        return True

    assert "a range entry carries no proof" in failures(
        bundle, edit_lines(bundle.members, "entries.jsonl", prove)
    )


def test_metrics_the_manifest_names_cannot_be_removed(bundle: Bundle) -> None:
    members = {k: v for k, v in bundle.members.items() if k != "metrics.json"}
    assert "FAIL metrics" in failures(bundle, members)


def test_a_member_that_does_not_decompress_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    raw = bytearray(bundle.raw)
    with zipfile.ZipFile(io.BytesIO(bundle.raw)) as z:
        info = z.getinfo("entries.jsonl")
    raw[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF  # inside the deflate stream
    path = bundle.write(raw=bytes(raw))
    result = run_cli(["verify-bundle", str(path), "--trusted-key", bundle.vkey])
    # A flipped byte may break the deflate stream or only its CRC-32: both are unreadable.
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith("calm-ledger: ") and "internal error" not in result.stderr


def test_a_member_name_flagged_utf8_that_is_not_is_refused(bundle: Bundle) -> None:
    raw = bytearray(bundle.raw)
    entry = raw.rfind(b"PK\x01\x02")  # the last central directory entry
    raw[entry + 9] |= 0x08  # general purpose flag bit 11: the name is UTF-8
    raw[entry + 46] = 0xFF  # and its first byte is not
    result = run_cli(
        ["verify-bundle", str(bundle.write(raw=bytes(raw))), "--trusted-key", bundle.vkey]
    )
    assert result.exit_code == 2, result.stdout
    assert "not a readable zip file" in result.stderr


def test_a_corrupt_lzma_member_is_refused(bundle: Bundle) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_LZMA) as z:
        for name, content in bundle.members.items():
            z.writestr(name, content)
    raw = bytearray(out.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        info = z.getinfo("entries.jsonl")
    raw[info.header_offset + 30 + len(info.filename) + 60] ^= 0xFF
    result = run_cli(
        ["verify-bundle", str(bundle.write(raw=bytes(raw))), "--trusted-key", bundle.vkey]
    )
    assert result.exit_code == 2, result.stdout
    assert "cannot be read from the zip" in result.stderr


def test_a_provider_cannot_skip_the_previous_checkpoint(bundle: Bundle) -> None:
    members = resign(bundle, bundle.members, previous_size=None)
    assert "previous_size is neither first nor null from 0" in failures(bundle, members)


def test_a_provider_cannot_claim_another_level_or_scope(bundle: Bundle) -> None:
    assert "data shown at disclosure level 'none'" in failures(
        bundle, resign(bundle, bundle.members, disclosure="none")
    )
    assert "disclosures shown where none may be" in failures(
        bundle, resign(bundle, bundle.members, disclosure="data")
    )
    assert "outside the scope" in failures(
        bundle, resign(bundle, bundle.members, scope=["house-9"])
    )


def test_context_lines_must_be_actor_events(bundle: Bundle) -> None:
    """A non-actor event before the range, proven included, added to the context (and the
    manifest's counts re-signed to match) is still refused."""
    manifest = json.loads(bundle.members["manifest.json"])
    first, size = manifest["range"]["first"], manifest["range"]["size"]
    app = open_app(bundle.ledger.store_url)
    try:
        row = next(
            r
            for r in app.store.iter_leaves(stop=first)
            if r.event is not None and r.event.topic not in ACTOR_EVENTS
        )
        envelope = decode_envelope(row.event.state)  # type: ignore[union-attr]
        proof = merkle.inclusion_proof(row.leaf_index, size, app.store).hashes
    finally:
        app.close()
    extra = Entry(
        row.leaf_index, envelope.header_bytes, envelope.signature, envelope.data_bytes, None, proof
    )
    lines = sorted(
        [*lines_of(bundle.members, "context.jsonl"), extra.encode()],
        key=lambda line: int(json.loads(line)["leaf"]),
    )
    members = {**bundle.members, "context.jsonl": b"".join(lines)}
    counts = {**manifest["counts"], "context": manifest["counts"]["context"] + 1}
    report = failures(bundle, resign(bundle, members, counts=counts))
    assert "context entries must be actor events" in report
