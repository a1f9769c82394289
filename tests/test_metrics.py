"""Period metrics over a folded state, each expectation worked out by hand in the comments.

States are folded from real domain events (Service, Incident aggregates), so corrections,
debriefs and occupancy reach the metrics exactly as they would from the ledger.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest

from domain.authorisations import Coverage
from domain.events import Aggregate, DomainEvent
from domain.incidents import Incident, IncidentFacts, Injury, Intervention, StaffInvolved
from domain.services import Service
from domain.vocabulary import (
    DebriefType,
    InjuredPerson,
    InterventionType,
    Position,
    Profile,
    Reason,
    Setting,
    Severity,
)
from ledger.errors import NotFound, ValidationError
from projections.fold import fold
from projections.metrics import (
    METRIC_NAMES,
    DebriefWindows,
    PeriodMetrics,
    as_rows,
    change_against_baseline,
    compute_metrics,
    metric_series,
)
from projections.model import State

WARD = "ward-3"
MH_UNIT = (Profile.UK_ENG_MH_UNIT,)
NARRATIVE = {
    "force_description": "Two staff used a hold.",
    "outcome": "Calm within ten minutes; no injury.",
}
T = InterventionType


def utc(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def hold(
    start: datetime, minutes: float, kind: InterventionType = T.STANDING, **more: Any
) -> Intervention:
    return Intervention(
        type=kind,
        start=start,
        end=start + timedelta(minutes=minutes),
        staff_count=2,
        staff=(StaffInvolved(staff_id="nurse-a"), StaffInvolved(staff_id="nurse-b")),
        **more,
    )


def incident(
    ref: str,
    person: str,
    start: datetime,
    minutes: float = 10,
    holds: tuple[Intervention, ...] | None = None,
    coverage: Coverage = Coverage.NONE,
    injuries: tuple[Injury, ...] = (),
    service: str = WARD,
) -> Incident:
    """An incident lasting `minutes`; by default one standing hold over the whole of it."""
    end = start + timedelta(minutes=minutes)
    facts = IncidentFacts(
        place="Ward 3 lounge",
        occurred_start=start,
        occurred_end=end,
        reason=Reason.VIOLENCE_TO_OTHERS,
        interventions=holds if holds is not None else (hold(start, minutes),),
        de_escalation=("verbal de-escalation",),
        injuries=injuries,
    )
    return Incident.record(uuid4(), ref, service, person, facts, coverage, MH_UNIT, **NARRATIVE)


def ward(*occupancy: tuple[date, date, int], service: str = WARD) -> Service:
    s = Service.register(service, "Ward 3", Setting.MENTAL_HEALTH_UNIT, MH_UNIT)
    for start, end, person_days in occupancy:
        s.record_occupancy(start, end, person_days)
    return s


def signed(*aggregates: Aggregate) -> list[tuple[DomainEvent, str]]:
    """The aggregates' new events, as signed by sam, in order."""
    events: list[tuple[DomainEvent, str]] = []
    for aggregate in aggregates:
        for event in aggregate.collect_events():
            assert isinstance(event, DomainEvent)
            events.append((event, "sam"))
    return events


def state_of(*aggregates: Aggregate) -> State:
    return fold(signed(*aggregates))


