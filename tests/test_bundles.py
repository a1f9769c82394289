"""Export bundles verified offline: round trips on both stores, chaining, scope and
disclosure, erasure, and one test per attack on a bundle (each must fail, naming the step)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.people import Person
from domain.roles import Role
from ledger import merkle, note
from ledger.mapper import Signer
from tests.conftest import PASSPHRASE, Ledger
from tests.history import T0, add_incidents, held_incident, setup_ward
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}


def cli(ledger: Ledger, *args: str) -> subprocess.CompletedProcess[str] | object:
    return run_cli(["--dir", str(ledger.directory), *args], env=ENV)


def ok(result: object) -> str:
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def vkey(ledger: Ledger) -> str:
    return ok(cli(ledger, "checkpoint", "--vkey")).strip()


def export(ledger: Ledger, out: Path, *args: str) -> Path:
    ok(cli(ledger, "checkpoint"))
    ok(cli(ledger, "export", "--out", str(out), *args))
    return out


def verify(ledger: Ledger, bundle: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(["verify-bundle", str(bundle), "--trusted-key", vkey(ledger), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def history(ledger: Ledger) -> Ledger:
    service = setup_ward(ledger)
    add_incidents(service, 12)
    service.app.close()
    return ledger


@pytest.fixture
def bundle(history: Ledger, tmp_path: Path) -> Path:
    return export(history, tmp_path / "q1.bundle", "--disclose", "personal")


def next_bundle(history: Ledger, bundle: Path, tmp_path: Path, seed: int, offset: int) -> Path:
    """Incidents recorded after `bundle`, exported from its checkpoint (kept, as a regulator
    would, in tmp_path/cp.txt): the next quarter's bundle."""
    (tmp_path / "cp.txt").write_text(zipfile.ZipFile(bundle).read("checkpoint.txt").decode())
    service = history.service(history.open(), "lee")
    add_incidents(service, 4, seed=seed, offset=offset)
    service.app.close()
    return export(history, tmp_path / "q2.bundle", "--from-checkpoint", str(tmp_path / "cp.txt"))


def test_round_trip_verifies(history: Ledger, bundle: Path) -> None:
    code, out, err = verify(history, bundle)
    assert code == 0, err
    assert out.strip().endswith("of example.org/test-ledger")
    assert "FAIL" not in out and " 12. OK   metrics" in out.replace("12.", " 12.")


