"""Governance reports: the golden JSON of a fixed history, the HTML's structure, disclosure
control for publication, issuing from a ledger (both stores) as a signed event, and
`report verify` — which passes for every issued file and fails, naming the figure, when one
is changed.

Regenerate the golden file after an intended change with CALM_LEDGER_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from domain.reports import ReportFormat, ReportParameters
from domain.roles import Role
from projections.disclosure import SUPPRESSED
from projections.governance import Anchor, content_digest, governance_report
from projections.model import State
from projections.report_render import render, render_html, render_json
from tests.conftest import PASSPHRASE, Ledger
from tests.report_history import fixed_state, save_history
from tests.support import run_cli

GOLDEN = Path(__file__).parent / "data" / "governance_golden.json"
REPORT_ID = "00000000-0000-4000-8000-000000000001"
ANCHOR_ROOT = "A" * 43 + "="
ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
OCTOBER = ReportParameters(
    service_id="ward-3",
    start=date(2026, 10, 1),
    end=date(2026, 10, 31),
    label="2026-10",
    baseline_start=date(2025, 10, 1),
    baseline_end=date(2026, 9, 30),
    target_reduction_percent=20,
    publish=False,
)
SECTIONS = (
    "headline",
    "spc",
    "interventions",
    "concentration",
    "compliance",
    "debriefs",
    "learning",
    "training",
    "data-quality",
)


@pytest.fixture(scope="module")
def state() -> State:
    return fixed_state()


def report(state: State, parameters: ReportParameters = OCTOBER) -> dict[str, Any]:
    anchor = Anchor("example.org/test-ledger", state.size, ANCHOR_ROOT)
    return governance_report(state, report_id=REPORT_ID, parameters=parameters, anchor=anchor)


# --- the content ---------------------------------------------------------------------------------


def test_the_october_report_of_the_fixed_history_matches_the_golden_json(state: State) -> None:
    rendered = render_json(report(state))
    if os.environ.get("CALM_LEDGER_UPDATE_GOLDEN"):
        GOLDEN.write_bytes(rendered)
    assert rendered == GOLDEN.read_bytes()


def test_the_same_state_and_parameters_always_give_the_same_digest(state: State) -> None:
    assert content_digest(report(state)) == content_digest(report(fixed_state()))
    later = OCTOBER.model_copy(update={"target_reduction_percent": 25})
    assert content_digest(report(state, later)) != content_digest(report(state))


def test_the_report_states_its_checkpoint_period_and_sections(state: State) -> None:
    content = report(state)
    assert content["checkpoint"] == {
        "origin": "example.org/test-ledger",
        "size": state.size,
        "root": ANCHOR_ROOT,
    }
    assert content["period"]["as_of"] == "2026-11-01T00:00:00Z"
    assert content["report"]["title"] == "Governance report: Ward 3, October 2026"
    warnings = [w["code"] for w in content["data_quality"]]
    assert "GOV-48" in warnings  # July to September 2025: occupied, nothing recorded
    (gov48,) = [w for w in content["data_quality"] if w["code"] == "GOV-48"]
    assert "2025-07 to 2025-09" in gov48["message"]
    rate = next(c for c in content["spc"] if c["metric"] == "rate_per_1000")
    assert rate["chart"]["baseline"] == {"first": "Jan 2025", "last": "Dec 2025"}
    assert all(s["explanation"] for s in rate["signals"])
    assert "assurance" in rate
    statuses = {m["staff"]: m["status"] for m in content["training"]["members"]}
    assert statuses == {"S-2": "expiring", "S-3": "expired", "S-4": "none"}


def test_a_state_that_is_not_the_checkpoints_is_refused(state: State) -> None:
    from ledger.errors import ValidationError

    wrong = Anchor("example.org/test-ledger", state.size + 1, ANCHOR_ROOT)
    with pytest.raises(ValidationError, match="exactly the log its checkpoint signs"):
        governance_report(state, report_id=REPORT_ID, parameters=OCTOBER, anchor=wrong)


def test_a_report_marked_for_publication_shows_no_small_count_and_no_person(
    state: State,
) -> None:
    quarter = OCTOBER.model_copy(
        update={"start": date(2026, 7, 1), "label": "2026-Q3", "publish": True}
    )
    content = report(state, quarter)
    counts: list[object] = []
    for m in content["headline"]:
        if m["metric"] in ("interventions", "incidents", "people", "planned", "emergency"):
            counts.append(m["value"])
    counts += [
        r["count"]
        for rows in content["breakdowns"].values()
        if isinstance(rows, list)
        for r in rows
    ]
    for d in content["debriefs"]:
        counts += [d[k] for k in ("incidents", "on_time", "late", "declined", "not_held")]
    for rule in content["compliance"]["by_rule"]:
        counts += [rule["open"], rule["overdue"]]
    t = content["training"]
    counts += [t[k] for k in ("staff", "current", "expiring", "expired", "none")]
    assert counts and all(c == SUPPRESSED or (isinstance(c, int) and c % 5 == 0) for c in counts)
    assert SUPPRESSED in counts  # the history has small cells
    assert content["concentration"]["most"] == []
    assert content["compliance"]["overdue_items"] == []
    assert content["learning_loop"]["followed"] == content["learning_loop"]["missing"] == []
    assert content["training"]["members"] == []
    assert content["publication"]["published"] is True
    internal = report(state, quarter.model_copy(update={"publish": False}))
    assert internal["concentration"]["most"]  # the internal view keeps per-person detail


# --- the renderings ------------------------------------------------------------------------------


class Outline(HTMLParser):
    """What a structural check needs: headings, ids, tables and captions, svgs and titles."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.h1 = 0
        self.svgs: list[dict[str, str | None]] = []
        self.svg_titles = 0
        self.svg_descs = 0
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "svg":
            self.svgs.append(a)
        if self.stack and self.stack[-1] == "svg" and tag in ("title", "desc"):
            self.svg_titles += tag == "title"
            self.svg_descs += tag == "desc"
        if tag in ("svg", "g"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("svg", "g") and self.stack:
            self.stack.pop()


def test_the_html_is_one_accessible_self_contained_page_with_every_section_and_chart(
    state: State,
) -> None:
    content = report(state)
    page = render_html(content, content_digest(content)).decode()
    outline = Outline()
    outline.feed(page)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page
    assert outline.tags.count("h1") == 1
    for section in SECTIONS:
        assert section in outline.ids, section
    assert outline.tags.count("table") == outline.tags.count("caption") > 5
    spc = [s for s in outline.svgs if str(s.get("id", "")).startswith("chart-spc-")]
    assert len(spc) == 4  # one per key metric
    assert len(outline.svgs) >= 6  # and bar charts by type, time of day and day of week
    assert all(s.get("role") == "img" and s.get("aria-labelledby") for s in outline.svgs)
    assert outline.svg_titles == outline.svg_descs == len(outline.svgs)
    assert "{{" not in page and "{%" not in page and "Undefined" not in page
    assert "@page { size: A4" in page
    assert "#D55E00" in page and "#0072B2" in page  # Okabe-Ito: concern and values
    assert "<script" not in page and "http-equiv" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing fetched
    assert f'content="{REPORT_ID}"' in page


def test_markdown_and_csv_carry_the_same_figures(state: State) -> None:
    content = report(state)
    digest = content_digest(content)
    md = render(content, digest, ReportFormat.MD).decode()
    assert md.startswith(f"<!-- calm-ledger-report-id: {REPORT_ID} -->")
    assert "## 1. Headline figures" in md and "## 9. Data quality" in md
    rows = list(csv.DictReader(io.StringIO(render(content, digest, ReportFormat.CSV).decode())))
    by_key = {(r["section"], r["item"], r["measure"]): r["value"] for r in rows}
    assert by_key[("report", "calm-ledger-report-id", "")] == REPORT_ID
    assert by_key[("report", "content_sha256", "")] == digest
    interventions = next(m for m in content["headline"] if m["metric"] == "interventions")
    assert by_key[("headline", "interventions", "value")] == str(interventions["value"])


# --- issuing from a ledger and verifying -----------------------------------------------------


def cli(ledger: Ledger, *args: str) -> Result:
    return run_cli(["--dir", str(ledger.directory), *args], env=ENV)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def log_size(ledger: Ledger) -> int:
    app = ledger.open()
    try:
        return app.store.head().size
    finally:
        app.close()


@pytest.fixture
def ward(ledger: Ledger) -> Ledger:
    """The fixed history, saved to the ledger by lee (a safeguarding lead), checkpointed."""
    app = ledger.open()
    ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.enrol(app, "sam", Role.RECORDER)
    save_history(ledger.service(app, "lee"))
    app.close()
    ok(cli(ledger, "checkpoint"))
    return ledger


def issue(ward: Ledger, out: Path, *extra: str) -> dict[str, Path]:
    stdout = ok(
        cli(
            ward,
            "--as",
            "lee",
            "report",
            "governance",
            "--service",
            "ward-3",
            "--period",
            "2026-10",
            "--format",
            "html,md,csv,json",
            "--out",
            str(out),
            "--baseline-from",
            "2025-10-01",
            "--baseline-to",
            "2026-09-30",
            "--target-reduction",
            "20",
            *extra,
        )
    )
    paths = [Path(line) for line in stdout.split()]
    return {p.suffix.lstrip("."): p for p in paths}


def test_an_issued_report_is_a_signed_event_verifies_and_fails_when_a_figure_changes(
    ward: Ledger, tmp_path: Path
) -> None:
    before = log_size(ward)
    files = issue(ward, tmp_path / "reports")
    assert sorted(files) == ["csv", "html", "json", "md"]
    assert log_size(ward) == before + 1  # the report.issued event
    log = json.loads(ok(cli(ward, "log", "--format", "json")))
    issued = [e for e in log if e["type"] == "report.issued"]
    assert len(issued) == 1 and issued[0]["actor"] == "lee"

    # The ledger's figures are the golden ones: folding the ledger = folding the history.
    from_ledger = json.loads(files["json"].read_bytes())
    golden = json.loads(GOLDEN.read_bytes())
    for section in golden:
        if section not in ("report", "checkpoint", "headline", "spc"):
            assert from_ledger[section] == golden[section], section
    assert from_ledger["headline"] == golden["headline"]
    assert from_ledger["checkpoint"]["size"] == before

    for path in files.values():
        result = cli(ward, "report", "verify", str(path))
        assert result.exit_code == 0, result.stderr
        assert f"verified: {path.name}" in result.stdout
        assert "3. content: recomputed from the log" in result.stdout

    # Change a figure in each format: verify fails, exit 1, naming what differs.
    content = json.loads(files["json"].read_bytes())
    n = content["headline"][0]["value"]
    content["headline"][0]["value"] = n + 1
    files["json"].write_bytes(json.dumps(content, indent=2, sort_keys=True).encode())
    result = cli(ward, "report", "verify", str(files["json"]))
    assert result.exit_code == 1
    assert f"headline[0].value: the file says {n + 1}, the ledger gives {n}" in result.stderr

    page = files["html"].read_text()
    row = re.search(r"(Restrictive interventions</th><td class=\"num\">)(\d+)<", page)
    assert row is not None
    changed = page.replace(row.group(0), f"{row.group(1)}{int(row.group(2)) + 1}<", 1)
    files["html"].write_text(changed)
    result = cli(ward, "report", "verify", str(files["html"]))
    assert result.exit_code == 1
    assert "[file]" in result.stderr and "is not the issued" in result.stderr
    assert f">{int(row.group(2)) + 1}<" in result.stderr  # the changed line is shown

    lines = files["csv"].read_text().splitlines()
    lines = [re.sub(r"^(headline,rate_per_1000,value,)(.*)$", r"\g<1>0.1", x) for x in lines]
    files["csv"].write_text("\n".join(lines) + "\n")
    result = cli(ward, "report", "verify", str(files["csv"]))
    assert result.exit_code == 1 and "headline,rate_per_1000,value,0.1" in result.stderr


def test_report_verify_works_from_an_export_bundle_without_the_ledger(
    ward: Ledger, tmp_path: Path
) -> None:
    files = issue(ward, tmp_path / "reports")
    ok(cli(ward, "checkpoint"))  # a checkpoint that includes the report.issued event
    bundle = tmp_path / "all.bundle"
    ok(cli(ward, "export", "--out", str(bundle), "--disclose", "data"))
    key = ok(cli(ward, "checkpoint", "--vkey")).strip()
    elsewhere = tmp_path / "no-ledger-here"
    elsewhere.mkdir()
    args = ["--dir", str(elsewhere), "report", "verify"]
    result = run_cli([*args, str(files["html"]), "--bundle", str(bundle), "--trusted-key", key])
    assert result.exit_code == 0, result.stderr
    assert "0. bundle:" in result.stdout and "4. file: identical" in result.stdout
    files["md"].write_text(files["md"].read_text().replace("Ward 3", "Ward 4", 1))
    result = run_cli([*args, str(files["md"]), "--bundle", str(bundle), "--trusted-key", key])
    assert result.exit_code == 1 and "Ward 4" in result.stderr


@pytest.fixture
def small_ward(ledger: Ledger) -> Ledger:
    """A ward with nothing recorded yet, checkpointed: enough for refusals."""
    from domain.vocabulary import Profile, Setting

    app = ledger.open()
    ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.enrol(app, "sam", Role.RECORDER)
    ledger.service(app, "lee").register_service(
        "ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, [Profile.UK_ENG_MH_UNIT]
    )
    app.close()
    ok(cli(ledger, "checkpoint"))
    return ledger


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-10"], "say which services: --service ID or --all"),
        (["--all", "--service", "ward-3", "--period", "2026-10"], "one of them"),
        (["--all", "--period", "2026-13"], "invalid --period '2026-13'"),
        (["--all"], "say which period"),
        (["--all", "--period", "2026-10", "--from", "2026-10-01"], "not both"),
        (["--all", "--period", "2026-10", "--format", "html,pdf"], "unknown --format 'pdf'"),
        (["--service", "ward-9", "--period", "2026-10"], "no service 'ward-9'"),
        (["--all", "--from", "2026-10-05", "--to", "2026-10-01"], "is before --from"),
    ],
)
def test_bad_report_input_is_refused_with_one_line_and_nothing_written(
    small_ward: Ledger, tmp_path: Path, args: list[str], message: str
) -> None:
    before = log_size(small_ward)
    out = tmp_path / "nothing-here"
    result = cli(small_ward, "--as", "lee", "report", "governance", "--out", str(out), *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert log_size(small_ward) == before
    assert not out.exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_recorder_may_not_issue_a_report(small_ward: Ledger, tmp_path: Path) -> None:
    before = log_size(small_ward)
    out = tmp_path / "out"
    args = ["report", "governance", "--all", "--period", "2026-10", "--out", str(out)]
    result = cli(small_ward, "--as", "sam", *args)
    assert result.exit_code == 2 and "may not sign 'report.issued'" in result.stderr
    assert log_size(small_ward) == before and not out.exists()