def month(state: State, y: int, m: int, **kw: Any) -> PeriodMetrics:
    start = date(y, m, 1)
    end = (start + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    (row,) = compute_metrics(
        state, service_id=kw.pop("service_id", WARD), start=start, end=end, **kw
    )
    return row


OCTOBER = (date(2026, 10, 1), date(2026, 10, 31), 3100)  # 31 days x 100 beds


# --- counts, rate, durations -----------------------------------------------------------------


def test_a_month_counts_each_intervention_each_incident_and_each_person_once() -> None:
    p1_a = incident("INC-1", "P-1", utc(2026, 10, 5), minutes=4)
    p1_b = incident(
        "INC-2",
        "P-1",
        utc(2026, 10, 9),
        minutes=20,
        holds=(hold(utc(2026, 10, 9), 12, T.PRONE), hold(utc(2026, 10, 9, 12, 12), 8)),
    )
    p2 = incident("INC-3", "P-2", utc(2026, 10, 20), minutes=30)
    row = month(state_of(ward(OCTOBER), p1_a, p1_b, p2), 2026, 10)

    assert row.label == "2026-10"
    assert (row.start, row.end) == (date(2026, 10, 1), date(2026, 10, 31))
    assert row.interventions == 4  # 1 + 2 + 1: every intervention counts (MHS77-style)
    assert row.incidents == 3
    assert row.people == 2  # P-1 and P-2 (MHS76)
    assert row.person_days == 3100
    assert row.rate_per_1000 == pytest.approx(4 / 3100 * 1000)  # 1.2903…
    assert row.prone_share == pytest.approx(1 / 3)  # INC-2 only
    assert row.prone_minutes == pytest.approx(12)
    assert row.median_minutes == 20  # sorted 4, 20, 30
    assert row.p90_minutes == 30  # nearest rank ceil(0.9 x 3) = 3 → 30
    assert row.top10pct_share == pytest.approx(3 / 4)  # ceil(10% of 2) = 1 person: P-1 has 3 of 4


def test_median_of_an_even_count_is_the_mean_of_the_middle_two_and_p90_is_nearest_rank() -> None:
    starts = [utc(2026, 10, d) for d in range(1, 11)]
    minutes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 60]
    found = [
        incident(f"INC-{n}", "P-1", s, m)
        for n, (s, m) in enumerate(zip(starts, minutes, strict=True))
    ]
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert row.median_minutes == 5.5  # (5 + 6) / 2
    assert row.p90_minutes == 9  # rank ceil(0.9 x 10) = 9 → the 9th smallest is 9, not 60


def test_the_rate_is_none_when_there_are_no_person_days() -> None:
    found = incident("INC-1", "P-1", utc(2026, 10, 5))
    row = month(state_of(ward((date(2026, 10, 1), date(2026, 10, 31), 0)), found), 2026, 10)

    assert (row.interventions, row.person_days, row.rate_per_1000) == (1, 0, None)


def test_the_rate_is_none_when_no_occupancy_was_recorded() -> None:
    row = month(state_of(ward(), incident("INC-1", "P-1", utc(2026, 10, 5))), 2026, 10)

    assert (row.interventions, row.person_days, row.rate_per_1000) == (1, None, None)


def test_a_rate_of_zero_when_there_were_person_days_but_no_interventions() -> None:
    row = month(state_of(ward(OCTOBER)), 2026, 10)

    assert (row.person_days, row.rate_per_1000) == (3100, 0.0)  # 0 / 3100 x 1000


def test_periods_with_no_events_still_appear_with_zeros_and_nones() -> None:
    state = state_of(ward(OCTOBER), incident("INC-1", "P-1", utc(2026, 10, 5)))

    rows = compute_metrics(state, service_id=WARD, start=date(2026, 9, 1), end=date(2026, 11, 30))

    assert [r.label for r in rows] == ["2026-09", "2026-10", "2026-11"]
    september = rows[0]
    assert september == PeriodMetrics(
        label="2026-09",
        start=date(2026, 9, 1),
        end=date(2026, 9, 30),
        interventions=0,
        incidents=0,
        people=0,
        person_days=None,  # no occupancy recorded for September
        rate_per_1000=None,
        prone_share=None,
        prone_minutes=0,
        median_minutes=None,
        p90_minutes=None,
        injuries_per_100=None,
        planned=0,
        emergency=0,
        immediate_debrief_within_24h=None,
        person_debrief_within_72h=None,
        post_incident_review_within_7d=None,
        top10pct_share=None,
    )
    assert rows[1].incidents == 1 and rows[2].incidents == 0


