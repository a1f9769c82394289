"""Hostile input: every parser the core has, fuzzed with hypothesis — signed notes, checkpoints,
cosignature lines and tlog-proof files, envelopes and their headers, canonical JSON, keystores,
the witness state file, the config file, store URLs — and the commands that take files or
locations, through click's CliRunner with exceptions not caught.

The contract:
- a parser raises only the ledger's own errors (`LedgerError`: exit 2 for bad input, 1 for
  evidence that does not verify, 3 for the environment), never anything else;
- what it accepts has exactly one text: it re-formats to the input (and a signed value
  verifies only if it is the genuine one);
- huge inputs and deep nesting are refused, in time linear in their size;
- a command never lets an exception escape nor reports an internal error, exits 1, 2 or 3 (0
  only when the input is in fact genuine), never hangs, and writes nothing: not the log, not
  the witness's state, not a cosignature that does not verify.

Each fuzz test runs a few hundred examples in CI and 30 times as many with `-m slow`. The
inputs that first broke a contract are pinned as plain tests at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cli.witness import STATE_FORMAT, load_state
from domain.roles import Role
from ledger import merkle, note
from ledger.actors import actor_id
from ledger.app import open_app
from ledger.canonical import canonical_bytes, parse_canonical
from ledger.checkpoints import sign_checkpoint
from ledger.config import CONFIG_NAME, load_config
from ledger.envelope import (
    Envelope,
    MalformedEnvelope,
    build_header,
    decode_envelope,
    parse_header,
    seal,
    signing_input,
)
from ledger.errors import KeyLocked, LedgerError, ValidationError
from ledger.keys import SigningKey, read_keystore, read_public_key, write_keystore
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from ledger.verify import EventChecker, Report
from tests.conftest import FAST_KDF, ORIGIN, PASSPHRASE, Ledger
from tests.raw_tables import RawTables
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
LONG = 30  # the slow variant of each fuzz test runs this many times the CI examples
TIME_LIMIT = 120  # seconds a CI test may take before it counts as a hang (LONG times that if slow)


@pytest.fixture(autouse=True)
def no_hang(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that runs far longer than it should instead of hanging CI."""
    limit = TIME_LIMIT * (LONG if request.node.get_closest_marker("slow") else 1)

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {limit} s: a hang")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def fuzz(ci: int, **strategies: st.SearchStrategy[Any]) -> Callable[..., tuple[Any, Any]]:
    """A property as two tests: `ci` examples, and LONG times as many behind `-m slow`."""
    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }

    def decorate(prop: Callable[..., None]) -> tuple[Any, Any]:
        quick = settings(max_examples=ci, **common)(given(**strategies)(prop))
        long = settings(max_examples=ci * LONG, **common)(given(**strategies)(prop))
        return quick, pytest.mark.slow(long)

    return decorate


