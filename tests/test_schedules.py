"""Report schedules with a fake clock (`run-due --now`): monthly and weekly schedules over a
year with the machine off for months at a time issue exactly the expected reports, each once,
never one for a period that has not ended; and two `run-due` processes racing on PostgreSQL
issue each report once between them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import Result

from domain.reports import PeriodKind
from domain.roles import Role
from domain.vocabulary import Profile, Setting
from ledger.errors import ValidationError
from projections.schedules import check_cron, due_periods, infer_period, parse_period
from tests.conftest import PASSPHRASE, Ledger
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
MONTHLY, WEEKLY = "0 7 1 * *", "0 7 * * 1"  # 07:00 UTC on the 1st; 07:00 UTC on Mondays
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent

# The machine's year: (when run-due runs, what it should newly issue). Off for February to
# mid-June and for July to the end of December; run twice at the same moment once.
RUNS: list[tuple[str, list[str], list[str]]] = [
    ("2026-01-20T12:00:00Z", [], ["2026-W01", "2026-W02", "2026-W03"]),
    ("2026-02-01T06:59:00Z", [], ["2026-W04"]),  # January has ended, but is due at 07:00
    ("2026-02-01T07:00:00Z", ["2026-01"], []),
    (
        "2026-06-15T09:00:00Z",
        ["2026-02", "2026-03", "2026-04", "2026-05"],
        [f"2026-W{w:02d}" for w in range(5, 25)],
    ),
    ("2026-06-15T09:00:00Z", [], []),  # again: nothing twice
    (
        "2026-12-31T23:00:00Z",
        [f"2026-{m:02d}" for m in range(6, 12)],
        [f"2026-W{w:02d}" for w in range(25, 53)],  # W53 (28 Dec to 3 Jan) has not ended
    ),
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- pure: periods and due times --------------------------------------------------------------


def test_a_year_with_gaps_issues_every_period_once_and_none_before_it_ends() -> None:
    issued: dict[str, list[str]] = {"monthly": [], "weekly": []}
    for when, monthly, weekly in RUNS:
        now = utc(when)
        for name, cron, kind, expected in (
            ("monthly", MONTHLY, PeriodKind.MONTH, monthly),
            ("weekly", WEEKLY, PeriodKind.WEEK, weekly),
        ):
            due = due_periods(cron, kind, SINCE, now)
            assert all(d.period.ends_at <= d.due_at <= now for d in due)
            new = [d.period.label for d in due if d.period.label not in issued[name]]
            assert new == expected, (when, name)
            issued[name] += new
    assert issued["monthly"] == [f"2026-{m:02d}" for m in range(1, 12)]
    assert issued["weekly"] == [f"2026-W{w:02d}" for w in range(1, 53)]


def test_a_report_is_due_at_the_first_cron_time_after_its_period_ends() -> None:
    (due,) = due_periods(MONTHLY, PeriodKind.MONTH, SINCE, utc("2026-02-01T07:00:00Z"))
    assert (due.period.start, due.period.end) == (date(2026, 1, 1), date(2026, 1, 31))
    assert due.due_at == utc("2026-02-01T07:00:00Z")
    # A mid-month cron reports on the last whole month; a period before `since` never.
    found = due_periods(
        "30 6 15 * *", PeriodKind.MONTH, utc("2026-01-10T00:00:00Z"), utc("2026-03-20T00:00:00Z")
    )
    assert [(d.period.label, d.due_at.isoformat()) for d in found] == [
        ("2026-01", "2026-02-15T06:30:00+00:00"),
        ("2026-02", "2026-03-15T06:30:00+00:00"),
    ]


def test_periods_and_crons_are_parsed_strictly() -> None:
    assert parse_period("2026-W41").start == date(2026, 10, 5)
    assert parse_period("2026-Q4").end == date(2026, 12, 31)
    assert infer_period(MONTHLY) is PeriodKind.MONTH
    assert infer_period(WEEKLY) is PeriodKind.WEEK
    assert infer_period("0 7 1 1,4,7,10 *") is PeriodKind.QUARTER
    assert infer_period("*/5 * * * *") is None
    assert check_cron("0  7 1 * *") == MONTHLY
    for bad in ("0 7 1 *", "61 7 1 * *", "0 7 31 2 *", "every day"):
        with pytest.raises(ValidationError):
            check_cron(bad)


# --- through the command line, on both stores -----------------------------------------------


def cli(ledger: Ledger, *args: str) -> Result:
    return run_cli(["--dir", str(ledger.directory), *args], env=ENV)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def ward(ledger: Ledger) -> Ledger:
    app = ledger.open()
    ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.enrol(app, "sam", Role.RECORDER)
    service = ledger.service(app, "lee")
    service.register_service(
        "ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, [Profile.UK_ENG_MH_UNIT]
    )
    service.record_occupancy("ward-3", date(2026, 1, 1), date(2026, 12, 31), 7300)
    app.close()
    return ledger


def add_schedules(ward: Ledger, out: Path) -> None:
    for name, cron in (("board-monthly", MONTHLY), ("weekly-huddle", WEEKLY)):
        ok(
            cli(
                ward,
                "--as",
                "lee",
                "schedule",
                "add",
                name,
                "--cron",
                cron,
                "--report",
                "governance",
                "--service",
                "ward-3",
                "--format",
                "json",
                "--out",
                str(out / name),
                "--since",
                SINCE.isoformat(),
            )
        )


def issued_events(ward: Ledger) -> list[dict[str, object]]:
    log = json.loads(ok(cli(ward, "log", "--format", "json")))
    return [e for e in log if e["type"] == "report.issued"]


def test_scheduled_reports_over_a_year_with_gaps_are_issued_exactly_once(
    ward: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    add_schedules(ward, out)
    listed = json.loads(ok(cli(ward, "schedule", "list", "--format", "json")))
    assert [(s["name"], s["period"]) for s in listed] == [
        ("board-monthly", "month"),
        ("weekly-huddle", "week"),
    ]
    for when, monthly, weekly in RUNS:
        stdout = ok(
            cli(ward, "--as", "lee", "schedule", "run-due", "--now", when, "--new-checkpoint")
        )
        lines = [line.split("\t") for line in stdout.splitlines()]
        assert [label for name, label, *_ in lines if name == "board-monthly"] == monthly, when
        assert [label for name, label, *_ in lines if name == "weekly-huddle"] == weekly, when
    events = issued_events(ward)
    assert len(events) == 11 + 52
    assert len(list((out / "board-monthly").glob("*.json"))) == 11
    assert len(list((out / "weekly-huddle").glob("*.json"))) == 52
    october = next((out / "board-monthly").glob("governance-ward-3-2026-10-*.json"))
    assert json.loads(october.read_bytes())["period"]["label"] == "2026-10"
    result = cli(ward, "report", "verify", str(october))
    assert result.exit_code == 0, result.stderr

    # A removed schedule issues nothing more; the other catches up December.
    ok(cli(ward, "--as", "lee", "schedule", "remove", "weekly-huddle", "--reason", "stopped"))
    stdout = ok(cli(ward, "--as", "lee", "schedule", "run-due", "--now", "2027-01-20T00:00:00Z"))
    assert [line.split("\t")[:2] for line in stdout.splitlines()] == [["board-monthly", "2026-12"]]
    listed = json.loads(ok(cli(ward, "schedule", "list", "--format", "json")))
    assert [s["name"] for s in listed] == ["board-monthly"]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 7 1 *"], "invalid cron expression"),
        (["--cron", "*/5 * * * *"], "pass --period"),
        (["--cron", MONTHLY, "--format", "pdf"], "unknown --format 'pdf'"),
        (["--cron", MONTHLY, "--all", "--service", "ward-3"], "one of them"),
        (["--cron", MONTHLY, "--since", "yesterday"], "invalid --since"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_written(
    ward: Ledger, tmp_path: Path, args: list[str], message: str
) -> None:
    base = ["--as", "lee", "schedule", "add", "s1", "--out", str(tmp_path), *args]
    if "--all" not in args and "--service" not in args:
        base += ["--service", "ward-3"]
    result = cli(ward, *base)
    assert result.exit_code == 2 and message in result.stderr
    assert json.loads(ok(cli(ward, "schedule", "list", "--format", "json"))) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_only_an_admin_or_safeguarding_lead_keeps_schedules(ward: Ledger, tmp_path: Path) -> None:
    args = ["schedule", "add", "s1", "--cron", MONTHLY, "--all", "--out", str(tmp_path)]
    result = cli(ward, "--as", "sam", *args)
    assert result.exit_code == 2 and "may not sign 'schedule.added'" in result.stderr
    ok(cli(ward, "--as", "lee", *args))
    result = cli(ward, "--as", "lee", *args)
    assert result.exit_code == 2 and "names are never reused" in result.stderr


# --- two run-due processes at once on PostgreSQL ---------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_concurrent_run_due_processes_issue_each_report_once(
    ward: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    add_schedules(ward, out)
    ok(cli(ward, "checkpoint"))
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "--dir",
        str(ward.directory),
        "--as",
        "lee",
        "schedule",
        "run-due",
        "--now",
        "2026-12-31T23:00:00Z",
    ]
    env = {**os.environ, **ENV}
    runs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
    issued = [tuple(line.split("\t")[:2]) for stdout, _ in outputs for line in stdout.splitlines()]
    assert len(issued) == len(set(issued)) == 11 + 52  # between them, each exactly once
    per_run = [len(stdout.splitlines()) for stdout, _ in outputs]
    print(f"reports issued by each run: {per_run}")
    events = issued_events(ward)
    assert len(events) == 11 + 52
    assert len(list(out.rglob("*.json"))) == 11 + 52
    assert not list(out.rglob(".*"))  # no temporary file left behind