def test_injuries_of_anyone_and_any_severity_count_per_100_interventions() -> None:
    hurt = (
        Injury(person=InjuredPerson.SUBJECT, description="graze", severity=Severity.MINOR),
        Injury(person=InjuredPerson.STAFF, description="fracture", severity=Severity.SERIOUS),
    )
    found = [incident("INC-1", "P-1", utc(2026, 10, 5), injuries=hurt)] + [
        incident(f"INC-{n}", "P-2", utc(2026, 10, n)) for n in range(2, 9)
    ]
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert row.interventions == 8  # 8 incidents, one hold each
    assert row.injuries_per_100 == 25.0  # 2 injuries / 8 interventions x 100


def test_planned_use_is_use_under_a_valid_authorisation_and_the_rest_is_emergency() -> None:
    found = [
        incident("INC-1", "P-1", utc(2026, 10, 5), coverage=Coverage.VALID),
        incident("INC-2", "P-1", utc(2026, 10, 6), coverage=Coverage.EXPIRED),
        incident("INC-3", "P-1", utc(2026, 10, 7)),  # no authorisation named
    ]
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert (row.planned, row.emergency) == (1, 2)


def test_prone_position_in_another_type_counts_as_prone() -> None:
    seated_prone = hold(utc(2026, 10, 5), 10, T.PHYSICAL_OTHER, position=Position.PRONE)
    found = incident("INC-1", "P-1", utc(2026, 10, 5), holds=(seated_prone,))
    row = month(state_of(ward(OCTOBER), found), 2026, 10)

    assert (row.prone_share, row.prone_minutes) == (1.0, 10)


# --- corrections ------------------------------------------------------------------------------


def test_a_correction_from_prone_to_standing_changes_the_prone_share() -> None:
    start = utc(2026, 10, 5)
    prone = incident("INC-1", "P-1", start, holds=(hold(start, 10, T.PRONE),))
    other = incident("INC-2", "P-2", utc(2026, 10, 6))
    service = ward(OCTOBER)
    recorded = signed(service, prone, other)

    before = month(fold(recorded), 2026, 10)
    prone.correct(1, "it was a standing hold", {"interventions": (hold(start, 10, T.STANDING),)})
    after = month(fold([*recorded, *signed(prone)]), 2026, 10)

    assert (before.prone_share, before.prone_minutes) == (0.5, 10)  # 1 of 2 incidents prone
    assert (after.prone_share, after.prone_minutes) == (0.0, 0)  # 0 of 2
    assert after.interventions == before.interventions == 2  # corrected, not added


def test_a_correction_that_moves_an_incident_moves_it_to_the_other_period() -> None:
    start = utc(2026, 10, 31, 23, 50)
    late = incident("INC-1", "P-1", start)
    recorded = signed(ward(), late)
    new_start = utc(2026, 11, 1, 0, 5)
    late.correct(
        1,
        "clock was wrong",
        {
            "occurred_start": new_start,
            "occurred_end": new_start + timedelta(minutes=10),
            "interventions": (hold(new_start, 10),),
        },
    )
    state = fold([*recorded, *signed(late)])

    rows = compute_metrics(state, service_id=WARD, start=date(2026, 10, 1), end=date(2026, 11, 30))
    assert [(r.label, r.incidents) for r in rows] == [("2026-10", 0), ("2026-11", 1)]


# --- debrief timeliness -----------------------------------------------------------------------


def test_debriefs_exactly_at_the_window_are_on_time_and_a_second_later_are_late() -> None:
    on_time = incident("INC-1", "P-1", utc(2026, 10, 5))
    late = incident("INC-2", "P-1", utc(2026, 10, 12))
    for found, extra in ((on_time, timedelta(0)), (late, timedelta(seconds=1))):
        assert found.facts is not None
        end = found.facts.occurred_end  # start + 10 min
        found.hold_debrief(uuid4(), DebriefType.IMMEDIATE, end + timedelta(hours=24) + extra, "n")
        found.hold_debrief(uuid4(), DebriefType.PERSON, end + timedelta(hours=72) + extra, "n")
        found.hold_debrief(
            uuid4(), DebriefType.POST_INCIDENT_REVIEW, end + timedelta(days=7) + extra, "n"
        )
    row = month(state_of(ward(OCTOBER), on_time, late), 2026, 10)

    assert row.immediate_debrief_within_24h == 0.5  # INC-1 at 24 h exactly; INC-2 at 24 h + 1 s
    assert row.person_debrief_within_72h == 0.5
    assert row.post_incident_review_within_7d == 0.5