# --- strategies -----------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """`base` with one to four edits: characters inserted, deleted, replaced or repeated."""
    text = base
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        if edit == "insert":
            text = text[:at] + draw(st.text(max_size=6)) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif edit == "replace" and at < len(text):
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        else:
            text = text + text[at:]
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` with one to four edits: bytes flipped, inserted, deleted, or cut off."""
    raw = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if edit == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=6))
        elif edit == "delete":
            del raw[at : at + draw(st.integers(1, 8))]
        else:
            del raw[at:]
    return bytes(raw)


ascii_text = st.text(st.characters(max_codepoint=127), max_size=8)
canonical_values = st.recursive(  # the value space canonical_bytes encodes
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_text, inner, max_size=4),
    max_leaves=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def json_text(value: Any) -> str:
    return json.dumps(value)  # non-finite floats become NaN / Infinity, as hostile files may


# --- the genuine articles the mutations start from -------------------------------------------

LOG = note.NoteSignerKey(ORIGIN, bytes(range(32)))
WITNESS_NAME = "regulator.example"
WITNESS_SEED = bytes(range(32, 64))
WITNESS = note.NoteVerifierKey(
    WITNESS_NAME, SigningKey(WITNESS_SEED).public_key, note.SignatureType.COSIGNATURE_V1
)
BODY = note.format_checkpoint(note.Checkpoint(ORIGIN, 5, merkle.Hash(bytes(range(32)))))
SIGNED = note.sign_note(BODY, ORIGIN, LOG.seed)
COSIGNATURE = note.cosign(BODY, WITNESS_NAME, WITNESS_SEED, 1_800_000_000)
PROOF = note.format_tlog_proof(3, [bytes([i]) * 32 for i in range(3)], SIGNED + COSIGNATURE)
VKEY = str(LOG.verifier)
SKEY = note.format_signer_key(ORIGIN, LOG.seed)
NOTE_TEXTS = [SIGNED, SIGNED + COSIGNATURE, BODY, COSIGNATURE, PROOF, VKEY, SKEY, str(WITNESS)]

note_texts = st.one_of(st.text(), st.sampled_from(NOTE_TEXTS).flatmap(mutated))


def _accepted(parse: Callable[[], Any]) -> Any:
    """The parsed value, or None when refused with a ledger error (anything else escapes)."""
    try:
        return parse()
    except LedgerError:
        return None


# --- signed notes, checkpoints, cosignatures, proofs, keys (ledger/note.py) -------------------


def _notes(text: str) -> None:
    opened = _accepted(lambda: note.open_note(text, [LOG.verifier, WITNESS]))
    if opened is not None:
        assert opened.text == BODY  # nothing else was ever signed by these keys
    assert _accepted(
        lambda: note.open_note(text.encode("utf-8", "surrogatepass"), [LOG.verifier])
    ) == _accepted(lambda: note.open_note(text, [LOG.verifier]))
    checkpoint = _accepted(lambda: note.parse_checkpoint(text))
    if checkpoint is not None:
        assert note.format_checkpoint(checkpoint) == text
    cosignature = _accepted(lambda: note.parse_cosignature(text))
    if cosignature is not None:
        assert note.format_cosignature(cosignature) == text
    if _accepted(lambda: note.verify_cosignature(BODY, text, WITNESS)) is not None:
        assert text == COSIGNATURE
    _accepted(lambda: note.verify_cosignature(text, COSIGNATURE, WITNESS))
    proof = _accepted(lambda: note.parse_tlog_proof(text))
    if proof is not None:
        assert note.format_tlog_proof(proof.index, proof.hashes, proof.checkpoint, proof.extra) == (
            text
        )
    vkey = _accepted(lambda: note.parse_verifier_key(text))
    if vkey is not None:
        assert str(vkey) == text
    skey = _accepted(lambda: note.parse_signer_key(text))
    if skey is not None:
        assert note.format_signer_key(skey.name, skey.seed) == text


(
    test_notes_checkpoints_cosignatures_and_proofs_parse_strictly,
    test_notes_checkpoints_cosignatures_and_proofs_parse_strictly_long,
) = fuzz(800, text=note_texts)(_notes)


def _note_bytes(raw: bytes) -> None:
    opened = _accepted(lambda: note.open_note(raw, [LOG.verifier, WITNESS]))
    if opened is not None:
        assert opened.text == BODY


(test_signed_notes_as_bytes_never_crash, test_signed_notes_as_bytes_never_crash_long) = fuzz(
    300, raw=st.one_of(st.binary(), mutated_bytes(SIGNED.encode()))
)(_note_bytes)


def _note_parsers_given_json(value: Any) -> None:
    """Witness state files and bundles hand parsers JSON values of any type."""
    for parse in (
        note.parse_checkpoint,
        note.parse_cosignature,
        note.parse_tlog_proof,
        note.parse_verifier_key,
        note.parse_signer_key,
        merkle.Hash.from_base64,
        lambda v: note.open_note(v, [LOG.verifier]),
    ):
        if not isinstance(value, str):
            with pytest.raises(LedgerError):
                parse(value)


(
    test_note_parsers_refuse_values_that_are_not_text,
    test_note_parsers_refuse_values_that_are_not_text_long,
) = fuzz(200, value=json_values)(_note_parsers_given_json)


# --- envelopes (ledger/envelope.py) and what the verifier makes of them ----------------------

LEE = SigningKey(bytes(range(64, 96)))
SUBJECT_KEY = bytes(range(96, 128))
STREAM = "8c5f5a0e-0d1c-5e3b-9f5a-3c2b1a000001"


def _envelope(
    signer: SigningKey,
    actor: str,
    type_name: str,
    data: dict[str, Any],
    *,
    stream: str,
    subject: str | None = None,
    disclosures: bytes = b"",
) -> bytes:
    data_bytes = canonical_bytes(data)
    header = build_header(
        origin=ORIGIN,
        stream=stream,
        version=1,
        type_name=type_name,
        schema=1,
        recorded_at="2026-10-05T14:30:00.123456Z",
        actor=actor,
        key_id=signer.key_id,
        prev=None,
        service="ward-3",
        subject=subject,
        data_bytes=data_bytes,
    )
    return Envelope(header, signer.sign(signing_input(header)), data_bytes, disclosures).encode()


LOG_SIGNER = SigningKey(LOG.seed)
ENROL_LEE = _envelope(
    LOG_SIGNER,
    "log",
    "actor.enrolled",
    {
        "name": "lee",
        "roles": ["safeguarding-lead"],
        "public_key": base64.b64encode(LEE.public_key).decode(),
        "key_id": LEE.key_id,
    },
    stream=str(actor_id("lee")),
)
_data, _disclosures = seal(
    {"pseudonym": "P-7F3A", "service_id": "ward-3", "full_name": "Alex Example"},
    frozenset({"full_name"}),
    SUBJECT_KEY,
    stream=STREAM,
    version=1,
)
REGISTER = _envelope(
    LEE,
    "lee",
    "person.registered",
    _data,
    stream=STREAM,
    subject="P-7F3A",
    disclosures=canonical_bytes(_disclosures),
)


def checker() -> tuple[EventChecker, Report]:
    report = Report()
    return (
        EventChecker(
            report,
            origin=ORIGIN,
            log_public_key=LOG_SIGNER.public_key,
            data_keys=lambda s: SUBJECT_KEY,
        ),
        report,
    )


def _envelopes(raw: bytes) -> None:
    envelope = _accepted(lambda: decode_envelope(raw))
    if envelope is not None:
        header = _accepted(envelope.header)
        if header is not None:
            assert canonical_bytes(parse_canonical(header.raw)) == header.raw
        _accepted(envelope.data)
        _accepted(envelope.disclosures)
    events, report = checker()
    events.feed("leaf 0", ENROL_LEE)
    events.feed("leaf 1", raw)  # never raises: every problem is a reported failure
    if report.verified:
        assert raw == REGISTER  # no other bytes pass every check


(
    test_envelopes_decode_strictly_and_verify_only_when_genuine,
    test_envelopes_decode_strictly_and_verify_only_when_genuine_long,
) = fuzz(800, raw=st.one_of(st.binary(), mutated_bytes(REGISTER), mutated_bytes(ENROL_LEE)))(
    _envelopes
)


def test_the_genuine_envelopes_pass_every_check() -> None:
    events, report = checker()
    events.feed("leaf 0", ENROL_LEE)
    events.feed("leaf 1", REGISTER)
    assert report.verified, [f.line() for f in report.failures]
    assert report.passed["disclosures"] == 1


GOOD_HEADER = json.loads(decode_envelope(REGISTER).header_bytes)


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """The genuine header with a member changed, removed or added, encoded canonically where
    the value allows it (and as plain sorted JSON where it does not)."""
    h = json.loads(json.dumps(GOOD_HEADER))
    key = draw(st.sampled_from([*sorted(h), "scope.service", "scope.subject", "extra"]))
    target, name = (h["scope"], key[6:]) if key.startswith("scope.") else (h, key)
    if draw(st.booleans()) and name in target:
        del target[name]
    else:
        target[name] = draw(json_values)
    try:
        return canonical_bytes(h)
    except ValidationError:
        return json.dumps(h, sort_keys=True, separators=(",", ":")).encode()


def _headers(raw: bytes) -> None:
    header = _accepted(lambda: parse_header(raw))
    if header is not None:
        parsed = json.loads(raw)
        assert parsed["v"] == 1 and type(parsed["v"]) is int
        assert canonical_bytes(parsed) == raw
        for name in ("origin", "stream", "type", "recorded_at", "actor", "key_id"):
            assert type(getattr(header, name)) is str
        assert type(header.version) is int and type(header.schema) is int


(
    test_headers_parse_only_with_the_documented_members_and_types,
    test_headers_parse_only_with_the_documented_members_and_types_long,
) = fuzz(600, raw=headers())(_headers)


def test_a_header_whose_version_is_true_is_malformed() -> None:
    """`true == 1` in Python: a header with "v":true parsed as version 1 (fixed)."""
    raw = decode_envelope(REGISTER).header_bytes.replace(b'"v":1', b'"v":true')
    with pytest.raises(MalformedEnvelope, match="format version"):
        parse_header(raw)


@st.composite
def signed_hostile_data(draw: st.DrawFn) -> bytes:
    """Correctly signed envelopes whose data is anything: what an insider holding a valid key
    could write around the application."""
    type_name = draw(
        st.sampled_from(["actor.enrolled", "actor.rekeyed", "actor.revoked", "person.registered"])
    )
    plausible = {
        "name": st.sampled_from(["lee", "log", "mo"]) | canonical_values,
        "roles": st.lists(st.sampled_from(["admin", "recorder", "log", "x"])) | canonical_values,
        "public_key": st.just(base64.b64encode(LEE.public_key).decode()) | canonical_values,
        "_sealed": st.dictionaries(ascii_text, st.text(max_size=5)) | canonical_values,
    }
    data = draw(st.fixed_dictionaries({}, optional=plausible))
    stream = str(actor_id("lee")) if draw(st.booleans()) else STREAM
    return _envelope(LOG_SIGNER, "log", type_name, data, stream=stream, subject="P-7F3A")


def _signed_hostile(raw: bytes) -> None:
    events, report = checker()
    events.feed("leaf 0", raw)  # never raises
    assert all(f.where.startswith("leaf 0") for f in report.failures)  # each names the event
    enrolled = set(events.actors) - {"log"}
    if enrolled:  # only a well-formed enrolment in the actor's own stream takes effect
        assert enrolled == {"lee"}
        assert events.actors["lee"].public_key == LEE.public_key


(
    test_signed_envelopes_with_hostile_data_are_reported_not_a_crash,
    test_signed_envelopes_with_hostile_data_are_reported_not_a_crash_long,
) = fuzz(300, raw=signed_hostile_data())(_signed_hostile)


@pytest.mark.parametrize(
    "type_name, data",
    [
        ("actor.enrolled", {}),
        ("actor.enrolled", {"name": "mo", "roles": ["nope"], "public_key": "AA==", "key_id": ""}),
        ("actor.rekeyed", {"public_key": 7}),
        ("person.registered", {"_sealed": [1]}),
        ("person.registered", {"_sealed": "abc"}),
    ],
)
def test_a_signed_event_with_malformed_data_fails_verification_not_the_verifier(
    type_name: str, data: dict[str, Any]
) -> None:
    """These crashed EventChecker with KeyError / ValueError / AttributeError (fixed): one
    insider's malformed event stopped `verify` for the whole log."""
    raw = _envelope(LOG_SIGNER, "log", type_name, data, stream=str(actor_id("mo")), subject="P")
    events, report = checker()
    events.feed("leaf 0", raw)
    assert not report.verified
    assert set(events.actors) == {"log"}


def test_a_second_enrolment_cannot_replace_a_key_or_undo_a_revocation() -> None:
    """An admin (here the log key) writing around the service re-enrols lee with a key it
    holds: verify used to accept it, un-revoking lee (fixed)."""
    impostor = SigningKey.generate()
    again = _envelope(
        LOG_SIGNER,
        "log",
        "actor.enrolled",
        {
            "name": "lee",
            "roles": ["admin"],
            "public_key": base64.b64encode(impostor.public_key).decode(),
            "key_id": impostor.key_id,
        },
        stream=STREAM,  # not lee's own stream
    )
    events, report = checker()
    events.feed("leaf 0", ENROL_LEE)
    events.feed("leaf 1", again)
    assert events.actors["lee"].public_key == LEE.public_key
    assert [f.check for f in report.failures] == ["signers"]


# --- canonical JSON (ledger/canonical.py) ----------------------------------------------------


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    """JSON texts of any value, laid out in any of the ways canonical form forbids."""
    value = draw(json_values)
    text = json.dumps(
        value,
        sort_keys=draw(st.booleans()),
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.none() | st.integers(0, 2)),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
    )
    return text.encode("utf-8", "surrogatepass")


def _canonical(raw: bytes) -> None:
    value = _accepted(lambda: parse_canonical(raw))
    if value is not None or raw == b"null":
        assert canonical_bytes(value) == raw


(
    test_canonical_json_is_accepted_only_in_canonical_form,
    test_canonical_json_is_accepted_only_in_canonical_form_long,
) = fuzz(800, raw=st.one_of(st.binary(), json_documents()))(_canonical)


# --- keystores (ledger/keys.py) --------------------------------------------------------------

GENUINE_KEY = SigningKey(bytes(range(128, 160)))


@pytest.fixture(scope="module")
def keystore_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keystores")
    write_keystore(directory / "genuine.key", "ada", GENUINE_KEY, PASSPHRASE, cost=FAST_KDF)
    return directory


MEMBERS = [
    ("format",),
    ("name",),
    ("public_key",),
    ("key_id",),
    ("kdf",),
    ("kdf", "name"),
    ("kdf", "salt"),
    ("kdf", "memory_kib"),
    ("kdf", "iterations"),
    ("kdf", "lanes"),
    ("cipher",),
    ("cipher", "name"),
    ("cipher", "nonce"),
    ("ciphertext",),
    ("extra",),
]


@st.composite
def keystore_edits(draw: st.DrawFn) -> tuple[tuple[str, ...], Any, bool]:
    """Which member to change, its new value (small numbers for the Argon2 costs, so a run
    stays fast: the cost bound itself is tested below), and whether to delete it instead."""
    member = draw(st.sampled_from(MEMBERS))
    if member[-1] in ("memory_kib", "iterations", "lanes"):
        value = draw(st.integers(-3, 256) | json_values.filter(lambda v: not isinstance(v, int)))
    else:
        value = draw(json_values)
    return member, value, draw(st.booleans())


def _keystores(keystore_dir: Path, edit: tuple[tuple[str, ...], Any, bool], raw: bytes) -> None:
    document = json.loads((keystore_dir / "genuine.key").read_text())
    member, value, delete = edit
    target = document
    for name in member[:-1]:
        target = target[name]
    if delete:
        target.pop(member[-1], None)
    else:
        target[member[-1]] = value
    path = keystore_dir / "hostile.key"
    path.unlink(missing_ok=True)
    path.write_bytes(raw or json_text(document).encode())
    path.chmod(0o600)
    try:
        key = read_keystore(path, PASSPHRASE)
    except KeyLocked:
        pass
    else:
        assert key.public_key == GENUINE_KEY.public_key
    with contextlib.suppress(KeyLocked):
        read_public_key(path)


(
    test_keystores_are_read_strictly_and_only_the_genuine_one_unlocks,
    test_keystores_are_read_strictly_and_only_the_genuine_one_unlocks_long,
) = fuzz(300, edit=keystore_edits(), raw=st.just(b"") | st.binary(min_size=1))(_keystores)


def test_a_keystore_asking_for_more_than_the_cost_bound_is_refused_at_once(
    keystore_dir: Path,
) -> None:
    document = json.loads((keystore_dir / "genuine.key").read_text())
    document["kdf"]["memory_kib"] = 4 * 1024 * 1024  # 4 GiB
    path = keystore_dir / "greedy.key"
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    started = time.perf_counter()
    with pytest.raises(KeyLocked, match="memory"):
        read_keystore(path, PASSPHRASE)
    assert time.perf_counter() - started < 1


def test_a_huge_keystore_is_refused_after_reading_64_kib(keystore_dir: Path) -> None:
    path = keystore_dir / "huge.key"
    path.write_bytes(b" " * (32 * 1024 * 1024))
    path.chmod(0o600)
    with pytest.raises(KeyLocked, match="larger than"):
        read_keystore(path, PASSPHRASE)


# --- the witness state file, the config file, store URLs (outside the core) -----------------

GENUINE_STATE = {
    "format": STATE_FORMAT,
    "log_key": VKEY,
    "size": 5,
    "root": str(merkle.Hash(bytes(range(32)))),
}


@st.composite
def state_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "member"]))
    if kind == "bytes":
        return draw(st.binary())
    if kind == "json":
        return json_text(draw(json_values)).encode()
    state = dict(GENUINE_STATE)
    member = draw(st.sampled_from([*sorted(state), "extra"]))
    if draw(st.booleans()):
        state.pop(member, None)
    else:
        state[member] = draw(json_values)
    return json_text(state).encode()


def _states(scratch: Path, raw: bytes) -> None:
    path = scratch / "state.json"
    path.write_bytes(raw)
    for log_key in (None, VKEY):
        try:
            state = load_state(path, log_key)
        except LedgerError:
            continue
        assert str(state.log_key) == VKEY


(
    test_witness_state_files_are_read_strictly,
    test_witness_state_files_are_read_strictly_long,
) = fuzz(400, raw=state_files())(_states)


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary())
    values = {
        "origin": draw(st.sampled_from(['"example.org/x"', '"Example.org"', "1", "[]", "{a=1}"])),
        "db": draw(st.sampled_from(['"sqlite:///x.db"', "1", "[1]", '""', '"postgresql://"'])),
        "log_public_key": draw(
            st.sampled_from(['"AAAA"', '"' + "A" * 43 + '="', "1", '"!!"', "true"])
        ),
    }
    lines = [f"{k} = {v}" for k, v in values.items() if draw(st.booleans()) or k == "origin"]
    return "\n".join(lines).encode() + draw(st.text(max_size=20)).encode()


def _configs(scratch: Path, raw: bytes) -> None:
    directory = scratch / "config"
    directory.mkdir(exist_ok=True)
    (directory / CONFIG_NAME).write_bytes(raw)
    try:
        config = load_config(directory)
    except LedgerError:
        return
    assert len(config.log_public_key) == 32


(
    test_config_files_are_read_strictly,
    test_config_files_are_read_strictly_long,
) = fuzz(400, raw=config_files())(_configs)


store_urls = st.one_of(
    st.text(),
    st.tuples(
        st.sampled_from(["sqlite:///", "sqlite:////", "postgresql://", "postgres://"]), st.text()
    ).map("".join),
    st.tuples(
        st.just("postgresql://"),
        st.text(max_size=5),
        st.sampled_from(["@", ":p@", ""]),
        st.text(max_size=8),
        st.sampled_from([":5432", ":0", ":99999", ":x", ""]),
        st.sampled_from(["/test", "/", ""]),
        st.sampled_from(
            ["", "?schema=", "?schema=a_1", "?schema=1a", "?x=1", "?schema=a&schema=b"]
        ),
    ).map("".join),
)


def _urls(url: str) -> None:
    parsed = _accepted(lambda: parse_store_url(url))
    if parsed is not None:
        assert parsed.backend in ("sqlite", "postgresql")


(
    test_store_urls_are_parsed_strictly,
    test_store_urls_are_parsed_strictly_long,
) = fuzz(800, url=store_urls)(_urls)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scratch")


# --- the command line ------------------------------------------------------------------------


@dataclass
class Site:
    """A SQLite ledger with a checkpoint, and a witness that has cosigned it."""

    ledger: Ledger
    witness_key: Path
    log_vkey: str
    signed: str  # the stored signed checkpoint
    body: str  # its note text: the only body the witness may ever cosign
    cosignature: str  # the witness's genuine cosignature line
    state: Path  # the witness's state after cosigning it
    scratch: Path

    def dir_args(self) -> list[str]:
        return ["--dir", str(self.ledger.directory)]

    def snapshot(self) -> Any:
        return RawTables(self.ledger.db).snapshot()

    def files(self) -> dict[str, bytes]:
        """Every file of the ledger directory (the database lives beside it)."""
        return {
            str(p.relative_to(self.ledger.directory)): p.read_bytes()
            for p in sorted(self.ledger.directory.rglob("*"))
            if p.is_file()
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("site")
    db = f"sqlite:///{root / 'ledger.db'}"
    made = init_ledger(
        root / "ledger",
        origin=ORIGIN,
        db=db,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=FAST_KDF,
    )
    ledger = Ledger(root / "ledger", db, made.log_key, made.admin_key)
    app = open_app(parse_store_url(db))
    try:
        service = ledger.service(app)
        service.register_person("P-1", "ward-1", full_name="Sam", date_of_birth=date(2011, 2, 3))
        service.enrol_actor("mo", (Role.MANAGER,), SigningKey.generate().public_key)
        stored = sign_checkpoint(app, ORIGIN, made.log_key)
    finally:
        app.close()
    key_path = root / "witness.key"
    write_keystore(key_path, WITNESS_NAME, SigningKey(WITNESS_SEED), PASSPHRASE, cost=FAST_KDF)
    log_vkey = note.format_verifier_key(ORIGIN, made.log_key.public_key)
    (root / "checkpoint.txt").write_text(stored.signed)
    state = root / "witness.json"
    command = ["witness", "cosign", str(root / "checkpoint.txt"), "--key", str(key_path)]
    first = run_cli([*command, "--state", str(state), "--log-key", log_vkey], env=ENV)
    assert first.exit_code == 0, first.stderr
    scratch = root / "scratch"
    scratch.mkdir()
    body = note.format_checkpoint(stored.checkpoint)
    return Site(ledger, key_path, log_vkey, stored.signed, body, first.stdout, state, scratch)


def test_the_site_is_genuine(site: Site) -> None:
    """Where the command-line fuzzing starts from verifies, and its witness has seen it."""
    assert run_cli([*site.dir_args(), "verify"], env=ENV).exit_code == 0
    assert json.loads(site.state.read_text())["size"] == 3
    assert note.verify_cosignature(site.body, site.cosignature, WITNESS) > 0


def hostile(args: list[str], *, genuine_ok: bool = False) -> Any:
    """Run a command on hostile input: no exception escapes (catch_exceptions=False), the
    exit code is 1, 2 or 3 — or 0 where the input may in fact be genuine."""
    result = run_cli(args, env=ENV)
    allowed = (0, 1, 2, 3) if genuine_ok else (1, 2, 3)
    assert result.exit_code in allowed, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result


def cosign(site: Site, checkpoint: bytes, *, state: bytes | None = None, **extra: str) -> Any:
    """`witness cosign` in the scratch directory, with the site's witness state unless
    `state` is given. Nothing is written unless it succeeds, and then only for the genuine
    checkpoint body."""
    files = {name: site.scratch / name for name in ("cp.txt", "state.json", "proof.txt")}
    files["cp.txt"].write_bytes(checkpoint)
    files["state.json"].write_bytes(site.state.read_bytes() if state is None else state)
    args = ["witness", "cosign", str(files["cp.txt"]), "--key", str(site.witness_key)]
    args += ["--state", str(files["state.json"])]
    if "proof" in extra:
        files["proof.txt"].write_text(extra["proof"], errors="surrogateescape")
        args += ["--proof", str(files["proof.txt"])]
    if "log_key" in extra:
        args += ["--log-key", extra["log_key"]]
    before = files["state.json"].read_bytes()
    result = hostile(args, genuine_ok=True)
    if result.exit_code == 0:
        assert note.verify_cosignature(site.body, result.stdout, WITNESS) >= 0
    else:
        assert result.stdout == "", "a cosignature was printed for a refused checkpoint"
        assert files["state.json"].read_bytes() == before, "the witness state changed"
    return result


def _cosign_checkpoint(site: Site, data: st.DataObject) -> None:
    raw = data.draw(
        st.one_of(
            st.binary(max_size=300),
            mutated(site.signed).map(lambda t: t.encode("utf-8", "surrogatepass")),
        )
    )
    cosign(site, raw)


(
    test_witness_cosign_refuses_hostile_checkpoints_and_writes_nothing,
    test_witness_cosign_refuses_hostile_checkpoints_and_writes_nothing_long,
) = fuzz(150, data=st.data())(_cosign_checkpoint)


def _cosign_other(site: Site, which: str, other: bytes) -> None:
    if which == "state":
        cosign(site, site.signed.encode(), state=other)
    elif which == "proof":  # a newer checkpoint, so the proof is read
        cosign(
            site,
            site.signed.encode(),
            state=_older_state(site),
            proof=other.decode("utf-8", "surrogateescape"),
        )
    else:
        text = other.decode("utf-8", "replace").replace("\x00", "")  # argv holds no NUL
        cosign(site, site.signed.encode(), state=b"{}", log_key=text)


def _older_state(site: Site) -> bytes:
    """A witness that saw the log at size 1 (any root: the proof decides)."""
    state = json.loads(site.state.read_text())
    return json.dumps({**state, "size": 1}).encode()


(
    test_witness_cosign_refuses_hostile_state_proof_and_log_key,
    test_witness_cosign_refuses_hostile_state_proof_and_log_key_long,
) = fuzz(
    200,
    which=st.sampled_from(["state", "proof", "log-key"]),
    other=st.one_of(st.binary(max_size=200), state_files()),
)(_cosign_other)


def _add_cosignature(site: Site, data: st.DataObject) -> None:
    raw = data.draw(
        st.one_of(
            st.binary(max_size=300),
            mutated(site.cosignature).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.lists(st.sampled_from([site.cosignature, COSIGNATURE, "junk\n", "\n"])).map(
                lambda lines: "".join(lines).encode()
            ),
        )
    )
    witness_key = data.draw(st.sampled_from(NOTE_TEXTS).flatmap(mutated) | st.just(str(WITNESS)))
    path = site.scratch / "cosig.txt"
    path.write_bytes(raw)
    before = site.snapshot()
    command = ["checkpoint", "add-cosignature", str(path), "--witness-key", witness_key]
    try:
        hostile([*site.dir_args(), *command], genuine_ok=True)
        after = site.snapshot()
    finally:
        RawTables(site.ledger.db).restore(before)  # each example starts from the same site
    assert after["events"] == before["events"], "the log changed"
    for row in after["cosignatures"]:
        assert row["line"] == site.cosignature, "a cosignature that does not verify was stored"
    # On failure nothing else should be stored either; but a file whose genuine line precedes
    # a bad one keeps the genuine line: test_a_refused_cosignature_file_stores_nothing.


(
    test_add_cosignature_stores_only_cosignatures_that_verify,
    test_add_cosignature_stores_only_cosignatures_that_verify_long,
) = fuzz(200, data=st.data())(_add_cosignature)


no_nul = st.text().filter(lambda t: "\x00" not in t)  # argv cannot hold a NUL byte
db_urls = st.one_of(
    no_nul,
    st.tuples(
        st.just("sqlite:///"),
        st.sampled_from(["calm-ledger.toml", "keys/ada.key", "keys", "nope.db", "", "."]),
        no_nul.filter(lambda t: ".." not in t and not t.startswith("/")),
    ).map("".join),
    st.tuples(
        st.just("postgresql://"),
        st.sampled_from(["postgres", "nobody", ""]),
        st.just("@127.0.0.1"),
        st.sampled_from([":1", ":5432"]),  # a closed port, or the test server
        st.sampled_from(["/test", "/nope", "/"]),
        st.sampled_from(["", "?schema=t_absent_schema", "?schema=1", "?x=1"]),
    ).map("".join),
)


def _db(site: Site, url: str, command: str) -> None:
    assume(not url.startswith("sqlite:////"))  # absolute paths: anywhere on this machine
    before_files, before = site.files(), site.snapshot()
    hostile([*site.dir_args(), "--db", url, *command.split()], genuine_ok=True)
    assert site.files() == before_files and site.snapshot() == before


(
    test_hostile_db_urls_are_refused_and_nothing_is_written,
    test_hostile_db_urls_are_refused_and_nothing_is_written_long,
) = fuzz(120, url=db_urls, command=st.sampled_from(["log", "verify", "checkpoint list"]))(_db)


def _dirs(scratch: Path, path: str, command: str) -> None:
    where = scratch / "dirs"
    where.mkdir(exist_ok=True)
    target = path if path.startswith("/") else f"{where}/{path}"
    before = sorted(where.rglob("*"))
    hostile(["--dir", target, *command.split()])
    assert sorted(where.rglob("*")) == before, "something was created"


(
    test_hostile_ledger_directories_are_refused_and_nothing_is_created,
    test_hostile_ledger_directories_are_refused_and_nothing_is_created_long,
) = fuzz(
    150,
    path=st.one_of(no_nul, st.sampled_from(["", ".", "/", "--help", "~", "/dev/null", "\udcff"])),
    command=st.sampled_from(["log", "verify", "checkpoint list", "actors list"]),
)(_dirs)


# --- huge inputs: refused in time linear in their size ---------------------------------------


def test_a_huge_signed_note_is_refused_in_bounded_time(site: Site) -> None:
    huge = site.body[:-1] + "A" * 8_000_000 + "\n\n" + site.signed.split("\n\n")[1]
    started = time.perf_counter()
    assert cosign(site, huge.encode()).exit_code == 1
    assert time.perf_counter() - started < 20


def test_a_checkpoint_file_over_16_mib_is_refused_unread(site: Site) -> None:
    huge = site.body[:-1] + "A" * (17 * 1024 * 1024) + "\n\n" + site.signed.split("\n\n")[1]
    result = cosign(site, huge.encode())
    assert result.exit_code == 2 and "larger than" in result.stderr


def test_a_huge_consistency_proof_is_refused_in_bounded_time(site: Site) -> None:
    proof = (str(merkle.Hash(bytes(32))) + "\n") * 300_000
    started = time.perf_counter()
    assert cosign(site, site.signed.encode(), state=_older_state(site), proof=proof).exit_code == 1
    assert time.perf_counter() - started < 20


def _deep_envelope(deep: bytes) -> bytes:
    header = decode_envelope(REGISTER).header_bytes
    frame = b"CLE1" + len(header).to_bytes(4, "big") + header + bytes(64)
    return frame + len(deep).to_bytes(4, "big") + deep + bytes(4)


@pytest.mark.parametrize(
    "parse",
    [
        parse_canonical,
        parse_header,
        lambda deep: decode_envelope(_deep_envelope(deep)).data(),
    ],
    ids=["parse_canonical", "parse_header", "envelope-data"],
)
def test_deep_nesting_is_refused_at_once(parse: Callable[[bytes], Any]) -> None:
    deep = b"[" * 5_000_000 + b"]" * 5_000_000
    started = time.perf_counter()
    with pytest.raises(LedgerError):
        parse(deep)
    assert time.perf_counter() - started < 2


def test_an_envelope_claiming_gigabytes_is_refused_without_reading_them() -> None:
    with pytest.raises(MalformedEnvelope, match="truncated"):
        decode_envelope(b"CLE1\xff\xff\xff\xff" + bytes(100))


def test_a_note_with_thousands_of_signature_lines_is_refused() -> None:
    line = note.NoteSignature(ORIGIN, LOG.key_id, bytes(64)).line
    with pytest.raises(LedgerError, match="too many signatures"):
        note.open_note(BODY + "\n" + line * 10_000, [LOG.verifier])


# --- what the fuzzing first found (fixed): pinned with the reproductions ---------------------


def _expect_exit_2(args: list[str]) -> None:
    result = run_cli(args, env=ENV)
    assert "internal error" not in result.stderr, result.stderr
    assert result.exit_code == 2, result.stderr


def test_a_checkpoint_file_that_is_not_utf8_is_refused_as_input(site: Site) -> None:
    path = site.scratch / "latin1.txt"
    path.write_bytes(b"\xff\xfe" + site.signed.encode())
    _expect_exit_2(
        ["witness", "cosign", str(path), "--key", str(site.witness_key), "--state", str(site.state)]
    )


@pytest.mark.parametrize(
    "content",
    [b"[]", b"null", json.dumps({**GENUINE_STATE, "size": math.inf}).encode(), b"[" * 100_000],
    ids=["array", "null", "infinite-size", "deep"],
)
def test_a_witness_state_that_is_not_a_state_object_is_refused_as_input(
    site: Site, content: bytes
) -> None:
    state = site.scratch / "bad-state.json"
    state.write_bytes(content)
    checkpoint = site.scratch / "cp-ok.txt"
    checkpoint.write_text(site.signed)
    _expect_exit_2(
        [
            "witness",
            "cosign",
            str(checkpoint),
            "--key",
            str(site.witness_key),
            "--state",
            str(state),
        ]
    )


@pytest.mark.parametrize("shape", ["deep", "directory"])
def test_a_deep_or_unreadable_config_is_refused_as_input(scratch: Path, shape: str) -> None:
    directory = scratch / f"config-{shape}"
    directory.mkdir()
    if shape == "deep":
        (directory / CONFIG_NAME).write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    else:
        (directory / CONFIG_NAME).mkdir()
    _expect_exit_2(["--dir", str(directory), "log"])


@pytest.mark.parametrize(
    "url", ["postgresql://[::1/db", "postgresql://[1]/db", "postgresql://\uff03"]
)
def test_a_store_url_urlsplit_rejects_is_refused_as_input(site: Site, url: str) -> None:
    _expect_exit_2([*site.dir_args(), "--db", url, "log"])


def test_a_db_url_naming_an_empty_file_leaves_it_alone(site: Site) -> None:
    empty = site.ledger.directory / "empty.db"
    empty.write_bytes(b"")
    try:
        result = run_cli([*site.dir_args(), "--db", "sqlite:///empty.db", "log"], env=ENV)
        assert result.exit_code in (2, 3)
        assert empty.read_bytes() == b""
    finally:
        for leftover in site.ledger.directory.glob("empty.db*"):
            leftover.unlink()


def test_a_refused_cosignature_file_stores_nothing(site: Site) -> None:
    path = site.scratch / "mixed.txt"
    path.write_text(site.cosignature + COSIGNATURE)  # genuine, then one for another checkpoint
    before = site.snapshot()
    try:
        command = ["checkpoint", "add-cosignature", str(path), "--witness-key", str(WITNESS)]
        result = run_cli([*site.dir_args(), *command], env=ENV)
        after = site.snapshot()
    finally:
        RawTables(site.ledger.db).restore(before)
    assert result.exit_code == 1
    assert after == before


def test_an_oversized_cosignature_file_is_refused_unread(site: Site) -> None:
    path = site.scratch / "huge.txt"
    with path.open("wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)  # sparse: no time spent writing it
    before = site.snapshot()
    command = ["checkpoint", "add-cosignature", str(path), "--witness-key", str(WITNESS)]
    result = run_cli([*site.dir_args(), *command], env=ENV)
    path.unlink()
    assert result.exit_code == 2
    assert "larger than 16 MiB" in result.stderr
    assert site.snapshot() == before
