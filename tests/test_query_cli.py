"""The questions a safeguarding lead asks, through the command line, on both stores."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSPHRASE, Ledger
from tests.history import add_incidents, setup_ward
from tests.support import modules_loaded_by_cli, run_cli

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


@pytest.mark.parametrize("by", ["week", "month", "quarter", "year"])
@pytest.mark.parametrize("service", ["ward-3", None])
def test_metrics_from_read_tables_equal_metrics_from_views(
    ward: Ledger, by: str, service: str | None
) -> None:
    """The CLI adds incidents up in SQL (rm_incidents); the figures must be those that
    compute_metrics gives from the whole views, bit for bit."""
    from datetime import date

    from projections.metrics import (
        DEFAULT_WINDOWS,
        as_rows,
        compute_metrics,
        metrics_from_tallies,
    )
    from projections.readstore import ReadStore
    from projections.runtime import catch_up

    app = ward.open()
    read = ReadStore(ward.store_url)
    catch_up(app, read)
    first, last = date(2025, 1, 1), date(2027, 12, 31)
    state = read.load_state()
    tallies = read.metric_tallies(service, first, last, DEFAULT_WINDOWS.limits_us())
    assert sorted(read.occupancy(), key=repr) == sorted(state.occupancy.values(), key=repr)
    from_sql = metrics_from_tallies(
        tallies, read.occupancy(), service_id=service, start=first, end=last, by=by
    )
    from_views = compute_metrics(state, service_id=service, start=first, end=last, by=by)
    assert sum(row.incidents for row in from_views) == 30
    assert from_sql == from_views
    assert as_rows(from_sql) == as_rows(from_views)
    read.close()
    app.close()


def test_register_lists_what_the_views_hold(ward: Ledger) -> None:
    """`incidents list` answers from rm_incidents; each row agrees with the incident's view."""
    from projections.readstore import ReadStore

    listed = cli(ward, "incidents", "list")
    read = ReadStore(ward.store_url)
    views = {i.ref: i for i in read.load_state(kinds=("incidents",)).incidents.values()}
    read.close()
    assert [row["incident"] for row in listed] == [
        i.ref for i in sorted(views.values(), key=lambda i: (i.start, i.ref))
    ]
    for row in listed:
        i = views[str(row["incident"])]
        assert row["start"] == i.start.isoformat()
        assert row["minutes"] == round(i.minutes, 1)
        assert row["types"] == [iv.type.value for iv in i.interventions]
        assert row["techniques"] == [iv.technique_id for iv in i.interventions if iv.technique_id]
        assert (row["planned"], row["injuries"]) == (i.planned, len(i.injuries))
        assert (row["debriefs"], row["signed_off"]) == (
            len(i.debriefs),
            i.signed_off_at is not None,
        )


@pytest.mark.parametrize(
    "query", [["incidents", "list", "--service", "ward-3"], ["metrics", "--service", "ward-3"]]
)
def test_queries_on_current_read_tables_load_no_ledger_machinery(
    ward: Ledger, query: list[str]
) -> None:
    """Start-up: with the read tables current, the register and the metrics are answered in
    SQL, without pydantic, eventsourcing or the signing libraries."""
    cli(ward, "incidents", "list")  # catch up first
    heavy = ("pydantic", "eventsourcing", "cryptography", "nacl", "ledger.app")
    args = ["--dir", str(ward.directory), "--db", ward.db, *query, "--format", "json"]
    assert modules_loaded_by_cli(args, heavy) == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-20", "2026-02-14"),
        ("2026-01-20T09:00Z", "2026-02-13T23:59Z"),
        ("2026-01-20T03:00+05:00", "2026-02-14T01:00-08:00"),
        ("2026-02-01T00:00-12:00", None),
        (None, "2026-01-31T00:00+14:00"),
    ],
)
def test_register_bounds_list_what_the_start_times_bound(
    ward: Ledger, start: str | None, end: str | None
) -> None:
    """`incidents list --from/--to` also bounds the register's day column (for its
    indexes): it must list exactly the incidents whose start text is in [from, to)."""
    from cli.incidents import _bound

    everything = cli(ward, "incidents", "list")
    low, high = _bound(start), _bound(end)
    for narrower in ((), ("--service", "ward-3"), ("--person", "P-0")):
        bounds = [*(("--from", start) if start else ()), *(("--to", end) if end else ())]
        listed = cli(ward, "incidents", "list", *narrower, *bounds)
        expected = [
            row
            for row in everything
            if (low is None or str(row["start"]) >= low)
            and (high is None or str(row["start"]) < high)
            and (not narrower or row[narrower[0][2:]] == narrower[1])
        ]
        assert listed == expected and (expected or narrower)