def test_the_window_runs_from_the_incident_end_not_its_start() -> None:
    long = incident("INC-1", "P-1", utc(2026, 10, 5), minutes=120)  # ends 14:00
    long.hold_debrief(uuid4(), DebriefType.IMMEDIATE, utc(2026, 10, 6, 13, 0), "n")  # 23 h later
    row = month(state_of(ward(OCTOBER), long), 2026, 10)

    assert row.immediate_debrief_within_24h == 1.0  # 25 h after the start, 23 h after the end


def test_only_the_first_held_debrief_of_a_type_counts_and_a_declined_one_never_does() -> None:
    first_late = incident("INC-1", "P-1", utc(2026, 10, 5))
    first_late.hold_debrief(uuid4(), DebriefType.PERSON, utc(2026, 10, 9), "n")  # ~96 h: late
    first_on_time = incident("INC-5", "P-5", utc(2026, 10, 9))
    first_on_time.hold_debrief(uuid4(), DebriefType.PERSON, utc(2026, 10, 10), "n")  # ~24 h
    first_on_time.hold_debrief(uuid4(), DebriefType.PERSON, utc(2026, 10, 20), "n")  # a repeat
    declined = incident("INC-2", "P-2", utc(2026, 10, 6))
    declined.decline_debrief(DebriefType.PERSON, utc(2026, 10, 6, 13), "n", "asleep")
    held_after_decline = incident("INC-3", "P-3", utc(2026, 10, 7))
    held_after_decline.decline_debrief(DebriefType.PERSON, utc(2026, 10, 7, 13), "n", "asleep")
    held_after_decline.hold_debrief(uuid4(), DebriefType.PERSON, utc(2026, 10, 8), "n")  # 24 h
    other_type = incident("INC-4", "P-4", utc(2026, 10, 8))
    other_type.hold_debrief(uuid4(), DebriefType.STAFF, utc(2026, 10, 8, 13), "n")
    found = (first_late, declined, held_after_decline, other_type, first_on_time)
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert row.person_debrief_within_72h == 0.4  # INC-3 and INC-5, of 5 incidents


def test_debrief_windows_are_configurable() -> None:
    found = incident("INC-1", "P-1", utc(2026, 10, 5))  # ends 12:10
    found.hold_debrief(uuid4(), DebriefType.IMMEDIATE, utc(2026, 10, 5, 16, 10), "n")  # 4 h later
    state = state_of(ward(OCTOBER), found)

    assert month(state, 2026, 10).immediate_debrief_within_24h == 1.0
    three_hours = DebriefWindows(immediate=timedelta(hours=3))  # HIS Scotland target
    assert month(state, 2026, 10, windows=three_hours).immediate_debrief_within_24h == 0.0


def test_a_negative_debrief_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="immediate"):
        DebriefWindows(immediate=timedelta(hours=-1))


# --- concentration ----------------------------------------------------------------------------


def test_top_decile_share_with_ties_at_the_cut_off() -> None:
    # 11 people → ceil(10% x 11) = 2 people. A, B and C have 3 interventions each (a tie across
    # the cut-off); 8 others have 1 each. Total 3 x 3 + 8 = 17; the top two hold 3 + 3 = 6
    # whichever two of A, B, C are taken.
    found = []
    day = 1
    for person, count in [("P-A", 3), ("P-B", 3), ("P-C", 3)] + [(f"P-{n}", 1) for n in range(8)]:
        for _ in range(count):
            found.append(incident(f"INC-{day}", person, utc(2026, 10, 1) + timedelta(hours=day)))
            day += 1
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert (row.people, row.interventions) == (11, 17)
    assert row.top10pct_share == pytest.approx(6 / 17)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([5], 1.0),  # one person: ceil(0.1) = 1 → all of it
        ([2, 2, 2], 2 / 6),  # three tied people: min 1 person → 2 of 6
        ([4] + [1] * 9, 4 / 13),  # 10 people → exactly 1
    ],
)
def test_top_decile_takes_at_least_one_person(counts: list[int], expected: float) -> None:
    found = []
    for person, count in enumerate(counts):
        for k in range(count):
            start = utc(2026, 10, 1 + person, 1 + k)
            found.append(incident(f"INC-{person}-{k}", f"P-{person}", start))
    row = month(state_of(ward(OCTOBER), *found), 2026, 10)

    assert row.top10pct_share == pytest.approx(expected)


