"""The questions a safeguarding lead asks, through the command line, on both stores."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSPHRASE, Ledger
from tests.history import add_incidents, setup_ward
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE}


def cli(ledger: Ledger, *args: str) -> list[dict[str, object]]:
    result = run_cli(["--dir", str(ledger.directory), *args, "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def ward(ledger: Ledger) -> Ledger:
    service = setup_ward(ledger)
    add_incidents(service, 30, seed=2)
    service.app.close()
    return ledger


def test_metrics_count_what_the_register_lists(ward: Ledger) -> None:
    months = cli(
        ward, "metrics", "--service", "ward-3", "--from", "2026-01-01", "--to", "2026-06-28"
    )
    listed = cli(
        ward,
        "incidents",
        "list",
        "--service",
        "ward-3",
        "--from",
        "2026-01-01",
        "--to",
        "2026-06-29",
    )
    assert [m["label"] for m in months] == [f"2026-{n:02d}" for n in range(1, 7)]
    assert sum(int(str(m["interventions"])) for m in months) == len(listed) == 30
    assert [m["person_days"] for m in months] == [300] * 5 + [280]  # June pro-rated to the 28th


def test_published_metrics_apply_disclosure_control(ward: Ledger) -> None:
    months = cli(
        ward,
        "metrics",
        "--service",
        "ward-3",
        "--from",
        "2026-01-01",
        "--to",
        "2026-06-28",
        "--publish",
    )
    for month in months:
        assert month["interventions"] == "*" or int(str(month["interventions"])) % 5 == 0


def test_compliance_findings_are_reproducible_for_an_as_of(ward: Ledger) -> None:
    first = cli(ward, "compliance", "--as-of", "2026-07-01T00:00Z")
    second = cli(ward, "compliance", "--as-of", "2026-07-01T00:00Z")
    later = cli(ward, "compliance", "--as-of", "2027-01-01T00:00Z", "--days", "400")
    assert first == second and first
    overdue = cli(ward, "compliance", "--as-of", "2026-07-01T00:00Z", "--overdue")
    assert overdue and all(f["status"] == "overdue" for f in overdue)
    assert {f["rule"] for f in first} <= {f["rule"] for f in later}


def test_spc_reports_points_and_limits(ward: Ledger) -> None:
    points = cli(
        ward,
        "spc",
        "interventions",
        "--service",
        "ward-3",
        "--from",
        "2026-01-01",
        "--to",
        "2026-06-28",
    )
    assert len(points) == 6 and all(p["upper"] >= p["mean"] >= p["lower"] for p in points)


def test_an_unknown_metric_or_bad_range_is_refused(ward: Ledger) -> None:
    bad = run_cli(["--dir", str(ward.directory), "spc", "bananas"], env=ENV)
    assert bad.exit_code == 2
    backwards = run_cli(
        ["--dir", str(ward.directory), "metrics", "--from", "2026-05-01", "--to", "2026-01-01"],
        env=ENV,
    )
    assert backwards.exit_code == 2 and "before" in backwards.stderr


def test_projection_status_rebuild_and_verify(ward: Ledger) -> None:
    status = cli(ward, "projections", "status")
    assert status[0]["lag"] == status[0]["log_size"]  # nothing applied yet
    cli(ward, "incidents", "list")  # a query catches up first
    assert cli(ward, "projections", "status")[0]["lag"] == 0
    result = run_cli(["--dir", str(ward.directory), "projections", "rebuild"], env=ENV)
    assert result.exit_code == 0, result.stderr
    verified = run_cli(["--dir", str(ward.directory), "projections", "verify"], env=ENV)
    assert verified.exit_code == 0 and "agree" in verified.stdout