def test_incidents_show_loads_only_the_event_modules_of_its_events(ward: Ledger) -> None:
    """`incidents show` decodes one incident's events: it imports the module declaring them
    (and what that module imports), not every event module nor the write path."""
    from ledger.mapper import EVENT_MODULES

    ref = str(cli(ward, "incidents", "list")[0]["incident"])
    args = ["--dir", str(ward.directory), "--db", ward.db, "incidents", "show", ref]
    modules = (*sorted(set(EVENT_MODULES.values())), "ledger.recording", "ledger.keys")
    loaded = modules_loaded_by_cli([*args, "--format", "json"], modules)
    assert loaded == ["domain.authorisations", "domain.incidents"]


def test_incidents_show_tells_every_event_of_an_incident_and_refuses_an_unknown_ref(
    ward: Ledger,
) -> None:
    listed = cli(ward, "incidents", "list")
    followed = [str(i["incident"]) for i in listed if i["debriefs"]]
    story = cli(ward, "incidents", "show", followed[0])
    assert [e["version"] for e in story] == list(range(1, len(story) + 1))
    assert story[0]["type"] == "incident.recorded" and len(story) > 1
    assert story[0]["data"]["incident_ref"] == followed[0]
    assert story[0]["data"]["outcome"] == "calm"  # personal fields are opened
    for ref in ("INC-000000000000", "P-1"):
        result = run_cli(["--dir", str(ward.directory), "incidents", "show", ref], env=ENV)
        assert result.exit_code != 0 and f"no incident {ref!r} is recorded" in result.stderr


COMPLIANCE_KINDS = ("services", "people", "staff", "plans", "authorisations", "incidents")


@pytest.mark.parametrize(
    "profile", ["uk-eng-mh-unit", "uk-eng-childrens-home", "us-cms-hospital", "uk-sco-school"]
)
def test_compliance_over_a_window_finds_what_the_whole_state_finds(
    ward: Ledger, profile: str
) -> None:
    """`compliance` loads only the window's incidents, found through the register's day
    index (rm_incidents); the findings must be those of the rules run over the whole state
    with the window applied to every incident view, for any as_of, window, service and
    profile (the ward's profile is given each profile's rules in turn)."""
    from datetime import UTC, datetime, timedelta

    from domain.vocabulary import Profile
    from projections.compliance import evaluate, load_profiles
    from projections.model import State
    from projections.readstore import ReadStore
    from projections.runtime import catch_up

    app = ward.open()
    read = ReadStore(ward.store_url)
    catch_up(app, read)
    whole = read.load_state(kinds=COMPLIANCE_KINDS)
    assert len(whole.incidents) == 30
    rules = {Profile.UK_ENG_MH_UNIT: load_profiles()[Profile(profile)]}
    compared = 0
    for as_of in ("2026-01-05T09:00Z", "2026-02-01T00:00Z", "2026-03-20T13:30Z", "2027-01-01Z"):
        when = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(UTC)
        for days in (1, 20, 90, 400):
            since = (when - timedelta(days=days)).date().isoformat()
            for service in (None, "ward-3"):
                window = read.load_state(service_id=service, start=since, kinds=COMPLIANCE_KINDS)
                reference = State(
                    **{k: getattr(whole, k) for k in COMPLIANCE_KINDS if k != "incidents"},
                    incidents={
                        ref: i
                        for ref, i in whole.incidents.items()
                        if i.start.isoformat() >= since
                        and (service is None or i.service_id == service)
                    },
                )
                assert list(window.incidents) == sorted(
                    reference.incidents, key=lambda r: (whole.incidents[r].start, r)
                )
                expected = evaluate(reference, when, service_id=service, profiles=rules)
                assert evaluate(window, when, service_id=service, profiles=rules) == expected
                compared += len(expected)
    assert compared  # the cases found something to compare
    read.close()
    app.close()


@pytest.mark.parametrize("as_of", ["2026-02-01T00:00Z", "2026-03-20T13:30Z"])
@pytest.mark.parametrize("status", [None, "--open", "--overdue"])
def test_compliance_prints_the_findings_of_the_whole_state(
    ward: Ledger, as_of: str, status: str | None
) -> None:
    """End to end: the command's rows are the rules' findings over the whole state, in the
    window, filtered by status."""
    from datetime import UTC, datetime, timedelta

    from projections.compliance import evaluate
    from projections.model import State
    from projections.readstore import ReadStore

    rows = cli(ward, "compliance", "--as-of", as_of, "--days", "30", *([status] if status else []))
    when = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(UTC)
    since = (when - timedelta(days=30)).date().isoformat()
    read = ReadStore(ward.store_url)
    whole = read.load_state(kinds=COMPLIANCE_KINDS)
    read.close()
    whole.incidents = {r: i for r, i in whole.incidents.items() if i.start.isoformat() >= since}
    wanted = status.removeprefix("--") if status else None
    expected = [
        f.row()
        for f in evaluate(State(**whole.__dict__), when)
        if wanted is None or f.status.value == wanted
    ]
    assert rows == expected and (rows or status)