# --- periods ----------------------------------------------------------------------------------


def test_an_incident_belongs_to_the_utc_date_of_its_start() -> None:
    new_york = timezone(timedelta(hours=-5))
    # 31 Dec 2026 20:30 in New York is 1 Jan 2027 01:30 UTC → 2027.
    evening = datetime(2026, 12, 31, 20, 30, tzinfo=new_york)
    state = state_of(ward(), incident("INC-1", "P-1", evening))

    rows = compute_metrics(
        state, service_id=WARD, start=date(2026, 1, 1), end=date(2027, 12, 31), by="year"
    )
    assert [(r.label, r.incidents) for r in rows] == [("2026", 0), ("2027", 1)]


def test_weeks_are_iso_weeks_starting_on_monday() -> None:
    # 2026-12-28 is a Monday; ISO week 53 of 2026 runs to Sunday 2027-01-03.
    found = [
        incident("INC-1", "P-1", utc(2026, 12, 27, 23, 0)),  # Sunday: W52
        incident("INC-2", "P-1", utc(2026, 12, 31)),  # Thursday: W53
        incident("INC-3", "P-1", utc(2027, 1, 1)),  # Friday, new year, still 2026-W53
        incident("INC-4", "P-1", utc(2027, 1, 4)),  # Monday: 2027-W01
    ]
    rows = compute_metrics(
        state_of(ward(), *found),
        service_id=WARD,
        start=date(2026, 12, 21),
        end=date(2027, 1, 10),
        by="week",
    )

    assert [(r.label, r.start, r.end, r.incidents) for r in rows] == [
        ("2026-W52", date(2026, 12, 21), date(2026, 12, 27), 1),
        ("2026-W53", date(2026, 12, 28), date(2027, 1, 3), 2),
        ("2027-W01", date(2027, 1, 4), date(2027, 1, 10), 1),
    ]


def test_quarters_and_years() -> None:
    found = [
        incident("INC-1", "P-1", utc(2026, 3, 31, 23, 59)),  # Q1
        incident("INC-2", "P-1", utc(2026, 4, 1, 0, 0)),  # Q2
        incident("INC-3", "P-1", utc(2026, 12, 31)),  # Q4
        incident("INC-4", "P-1", utc(2027, 1, 1)),  # 2027-Q1
    ]
    state = state_of(ward(), *found)

    quarters = compute_metrics(
        state, service_id=WARD, start=date(2026, 1, 1), end=date(2027, 3, 31), by="quarter"
    )
    assert [(r.label, r.start, r.end, r.incidents) for r in quarters] == [
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31), 1),
        ("2026-Q2", date(2026, 4, 1), date(2026, 6, 30), 1),
        ("2026-Q3", date(2026, 7, 1), date(2026, 9, 30), 0),
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), 1),
        ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31), 1),
    ]
    years = compute_metrics(
        state, service_id=WARD, start=date(2026, 1, 1), end=date(2027, 12, 31), by="year"
    )
    assert [(r.label, r.incidents) for r in years] == [("2026", 3), ("2027", 1)]