def test_consecutive_exports_chain(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    second = next_bundle(history, bundle, tmp_path, seed=9, offset=40)
    code, _out, err = verify(history, second, "--previous-checkpoint", str(tmp_path / "cp.txt"))
    assert code == 0, err
    manifest = json.loads(zipfile.ZipFile(second).read("manifest.json"))
    first = (tmp_path / "cp.txt").read_text()
    assert manifest["range"]["first"] == note.parse_checkpoint(first.split("\n\n")[0] + "\n").size


def test_verify_needs_no_database_driver(history: Ledger, bundle: Path) -> None:
    """verify-bundle runs with psycopg and sqlite3 made unimportable."""
    script = (
        "import sys\n"
        "for name in ('sqlite3', '_sqlite3', 'psycopg', 'psycopg_pool'):\n"
        "    sys.modules[name] = None\n"
        "from cli.main import main\n"
        f"sys.argv = ['calm-ledger', 'verify-bundle', {str(bundle)!r},"
        f" '--trusted-key', {vkey(history)!r}]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "verified leaves" in result.stdout


def test_no_trusted_key_is_refused(bundle: Path) -> None:
    result = run_cli(["verify-bundle", str(bundle)])
    assert result.exit_code == 2 and "no trusted key" in result.stderr


def test_an_empty_range_says_so(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    cp = tmp_path / "cp.txt"
    cp.write_text(zipfile.ZipFile(bundle).read("checkpoint.txt").decode())
    empty = tmp_path / "empty.bundle"
    ok(cli(history, "export", "--out", str(empty), "--from-checkpoint", str(cp)))
    code, out, err = verify(history, empty, "--previous-checkpoint", str(cp))
    assert code == 1 and "empty range" in err and "OK" in out


# --- attacks on a bundle ----------------------------------------------------------------------


def rewrite(bundle: Path, out: Path, **changes: bytes | None) -> Path:
    """A copy of the bundle with some members replaced (None: removed)."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            key = name.replace(".", "_").replace("-", "_")
            if key in changes:
                if changes[key] is not None:
                    dst.writestr(name, changes[key])
            else:
                dst.writestr(name, src.read(name))
    return out


def entries(bundle: Path) -> list[dict[str, object]]:
    lines = zipfile.ZipFile(bundle).read("entries.jsonl").splitlines()
    return [json.loads(line) for line in lines]


def encode(items: list[dict[str, object]]) -> bytes:
    from ledger.canonical import canonical_bytes

    return b"".join(canonical_bytes(i) + b"\n" for i in items)


def flip_b64(value: str, offset: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[offset % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def assert_fails(ledger: Ledger, bundle: Path, step: str, *args: str) -> None:
    code, out, err = verify(ledger, bundle, *args)
    assert code == 1, (out, err)
    assert f"FAIL {step}" in err, err


def test_bundle_with_an_event_dropped_from_the_middle(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    items = entries(bundle)
    del items[len(items) // 2]
    assert_fails(
        history, rewrite(bundle, tmp_path / "x", entries_jsonl=encode(items)), "completeness"
    )


def test_bundle_with_two_events_reordered(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    items = entries(bundle)
    i = len(items) // 2
    items[i]["leaf"], items[i + 1]["leaf"] = items[i + 1]["leaf"], items[i]["leaf"]
    items[i], items[i + 1] = items[i + 1], items[i]
    assert_fails(history, rewrite(bundle, tmp_path / "x", entries_jsonl=encode(items)), "inclusion")


@pytest.mark.parametrize(("part", "step"), [("header", "signatures"), ("data", "data digests")])
def test_bundle_with_a_byte_changed(
    history: Ledger, bundle: Path, tmp_path: Path, part: str, step: str
) -> None:
    items = entries(bundle)
    target = next(
        i
        for i in items
        if i["data"] is not None
        and json.loads(base64.b64decode(str(i["header"])))["type"] == "incident.recorded"
    )
    header = json.loads(base64.b64decode(str(target["header"])))
    if part == "header":  # one digit of the recording time
        raw = base64.b64decode(str(target["header"])).replace(
            header["recorded_at"].encode(), header["recorded_at"].replace("2", "3", 1).encode()
        )
        target["header"] = base64.b64encode(raw).decode()
    else:
        target["data"] = flip_b64(str(target["data"]), 40)
    assert_fails(history, rewrite(bundle, tmp_path / "x", entries_jsonl=encode(items)), step)


def test_bundle_with_a_byte_changed_in_a_disclosure(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    items = entries(bundle)
    target = next(i for i in items if i["disclosures"])
    name = sorted(target["disclosures"])[0]  # type: ignore[arg-type]
    target["disclosures"][name] = flip_b64(target["disclosures"][name], 5)  # type: ignore[index]
    assert_fails(
        history, rewrite(bundle, tmp_path / "x", entries_jsonl=encode(items)), "disclosures"
    )


def test_bundle_with_a_byte_changed_in_a_proof(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    second = next_bundle(history, bundle, tmp_path, seed=5, offset=50)
    proof = zipfile.ZipFile(second).read("consistency.txt").decode().splitlines()
    proof[0] = str(merkle.Hash(bytes(32)))
    tampered = rewrite(second, tmp_path / "x", consistency_txt="\n".join(proof).encode() + b"\n")
    previous = str(tmp_path / "cp.txt")
    assert_fails(history, tampered, "consistency", "--previous-checkpoint", previous)


def test_bundle_with_a_byte_changed_in_the_checkpoint(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    text = zipfile.ZipFile(bundle).read("checkpoint.txt").decode()
    lines = text.split("\n")
    lines[2] = str(merkle.Hash(bytes(32)))
    assert_fails(
        history,
        rewrite(bundle, tmp_path / "x", checkpoint_txt="\n".join(lines).encode()),
        "log signatures",
    )


def test_bundle_with_a_checkpoint_from_a_forked_log(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    """The log key signs a checkpoint of another history: the leaves do not rebuild it."""
    text = zipfile.ZipFile(bundle).read("checkpoint.txt").decode()
    cp = note.parse_checkpoint(text.split("\n\n")[0] + "\n")
    forked = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(cp.origin, cp.size, merkle.Hash(bytes(32)))),
        cp.origin,
        history.log_key.public_key,
        history.log_key.sign,
    )
    assert_fails(
        history, rewrite(bundle, tmp_path / "x", checkpoint_txt=forked.encode()), "inclusion"
    )


def test_bundle_with_a_metric_figure_changed(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    figures = json.loads(zipfile.ZipFile(bundle).read("metrics.json"))
    row = figures["services"]["all"][0]
    row["interventions"] = 999
    changed = json.dumps(figures, sort_keys=True).encode()
    assert_fails(history, rewrite(bundle, tmp_path / "x", metrics_json=changed), "metrics")


def test_bundle_with_an_event_signed_by_a_revoked_actor(history: Ledger, tmp_path: Path) -> None:
    app = history.open()
    key = history.enrol(app, "rita", Role.SAFEGUARDING_LEAD)
    history.service(app).revoke_actor("rita", "left")
    with app.envelope_mapper.signing_as(Signer("rita", key)):  # around the service's check
        app.save(Person.register("P-REV", "ward-3"))
    app.close()
    assert_fails(history, export(history, tmp_path / "r.bundle"), "signers")


def test_bundle_with_an_event_signed_by_an_actor_without_the_role(
    history: Ledger, tmp_path: Path
) -> None:
    app = history.open()
    key = history.enrol(app, "rob", Role.RECORDER)
    with app.envelope_mapper.signing_as(Signer("rob", key)):
        app.save(Person.register("P-ROB", "ward-3"))  # recorders may not register people
    app.close()
    assert_fails(history, export(history, tmp_path / "r.bundle"), "signers")


def test_bundle_whose_range_skips_leaves(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    """The provider (who holds the log key, so can re-sign the manifest) drops the first
    leaves and claims the range starts later: the leaves no longer rebuild the root."""
    from ledger.bundle import MANIFEST_SIGNATURE_CONTEXT
    from ledger.canonical import canonical_bytes

    items = entries(bundle)[3:]
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    manifest["range"]["first"] = 3
    body = canonical_bytes(manifest)
    signature = history.log_key.sign(MANIFEST_SIGNATURE_CONTEXT + body)
    tampered = rewrite(
        bundle,
        tmp_path / "x",
        entries_jsonl=encode(items),
        manifest_json=body,
        manifest_sig=base64.b64encode(signature) + b"\n",
    )
    assert_fails(history, tampered, "inclusion")


def test_bundle_with_a_changed_manifest(history: Ledger, bundle: Path, tmp_path: Path) -> None:
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    manifest["recipient"] = "someone-else"
    from ledger.canonical import canonical_bytes

    tampered = rewrite(bundle, tmp_path / "x", manifest_json=canonical_bytes(manifest))
    assert_fails(history, tampered, "log signatures")


def test_a_previous_checkpoint_inconsistent_with_the_new_one(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    text = zipfile.ZipFile(bundle).read("checkpoint.txt").decode()
    cp = note.parse_checkpoint(text.split("\n\n")[0] + "\n")
    other = note.sign_note_with(
        note.format_checkpoint(note.Checkpoint(cp.origin, 4, merkle.Hash(bytes(32)))),
        cp.origin,
        history.log_key.public_key,
        history.log_key.sign,
    )
    (tmp_path / "prev.txt").write_text(other)
    assert_fails(
        history, bundle, "completeness", "--previous-checkpoint", str(tmp_path / "prev.txt")
    )


# --- scope, disclosure, erasure, queries ---------------------------------------------------------


def test_a_scoped_export_reveals_no_personal_field_of_another_service(
    history: Ledger, tmp_path: Path
) -> None:
    from domain.vocabulary import Profile, Setting

    service = history.service(history.open(), "lee")
    service.register_service(
        "house-2", "House 2", Setting.CHILDRENS_HOME, [Profile.UK_ENG_CHILDRENS_HOME]
    )
    service.register_person(
        "P-H2",
        "house-2",
        full_name="Hidden Example-Person",
        date_of_birth=T0.date() - timedelta(days=4000),
    )
    service.register_person("P-W3", "ward-3", full_name="Shown Example-Person")
    service.app.close()
    out = export(
        history, tmp_path / "scoped.bundle", "--scope", "service:ward-3", "--disclose", "personal"
    )
    raw = b"".join(zipfile.ZipFile(out).read(n) for n in zipfile.ZipFile(out).namelist())
    decoded = raw + b"".join(base64.b64decode(x) for x in _b64_fields(out))
    assert b"Hidden" not in decoded and b"Shown Example-Person" in decoded
    assert verify(history, out)[0] == 0


def _b64_fields(bundle: Path) -> list[str]:
    found = []
    for item in entries(bundle):
        found += [str(item["header"])] + ([str(item["data"])] if item["data"] else [])
        found += [str(v) for v in (item["disclosures"] or {}).values()]  # type: ignore[union-attr]
    return found


def test_after_erasure_a_new_export_verifies_without_the_persons_fields(
    history: Ledger, tmp_path: Path
) -> None:
    service = history.service(history.open(), "lee")
    service.register_person("P-ERASE", "ward-3", full_name="Forget Me-Please")
    service.erase_subject("P-ERASE", "retention period ended")
    service.app.close()
    out = export(history, tmp_path / "after.bundle", "--disclose", "personal")
    decoded = b"".join(base64.b64decode(x) for x in _b64_fields(out))
    assert b"Forget" not in decoded
    assert verify(history, out)[0] == 0


def test_bundle_queries_match_the_live_ledger(history: Ledger, bundle: Path) -> None:
    key = vkey(history)
    live = json.loads(
        ok(
            cli(
                history, "metrics", "--from", "2026-01-01", "--to", "2026-06-30", "--format", "json"
            )
        )
    )
    offline = json.loads(
        ok(run_cli(["bundle", str(bundle), "--trusted-key", key, "metrics", "--format", "json"]))
    )
    by_label = {row["label"]: row for row in live}
    assert offline and all(
        by_label[row["label"]]["interventions"] == row["interventions"] for row in offline
    )
    ref = json.loads(ok(cli(history, "incidents", "list", "--format", "json")))[0]["incident"]
    live_audit = json.loads(ok(cli(history, "audit", "incident", ref, "--format", "json")))
    offline_audit = json.loads(
        ok(
            run_cli(
                [
                    "bundle",
                    str(bundle),
                    "--trusted-key",
                    key,
                    "audit",
                    "incident",
                    ref,
                    "--format",
                    "json",
                ]
            )
        )
    )
    assert [(a["type"], a["signed_by"], a["key_id"]) for a in live_audit] == [
        (a["type"], a["signed_by"], a["key_id"]) for a in offline_audit
    ]


@pytest.fixture
def large(history: Ledger) -> Ledger:
    """The history and 600 more people: more entries than one parallel signature batch."""
    app = history.open()
    with app.envelope_mapper.signing_as(Signer("lee", history.key("lee"))):
        app.save(*(Person.register(f"BIG-{n}", "ward-3") for n in range(600)))
    app.close()
    return history


def test_bad_signatures_in_a_large_batch_are_each_named(large: Ledger, tmp_path: Path) -> None:
    """Signatures are checked a batch at a time, on every core; a batch holding bad ones
    still names each bad leaf, and only those."""
    bundle = export(large, tmp_path / "big.bundle")
    items = entries(bundle)
    bad = (len(items) - 500, len(items) - 99)
    for i in bad:
        items[i]["signature"] = flip_b64(str(items[i]["signature"]), 5)
    code, _out, err = verify(large, rewrite(bundle, tmp_path / "x", entries_jsonl=encode(items)))
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("FAIL signatures")]
    assert [line.split(":")[1].split()[1] for line in failed] == [str(i) for i in bad]


def test_verified_events_are_read_again_only_as_verified(large: Ledger, tmp_path: Path) -> None:
    """`BundleVerification.events` reads the entries again from the file (memory stays
    flat), and refuses a file changed since it was verified."""
    from ledger.bundle import verify_bundle
    from ledger.errors import VerificationError

    bundle = export(large, tmp_path / "big.bundle")
    result = verify_bundle(bundle, trusted_key=note.parse_verifier_key(vkey(large)))
    assert result.report.verified, result.report.failures
    events = list(result.events)
    assert len(events) == len(result.events) == len(entries(bundle))
    assert result.events[0] == events[0] and result.events[-1] == events[-1]
    assert result.events[5:9] == events[5:9] and result.events[::-7] == events[::-7]
    items = entries(bundle)
    items[300]["data"] = flip_b64(str(items[300]["data"]), 3)
    changed = rewrite(bundle, tmp_path / "changed", entries_jsonl=encode(items))
    changed.replace(bundle)
    with pytest.raises(VerificationError, match="changed since it was verified"):
        list(result.events)


def test_the_cli_folds_the_metrics_as_it_verifies(history: Ledger, tmp_path: Path) -> None:
    """verify-bundle folds check 12's metrics from the entries as they are checked (one
    read), as the second read would: a bundle replaced after its entries were checked does
    not change what was folded; a manifest replaced after verification fails check 12."""
    from ledger.bundle import verify_bundle
    from projections.bundles import MetricsFold, check_bundle_metrics

    bundle = export(history, tmp_path / "q.bundle")
    key = note.parse_verifier_key(vkey(history))
    fold = MetricsFold()
    result = verify_bundle(bundle, trusted_key=key, on_event=fold.add)
    again = verify_bundle(bundle, trusted_key=key)
    check_bundle_metrics(bundle, again)
    assert again.report.verified and len(fold.incidents) == 12
    items = entries(bundle)
    items[-1]["data"] = flip_b64(str(items[-1]["data"]), 3)
    rewrite(bundle, tmp_path / "changed", entries_jsonl=encode(items)).replace(bundle)
    check_bundle_metrics(bundle, result, fold)
    assert result.report.verified and result.report.passed == again.report.passed
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    manifest["recipient"] = "someone else"
    from ledger.canonical import canonical_bytes

    rewrite(bundle, tmp_path / "m", manifest_json=canonical_bytes(manifest)).replace(bundle)
    check_bundle_metrics(bundle, result, fold)
    assert [(f.check, f.message) for f in result.report.failures] == [
        ("metrics", "manifest.json changed since it was verified")
    ]


def prone_metrics(bundle: Path, incidents: list[tuple[str, timedelta, int]]) -> tuple[Any, Any]:
    """Months of prone incidents like the bundle's first, each (ref, start after 08:00 on
    the 10th, seconds held), recorded in the order given: their figures as `compute_metrics`
    works them out, and as the metrics fold's packed inputs do."""
    from dataclasses import replace

    from projections.incident_inputs import IncidentInputs
    from projections.metrics import DEFAULT_WINDOWS, compute_metrics, metrics_from_tallies
    from projections.model import State

    whole, _ = folds(bundle)
    like = replace(next(i for i in whole.state.incidents.values() if i.prone), debriefs=())
    day = like.start.replace(day=10, hour=8, minute=0, second=0, microsecond=0)
    state, inputs = State(occupancy=dict(whole.state.occupancy)), IncidentInputs()
    for ref, after, seconds in incidents:
        start, end = day + after, day + after + timedelta(seconds=seconds)
        prone = replace(like.interventions[0], start=start, end=end)
        view = replace(
            like, ref=ref, stream=f"s-{ref}", start=start, end=end, interventions=(prone,)
        )
        state.incidents[view.ref] = view
        inputs.record(view)
    first, last = day.date().replace(day=1), day.date().replace(day=28)
    expected = compute_metrics(state, service_id=None, start=first, end=last)
    got = metrics_from_tallies(
        inputs.monthly_tallies(DEFAULT_WINDOWS.limits_us())[None],
        state.occupancy.values(),
        service_id=None,
        start=first,
        end=last,
    )
    return got, expected


def test_prone_minutes_add_up_in_start_order_whatever_order_incidents_came_in(
    history: Ledger, bundle: Path
) -> None:
    """The one order-dependent figure, the float sum of prone minutes, is added in (start,
    ref) order as `compute_metrics` does, though incidents are recorded in another order:
    0.3 + 0.2 + 0.1 is not 0.1 + 0.2 + 0.3 in floats."""
    latest_first = [(f"R-{n}", timedelta(hours=n), 6 * n) for n in (3, 2, 1)]  # 0.3, 0.2, 0.1
    got, expected = prone_metrics(bundle, latest_first)
    assert got == expected and got[0].prone_minutes == 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1


def test_packed_strings_number_each_string_once() -> None:
    """`PackedStrings` (the metrics fold's refs, stream ids and names) numbers strings in
    the order first added, finds them again past its table's growth, and keeps apart
    strings whose UTF-8 or hash might meet (a lone surrogate, a prefix, the empty one)."""
    from ledger.stream_state import PackedStrings

    texts = [
        "",
        "a",
        "ab",
        "\ud800",
        "\udc00",
        "é",
        "e\u0301",
        *(f"INC-{n:X}" for n in range(5000)),
    ]
    packed = PackedStrings()
    assert [packed.add(t) for t in texts] == list(range(len(texts)))
    assert [packed.add(t) for t in reversed(texts)] == list(reversed(range(len(texts))))
    assert len(packed) == len(texts)
    assert [packed[i] for i in range(len(texts))] == texts
    assert [packed.find(t) for t in texts] == list(range(len(texts)))
    assert packed.find("INC-FFFFF") is None and packed.find("b") is None


def test_stream_heads_keep_each_streams_last_version_and_digest() -> None:
    """Packed stream heads: one head per distinct id string, through table growth; ids
    that are not canonical UUIDs (upper case, other strings) stay apart from packed ones."""
    import uuid

    from ledger.stream_state import StreamHeads, packed_stream_id

    heads = StreamHeads()
    ids = [str(uuid.UUID(int=n * 7919)) for n in range(5000)]  # past the first table size
    for n, stream in enumerate(ids):
        assert heads.replace(stream, 1, n.to_bytes(32, "big")) is None
    for n, stream in enumerate(ids):
        assert heads.replace(stream, 2, bytes(32)) == (1, n.to_bytes(32, "big"))
    odd = [ids[1].upper(), ids[1].replace("-", ""), " " + ids[1][1:], "stream", ""]
    assert all(packed_stream_id(s) is None for s in odd)
    for s in odd:
        assert heads.replace(s, 7, b"\x01" * 32) is None
    assert heads.replace(ids[1], 3, bytes(32)) == (2, bytes(32))
    assert heads.replace("stream", 8, bytes(32)) == (7, b"\x01" * 32)
    assert len(heads) == len(ids) + len(odd)


@pytest.mark.parametrize("first", [0, 5])
def test_bundle_chain_check_fails_as_the_ledgers_does(first: int) -> None:
    """Both checkers keep stream heads packed (`StreamHeads`) and fail the same headers with
    the same messages, except that a bundle from a leaf past 0 may hold a stream that
    begins past version 1 (`BundleChecker.began_earlier`)."""
    import hashlib

    from ledger.bundle import BundleChecker, Disclosure, Manifest
    from ledger.envelope import Header
    from ledger.verify import EventChecker, Report

    def header(stream: str, version: int, prev: str | None, n: int) -> Header:
        raw = f"header {n}".encode()
        return Header(raw, "o", stream, version, "t", 1, "", "a", "k", prev, None, None, "")

    def digest(n: int) -> str:
        return hashlib.sha256(f"header {n}".encode()).hexdigest()

    a, b, c = (f"{n:08x}-0000-4000-8000-00000000abcd" for n in (1, 2, 3))
    headers = [
        header(a, 1, None, 0),
        header(a, 2, digest(0), 1),
        header(a, 2, digest(1), 2),  # version repeated
        header(b, 1, None, 3),
        header(b, 2, digest(0), 4),  # another stream's digest
        header(b, 3, digest(4), 5),
        header(c, 3, "ff" * 32, 6),  # begins past version 1
        header(c, 4, digest(6), 7),
        header("not-a-uuid", 1, None, 8),
        header("not-a-uuid", 1, None, 9),  # version 1 again
        header(a.upper(), 1, None, 10),  # another stream than `a`
    ]
    manifest = Manifest(
        "o", first, first + len(headers), (), Disclosure.NONE, "", "", None, {}, None
    )
    ledger, bundle = Report(), Report()
    ledger_checker = EventChecker(ledger, origin="o", log_public_key=bytes(32))
    bundle_checker = BundleChecker(bundle, log_public_key=bytes(32), manifest=manifest)
    for n, h in enumerate(headers):
        ledger_checker._check_chain(f"leaf {n}", h)
        bundle_checker._check_chain(f"leaf {n}", h)
    expected = ledger.failures
    if first:
        expected = [f for f in expected if not f.where.startswith("leaf 6")]
    assert [f.where for f in expected] == [
        *(["leaf 2", "leaf 4"] if first else ["leaf 2", "leaf 4", "leaf 6"]),
        "leaf 9",
    ]
    assert bundle.failures == expected
    assert bundle.passed["stream chains"] == len(headers) - len(expected)


def folds(bundle: Path, skip: str = "") -> tuple[Any, Any]:
    """The whole fold of a bundle's entries and the metrics fold (check 12's and the
    exporter's), leaving out entries of type `skip`."""
    from ledger.bundle import BundleReader
    from ledger.envelope import parse_header
    from projections.bundles import BundleState, MetricsFold

    whole, lean = BundleState(), MetricsFold()
    reader = BundleReader(bundle)
    try:
        for entry in reader.entries():
            if parse_header(entry.header).type != skip:
                whole.add_entry(entry)
                lean.add_entry(entry)
    finally:
        reader.close()
    assert whole.problems == lean.problems == []
    return whole, lean


def test_every_incident_event_type_is_applied_or_known_to_change_no_metric_input() -> None:
    """The metrics fold keeps packed inputs, not views: an incident event type it neither
    applies nor knows to leave those inputs alone would silently not count. A new type must
    be put in one of the two sets (and, if applied, handled in `MetricsFold._incident`)."""
    from domain.incidents import Incident
    from projections.bundles import MetricsFold

    declared = {
        member.TYPE
        for member in vars(Incident).values()
        if isinstance(member, type) and getattr(member, "TYPE", "")  # "": base classes
    }
    assert declared and MetricsFold.APPLIED.isdisjoint(MetricsFold.NO_METRIC_INPUTS)
    assert declared == MetricsFold.APPLIED | MetricsFold.NO_METRIC_INPUTS


def test_the_metrics_fold_gives_the_whole_folds_metrics(history: Ledger, bundle: Path) -> None:
    """The exporter and check 12 keep services and occupancy, and each incident's packed
    metric inputs (`MetricsFold`): the figures must be those of the whole fold, to the byte,
    and those the exporter stated."""
    from projections.bundles import BundleState, bundle_metrics, feeds_metrics
    from projections.disclosure import DisclosureProfile

    whole, lean = folds(bundle)
    assert whole.state.people and whole.state.incidents  # the history has both
    assert feeds_metrics("incident.corrected") and not feeds_metrics("person.registered")
    figures = lean.metrics()
    assert figures is not None and figures == bundle_metrics(whole.state)
    stated = zipfile.ZipFile(bundle).read("metrics.json")
    assert (
        json.dumps(figures, default=str).encode()
        == json.dumps(bundle_metrics(whole.state), default=str).encode()
    )
    assert json.loads(stated) == json.loads(json.dumps(figures, default=str))
    # Unprotected too: no count hidden by rounding or suppression.
    raw = DisclosureProfile(suppress_below=0, round_to=1, min_denominator=0, suppress_zero=False)
    assert lean.metrics(raw) == bundle_metrics(whole.state, raw)
    kept = BundleState(for_metrics=True)  # the fold of the metrics' event types alone
    for header, data in ((h, d) for h, d in _headers_and_data(bundle) if feeds_metrics(h.type)):
        kept.add(header, data)
    assert bundle_metrics(kept.state) == figures


def _headers_and_data(bundle: Path) -> list[tuple[Any, bytes | None]]:
    from ledger.bundle import BundleReader
    from ledger.envelope import parse_header

    reader = BundleReader(bundle)
    try:
        return [(parse_header(e.header), e.data) for e in reader.entries()]
    finally:
        reader.close()


def test_a_correction_after_other_incidents_counts_in_the_metrics(
    ledger: Ledger, tmp_path: Path
) -> None:
    """An incident corrected after others were recorded counts with its corrected facts
    (type, position, length), and its debrief against its corrected end, in check 12 and in
    the exporter's figures alike."""
    from domain.vocabulary import DebriefType
    from projections.bundles import bundle_metrics
    from projections.disclosure import DisclosureProfile

    service = setup_ward(ledger)
    start = T0 + timedelta(days=2)
    end = start + timedelta(minutes=60)

    ref = service.record_incident(
        held_incident("P-0", start, end, ("07", "one-person-hold", "standing"))
    )
    # Held 23.5 h after the recorded end: on time, until the end is corrected 50 min earlier.
    service.record_debrief(ref, DebriefType.IMMEDIATE, end + timedelta(hours=23.5), "S-1")
    add_incidents(service, 6)
    shorter = start + timedelta(minutes=10)
    prone = dict(
        type="01", technique_id="three-person-prone", position="prone", start=start,
        end=shorter, staff_count=1, staff=[{"staff_id": "S-1"}],
    )  # fmt: skip
    service.correct_incident(
        ref, 1, "it was a prone hold, and shorter",
        {"occurred_end": shorter, "interventions": [prone]},
    )  # fmt: skip
    service.app.close()
    bundle = export(ledger, tmp_path / "corrected.bundle")
    code, out, err = verify(ledger, bundle)
    assert code == 0 and "FAIL" not in out, err

    raw = DisclosureProfile(suppress_below=0, round_to=1, min_denominator=0, suppress_zero=False)
    whole, lean = folds(bundle)
    assert lean.metrics(raw) == bundle_metrics(whole.state, raw)
    assert lean.metrics() == bundle_metrics(whole.state)
    uncorrected_whole, uncorrected = folds(bundle, skip="incident.corrected")
    assert uncorrected.metrics(raw) == bundle_metrics(uncorrected_whole.state, raw)
    month = start.strftime("%Y-%m")
    row = next(r for r in lean.metrics(raw)["services"]["all"] if r["label"] == month)
    before = next(r for r in uncorrected.metrics(raw)["services"]["all"] if r["label"] == month)
    changed = {k for k in row if row[k] != before[k]}
    assert {"prone_share", "immediate_debrief_within_24h", "median_minutes"} <= changed, changed
