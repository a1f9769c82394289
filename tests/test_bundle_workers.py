"""verify-bundle with worker processes (`ledger.bundle_workers`) gives the report the
one-process verifier gives: the same failures in the same order, the same counts, notes,
verified events and metrics, or the same refusal, for a valid bundle and for tampered ones,
on both stores. The chunks are made tiny so that a test bundle spans many of them, several
in flight at once."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from domain.people import Person
from domain.roles import Role
from ledger import bundle_workers, note, spill
from ledger.bundle import MANIFEST_SIGNATURE_CONTEXT, verify_bundle
from ledger.canonical import canonical_bytes
from ledger.errors import LedgerError
from ledger.mapper import Signer
from projections.bundles import MetricsFold, check_bundle_metrics
from tests import test_bundles
from tests.conftest import Ledger
from tests.test_bundles import encode, entries, export, flip_b64, rewrite, vkey

Outcome = tuple[Any, ...]


history = test_bundles.history  # the same ward of 12 incidents and its bundle
bundle = test_bundles.bundle


@pytest.fixture
def tiny_chunks() -> Iterator[None]:
    """Chunks of three lines (the first of two), and records written out to their files two
    at a time."""
    with (
        patch.object(bundle_workers, "CHUNK_LINES", 3),
        patch.object(bundle_workers, "FIRST_CHUNK_LINES", 2),
        patch.object(spill, "_BLOCK", 2),
    ):
        yield


def outcome(bundle: Path, key: str, workers: int, on_event: str = "fold") -> Outcome:
    """Everything verify-bundle makes of a bundle: the checklist, the failures, the events
    it verified and the metrics check, or the refusal."""
    fold = MetricsFold()
    seen: list[Any] = []
    handler: Any = {"fold": fold, "callable": lambda h, d: seen.append((h, d)), "none": None}
    try:
        result = verify_bundle(
            bundle,
            trusted_key=note.parse_verifier_key(key),
            on_event=handler[on_event],
            workers=workers,
        )
        check_bundle_metrics(bundle, result, fold if on_event == "fold" else None)
    except LedgerError as e:
        return ("refused", type(e).__name__, e.diagnostics())
    r = result.report
    folded = (fold.metrics(), fold.problems) if on_event == "fold" else seen
    return (r.failures, r.passed, r.notes, list(r.lines()), list(result.events), folded)


def same_outcome(bundle: Path, key: str, on_event: str = "fold") -> Outcome:
    alone = outcome(bundle, key, workers=0, on_event=on_event)
    assert outcome(bundle, key, workers=2, on_event=on_event) == alone
    return alone


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("on_event", ["fold", "callable", "none"])
def test_a_valid_bundle_gets_the_same_report_with_workers(
    history: Ledger, bundle: Path, on_event: str
) -> None:
    failures, passed, *_ = same_outcome(bundle, vkey(history), on_event)
    assert failures == [] and passed["signatures"] >= len(entries(bundle))


def _resign(history: Ledger, bundle: Path, out: Path, **changes: Any) -> Path:
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    manifest.update(changes)
    body = canonical_bytes(manifest)
    signature = history.log_key.sign(MANIFEST_SIGNATURE_CONTEXT + body)
    return rewrite(
        bundle, out, manifest_json=body, manifest_sig=base64.b64encode(signature) + b"\n"
    )


def _header(item: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(str(item["header"]))))


def _tampered(history: Ledger, bundle: Path, out: Path, how: str) -> Path:
    items = entries(bundle)
    middle = len(items) // 2
    lines = zipfile.ZipFile(bundle).read("entries.jsonl").splitlines(keepends=True)
    if how == "signature":
        for i in (3, middle, len(items) - 1):
            items[i]["signature"] = flip_b64(str(items[i]["signature"]), 7)
    elif how == "header":  # signature, chain of the next event, root
        raw = base64.b64decode(str(items[middle]["header"]))
        items[middle]["header"] = base64.b64encode(raw.replace(b'"v":1', b'"v":2')).decode()
    elif how == "data":
        target = next(i for i in items[middle:] if i["data"] is not None)
        target["data"] = flip_b64(str(target["data"]), 40)
    elif how == "disclosure":
        target = next(i for i in items if i["disclosures"])
        name = sorted(target["disclosures"])[0]
        target["disclosures"][name] = flip_b64(target["disclosures"][name], 5)
    elif how == "dropped":
        del items[middle]
    elif how == "repeated":
        items.insert(middle, items[middle])
    elif how == "renumbered":  # two swapped, the leaves still numbered in order
        items[middle], items[middle + 1] = items[middle + 1], items[middle]
        items[middle]["leaf"], items[middle + 1]["leaf"] = (
            items[middle + 1]["leaf"],
            items[middle]["leaf"],
        )
    elif how == "chain":  # a later event of a stream names another predecessor, re-signed
        target = next(i for i in items[middle:] if _header(i)["version"] > 1)
        header = _header(target)
        header["prev"] = "0" * 64
        raw = canonical_bytes(header)
        key = history.admin_key if header["actor"] == "ada" else history.key(header["actor"])
        target["header"] = base64.b64encode(raw).decode()
        target["signature"] = base64.b64encode(key.sign(b"calm-ledger/event/v1\n" + raw)).decode()
    elif how == "unreadable line":  # refused (exit 2) once the lines before it are checked
        lines[middle] = lines[middle].replace(b'{"data"', b'{ "data"')
        return rewrite(bundle, out, entries_jsonl=b"".join(lines))
    elif how == "unreadable line after a gap":  # the gap ends the run first: exit 1
        lines[middle] = lines[middle].replace(b'{"data"', b'{ "data"')
        del lines[middle - 2]
        return rewrite(bundle, out, entries_jsonl=b"".join(lines))
    elif how == "unterminated":
        return rewrite(bundle, out, entries_jsonl=b"".join(lines)[:-1])
    elif how == "level none":
        return _resign(history, bundle, out, disclosure="none")
    elif how == "level data":
        return _resign(history, bundle, out, disclosure="data")
    elif how == "scope":
        return _resign(history, bundle, out, scope=["house-9"])
    elif how == "origin":
        raw = base64.b64decode(str(items[middle]["header"]))
        changed = raw.replace(b"example.org/test-ledger", b"example.org/test-ledgeR")
        items[middle]["header"] = base64.b64encode(changed).decode()
    else:
        raise AssertionError(how)
    return rewrite(bundle, out, entries_jsonl=encode(items))


TAMPERS = [
    "signature",
    "header",
    "data",
    "disclosure",
    "dropped",
    "repeated",
    "renumbered",
    "chain",
    "unreadable line",
    "unreadable line after a gap",
    "unterminated",
    "level none",
    "level data",
    "scope",
    "origin",
]


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("how", TAMPERS)
def test_a_tampered_bundle_gets_the_same_report_with_workers(
    history: Ledger, bundle: Path, tmp_path: Path, how: str
) -> None:
    got = same_outcome(_tampered(history, bundle, tmp_path / "x.bundle", how), vkey(history))
    assert got[0] == "refused" or got[0], "a tampered bundle verified"


@pytest.mark.usefixtures("tiny_chunks")
def test_signers_revoked_or_without_the_role_get_the_same_report_with_workers(
    history: Ledger, tmp_path: Path
) -> None:
    """An actor enrolled, revoked and still signing, and one signing what its role may
    not: checked in order by the main process, against keys the workers learned from the
    enrolments in their own chunks or were sent."""
    app = history.open()
    rita = history.enrol(app, "rita", Role.SAFEGUARDING_LEAD)
    rob = history.enrol(app, "rob", Role.RECORDER)
    with app.envelope_mapper.signing_as(Signer("rita", rita)):
        app.save(Person.register("P-RITA", "ward-3"))
    history.service(app).revoke_actor("rita", "left")
    lee = Signer("lee", history.key("lee"))
    with app.envelope_mapper.signing_as(lee):  # past the chunks in flight: keys sent
        app.save(*(Person.register(f"P-LEE-{n}", "ward-3") for n in range(30)))
    with app.envelope_mapper.signing_as(Signer("rita", rita)):
        app.save(Person.register("P-REV", "ward-3"))
    with app.envelope_mapper.signing_as(Signer("rob", rob)):
        app.save(Person.register("P-ROB", "ward-3"))
    app.close()
    got = same_outcome(export(history, tmp_path / "r.bundle"), vkey(history))
    assert [f.check for f in got[0]] == ["signers", "signers"]


@pytest.mark.usefixtures("tiny_chunks")
def test_a_bundle_from_a_previous_checkpoint_gets_the_same_report_with_workers(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    """Context lines, a left border and streams that began before the range."""
    second = test_bundles.next_bundle(history, bundle, tmp_path, seed=3, offset=60)
    assert zipfile.ZipFile(second).read("context.jsonl")
    assert same_outcome(second, vkey(history))[0] == []


def test_a_worker_that_dies_leaves_the_report_as_it_was(
    history: Ledger, bundle: Path, tmp_path: Path
) -> None:
    """A worker process killed mid-run: the main process checks the chunks it held."""
    tampered = _tampered(history, bundle, tmp_path / "x.bundle", "signature")
    alone = outcome(tampered, vkey(history), workers=0)
    work = bundle_workers._work

    def dies_on_the_third(keys: Any, lines: list[bytes]) -> Any:
        if any(b'"leaf":20,' in line for line in lines):
            os._exit(1)
        return work(keys, lines)

    with (
        patch.object(bundle_workers, "CHUNK_LINES", 3),
        patch.object(bundle_workers, "FIRST_CHUNK_LINES", 3),
        patch.object(bundle_workers, "_work", dies_on_the_third),
    ):
        assert outcome(tampered, vkey(history), workers=2) == alone


def test_small_bundles_are_checked_in_process_and_large_ones_by_workers() -> None:
    assert bundle_workers.worker_count(10, 0) == 0 and bundle_workers.worker_count(10, 3) == 3
    assert bundle_workers.worker_count(bundle_workers.MIN_ENTRIES - 1, None) == 0
    many = bundle_workers.worker_count(bundle_workers.MIN_ENTRIES, None)
    cpus = min(len(os.sched_getaffinity(0)), bundle_workers.MAX_WORKERS)
    assert many == (0 if cpus == 1 else cpus)


def test_spilled_records_read_and_rewrite_in_memory_and_in_the_file() -> None:
    import struct

    records = spill.SpilledRecords(struct.Struct("<qd"), block=3)
    for n in range(10):
        records.append(n, n / 2)
    assert len(records) == 10 and list(records) == [(n, n / 2) for n in range(10)]
    records[1] = (-1, 0.25)  # in the file
    records[9] = (-9, 0.75)  # in memory
    records.append(10, 5.0)
    assert records[1] == (-1, 0.25) and records[9] == (-9, 0.75) and records[10] == (10, 5.0)
    assert [r[0] for r in records] == [0, -1, *range(2, 9), -9, 10]
    records.close()


def test_stream_heads_number_streams_for_the_metrics_fold() -> None:
    """The fold finds incidents by the chain check's stream numbers; a stream it numbers
    first (an id the check has not met) has no head for the check."""
    from ledger.stream_state import StreamHeads

    heads = StreamHeads()
    a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    assert heads.replace(a, 1, bytes(32)) is None and heads.find(a) == 0 == heads.add(a)
    assert heads.find(b) is None and heads.add(b) == 1 and heads.find(b) == 1
    assert heads.replace(b, 3, b"\x01" * 32) is None  # numbered, but no head yet
    assert heads.replace(b, 4, bytes(32)) == (3, b"\x01" * 32)
    assert heads.add("Not-A-Uuid") == 2 and heads.replace("Not-A-Uuid", 1, bytes(32)) is None
    assert heads.find("Not-A-Uuid") == 2 and heads.find(a.upper()) is None
    assert heads.replace(a, 2, bytes(32)) == (1, bytes(32)) and heads.find("") is None


@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("workers", [0, 2])
def test_the_fold_as_verify_bundle_makes_it_gives_the_whole_folds_metrics(
    history: Ledger, bundle: Path, workers: int
) -> None:
    """Folded as entries are verified, sharing the chain check's stream numbers, with its
    records written out two at a time and rewritten there by debriefs and corrections, the
    metrics fold gives the figures of the whole fold, without disclosure control (which
    would hide a small difference)."""
    from ledger.bundle import BundleReader
    from projections.bundles import BundleState, bundle_metrics
    from projections.disclosure import DisclosureProfile

    fold = MetricsFold()
    key = note.parse_verifier_key(vkey(history))
    verify_bundle(bundle, trusted_key=key, on_event=fold, workers=workers)
    whole, reader = BundleState(), BundleReader(bundle)
    try:
        for entry in reader.entries():
            whole.add_entry(entry)
    finally:
        reader.close()
    raw = DisclosureProfile(suppress_below=0, round_to=1, min_denominator=0, suppress_zero=False)
    assert len(fold.incidents) == 12 and fold.metrics(raw) == bundle_metrics(whole.state, raw)


def test_prone_minutes_of_incidents_starting_together_add_up_in_ref_order(
    history: Ledger, bundle: Path
) -> None:
    """Incidents with the same start are added in ref order, as `compute_metrics` orders
    them, whatever order they were recorded in: 0.3 + 0.2 + 0.1 is not 0.1 + 0.2 + 0.3."""
    from datetime import timedelta

    from tests.test_bundles import prone_metrics

    together = [("R-c", timedelta(0), 6), ("R-a", timedelta(0), 18), ("R-b", timedelta(0), 12)]
    got, expected = prone_metrics(bundle, together)  # 0.1, 0.3 and 0.2 min
    assert got == expected and got[0].prone_minutes == 0.3 + 0.2 + 0.1 != 0.1 + 0.2 + 0.3