def test_the_first_and_last_periods_are_clipped_to_the_range() -> None:
    found = [
        incident("INC-1", "P-1", utc(2026, 10, 14)),  # before the range
        incident("INC-2", "P-1", utc(2026, 10, 15, 0, 0)),
        incident("INC-3", "P-1", utc(2026, 11, 10, 23, 0)),
        incident("INC-4", "P-1", utc(2026, 11, 11)),  # after the range
    ]
    rows = compute_metrics(
        state_of(ward(OCTOBER), *found),
        service_id=WARD,
        start=date(2026, 10, 15),
        end=date(2026, 11, 10),
    )

    assert [(r.label, r.start, r.end, r.incidents) for r in rows] == [
        ("2026-10", date(2026, 10, 15), date(2026, 10, 31), 1),
        ("2026-11", date(2026, 11, 1), date(2026, 11, 10), 1),
    ]
    assert rows[0].person_days == 1700  # 17 days of October x 100
    assert rows[1].person_days is None  # November has no occupancy record


# --- occupancy --------------------------------------------------------------------------------


def test_a_quarterly_occupancy_record_is_pro_rated_by_days_into_months() -> None:
    quarter = (date(2026, 10, 1), date(2026, 12, 31), 9200)  # 92 days → 100 a day
    rows = compute_metrics(
        state_of(ward(quarter)), service_id=WARD, start=date(2026, 10, 1), end=date(2026, 12, 31)
    )

    assert [r.person_days for r in rows] == [3100, 3000, 3100]  # 31, 30, 31 days x 100


def test_a_week_spanning_two_monthly_records_takes_its_days_from_each() -> None:
    # Week 2026-10-26 (Mon) .. 2026-11-01 (Sun): 6 October days at 3100/31 = 100
    # plus 1 November day at 1500/30 = 50 → 650.
    state = state_of(ward(OCTOBER, (date(2026, 11, 1), date(2026, 11, 30), 1500)))
    (row,) = compute_metrics(
        state, service_id=WARD, start=date(2026, 10, 26), end=date(2026, 11, 1), by="week"
    )

    assert row.person_days == 650


def test_pro_rated_person_days_round_half_up() -> None:
    # 10 days, 15 person-days → 1.5 a day; 3 days → 4.5 → 5.
    state = state_of(ward((date(2026, 10, 1), date(2026, 10, 10), 15)))
    rows = compute_metrics(
        state, service_id=WARD, start=date(2026, 10, 1), end=date(2026, 10, 3), by="month"
    )

    assert rows[0].person_days == 5


def test_person_days_are_unknown_unless_every_day_of_the_period_is_covered() -> None:
    half = (date(2026, 10, 1), date(2026, 10, 15), 1500)
    row = month(state_of(ward(half), incident("INC-1", "P-1", utc(2026, 10, 5))), 2026, 10)

    assert (row.person_days, row.rate_per_1000) == (None, None)  # 16 days have no record


def test_the_most_specific_occupancy_record_speaks_for_a_day() -> None:
    # A quarter at 9200 (100 a day) and a corrected October at 6200 (200 a day).
    quarter = (date(2026, 10, 1), date(2026, 12, 31), 9200)
    october = (date(2026, 10, 1), date(2026, 10, 31), 6200)
    rows = compute_metrics(
        state_of(ward(quarter, october)),
        service_id=WARD,
        start=date(2026, 10, 1),
        end=date(2026, 11, 30),
    )

    assert [r.person_days for r in rows] == [6200, 3000]


def test_all_services_add_up_including_services_without_incidents() -> None:
    def organisation() -> list[Aggregate]:
        return [
            ward(OCTOBER),
            ward((date(2026, 10, 1), date(2026, 10, 31), 1550), service="ward-4"),
            incident("INC-1", "P-1", utc(2026, 10, 5)),  # ward-3; ward-4 had none
        ]

    row = month(state_of(*organisation()), 2026, 10, service_id=None)

    assert (row.incidents, row.people, row.person_days) == (1, 1, 4650)  # 3100 + 1550
    assert row.rate_per_1000 == pytest.approx(1 / 4650 * 1000)

    # ward-5 had an incident but recorded no occupancy: the organisation's denominator is
    # unknown, not 4650.
    ward5 = incident("INC-9", "P-9", utc(2026, 10, 7), service="ward-5")
    state = state_of(*organisation(), ward(service="ward-5"), ward5)
    assert month(state, 2026, 10, service_id=None).person_days is None
    assert month(state, 2026, 10, service_id="ward-4").person_days == 1550


# --- inputs -----------------------------------------------------------------------------------


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="ends"):
        compute_metrics(State(), service_id=None, start=date(2026, 10, 2), end=date(2026, 10, 1))


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValidationError, match="week, month, quarter, year"):
        compute_metrics(
            State(),
            service_id=None,
            start=date(2026, 10, 1),
            end=date(2026, 10, 2),
            by="fortnight",  # type: ignore[arg-type]
        )


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(NotFound, match="ward-9"):
        compute_metrics(
            state_of(ward()), service_id="ward-9", start=date(2026, 10, 1), end=date(2026, 10, 2)
        )


# --- series, baseline, rows -------------------------------------------------------------------


def row_with(label: str, **values: Any) -> PeriodMetrics:
    fields: dict[str, Any] = {
        "label": label,
        "start": date(2026, 1, 1),
        "end": date(2026, 1, 31),
        "interventions": 0,
        "incidents": 0,
        "people": 0,
        "person_days": None,
        "rate_per_1000": None,
        "prone_share": None,
        "prone_minutes": 0.0,
        "median_minutes": None,
        "p90_minutes": None,
        "injuries_per_100": None,
        "planned": 0,
        "emergency": 0,
        "immediate_debrief_within_24h": None,
        "person_debrief_within_72h": None,
        "post_incident_review_within_7d": None,
        "top10pct_share": None,
    }
    return PeriodMetrics(**{**fields, **values})


def test_metric_series_gives_labels_and_floats_for_spc() -> None:
    rows = [row_with("2026-01", interventions=3), row_with("2026-02", rate_per_1000=1.5)]

    assert metric_series(rows, "interventions") == [("2026-01", 3.0), ("2026-02", 0.0)]
    assert metric_series(rows, "rate_per_1000") == [("2026-01", None), ("2026-02", 1.5)]


def test_metric_series_refuses_an_unknown_name_and_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="rate_per_1000") as raised:
        metric_series([], "restraint_rate")
    assert "restraint_rate" in str(raised.value)
    assert all(name in str(raised.value) for name in METRIC_NAMES)


def test_change_against_baseline_compares_per_period_means() -> None:
    baseline = [
        row_with("2025-01", interventions=10, rate_per_1000=2.0, prone_share=0.5),
        row_with("2025-02", interventions=20, rate_per_1000=4.0, prone_share=None),
    ]
    current = [
        row_with("2026-01", interventions=12, rate_per_1000=1.5, prone_share=0.25),
        row_with("2026-02", interventions=12, rate_per_1000=None, prone_share=0.25),
    ]
    change = change_against_baseline(current, baseline)

    assert set(change) == set(METRIC_NAMES)
    assert change["interventions"] == pytest.approx(-0.2)  # mean 12 vs 15 → -3/15
    assert change["rate_per_1000"] == pytest.approx(-0.5)  # 1.5 vs mean(2, 4) = 3
    assert change["prone_share"] == pytest.approx(-0.5)  # 0.25 vs 0.5 (None skipped)
    assert change["incidents"] is None  # baseline mean 0: no relative change from zero
    assert change["median_minutes"] is None  # undefined in both


def test_as_rows_is_json_ready_and_rounded() -> None:
    row = row_with(
        "2026-01",
        interventions=4,
        person_days=3100,
        rate_per_1000=4 / 3100 * 1000,
        prone_share=1 / 3,
        median_minutes=12.345,
    )
    (out,) = as_rows([row])

    assert json.loads(json.dumps(out)) == out
    assert out["start"] == "2026-01-01" and out["end"] == "2026-01-31"
    assert out["interventions"] == 4 and out["person_days"] == 3100
    assert out["rate_per_1000"] == 1.29
    assert out["prone_share"] == 0.333
    assert out["median_minutes"] == 12.3
    assert out["p90_minutes"] is None
    assert list(out) == ["label", "start", "end", *METRIC_NAMES]
