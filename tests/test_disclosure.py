"""Disclosure control of published metrics: MHSDS rules, derived figures, secondary suppression."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ledger.errors import ValidationError
from projections.disclosure import (
    HES_2018,
    MHSDS,
    SUPPRESSED,
    DisclosureProfile,
    protect_count,
    protect_rate,
    protect_rows,
)
from projections.metrics import METRIC_NAMES, PeriodMetrics


def row(**values: Any) -> PeriodMetrics:
    """A month with 20 incidents of 20 people, 40 interventions and 3,100 person-days."""
    fields: dict[str, Any] = {
        "label": "2026-10",
        "start": date(2026, 10, 1),
        "end": date(2026, 10, 31),
        "interventions": 40,
        "incidents": 20,
        "people": 20,
        "person_days": 3100,
        "rate_per_1000": 40 / 3100 * 1000,
        "prone_share": 0.5,
        "prone_minutes": 123.4,
        "median_minutes": 7.26,
        "p90_minutes": 14.0,
        "injuries_per_100": 15.0,  # 6 injuries
        "planned": 10,
        "emergency": 10,
        "immediate_debrief_within_24h": 0.9,
        "person_debrief_within_72h": 0.5,
        "post_incident_review_within_7d": 0.25,
        "top10pct_share": 0.2,  # 8 of 40 interventions
    }
    return PeriodMetrics(**{**fields, **values})


def protect(**values: Any) -> dict[str, object]:
    (out,) = protect_rows([row(**values)], MHSDS)
    return out


# --- counts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (None, None),
        (0, None),  # MHSDS suppresses zero too: "< 5"
        (1, None),
        (4, None),
        (5, 5),
        (7, 5),
        (8, 10),
        (12, 10),
        (13, 15),
        (1234, 1235),
    ],
)
def test_counts_below_five_are_suppressed_and_the_rest_rounded_to_five(
    n: int | None, shown: int | None
) -> None:
    assert protect_count(n, MHSDS) == shown


@pytest.mark.parametrize(("n", "shown"), [(0, 0), (1, None), (7, None), (8, 10), (10, 10)])
def test_the_hes_profile_suppresses_one_to_seven_but_not_zero(n: int, shown: int | None) -> None:
    assert protect_count(n, HES_2018) == shown


def test_rounding_to_an_even_step_rounds_halves_up() -> None:
    tens = DisclosureProfile(round_to=10)
    assert [protect_count(n, tens) for n in (14, 15, 16)] == [10, 20, 20]


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="negative"):
        protect_count(-1, MHSDS)


def test_a_profile_that_cannot_round_is_refused() -> None:
    with pytest.raises(ValidationError, match="round_to"):
        DisclosureProfile(round_to=0)


# --- rates ------------------------------------------------------------------------------------


def test_a_rate_on_fewer_than_100_person_days_is_suppressed() -> None:
    assert protect_rate(12.345, 99, MHSDS) is None
    assert protect_rate(12.345, 100, MHSDS) == 12.3
    assert protect_rate(None, 5000, MHSDS) is None
    assert protect_rate(1.0, None, MHSDS) is None


def test_in_a_row_the_rate_is_suppressed_below_100_person_days_and_so_is_its_denominator() -> None:
    below = protect(person_days=99, rate_per_1000=40 / 99 * 1000)
    at = protect(person_days=100, rate_per_1000=40 / 100 * 1000)

    assert (below["person_days"], below["rate_per_1000"]) == (SUPPRESSED, SUPPRESSED)
    assert (at["person_days"], at["rate_per_1000"]) == (100, 400.0)  # 40 / 100 x 1000


def test_the_published_rate_is_computed_from_the_published_counts() -> None:
    # 12 interventions → 10; 2,002 person-days → 2,000; 10 / 2,000 x 1,000 = 5.0 (not 5.99).
    out = protect(interventions=12, people=6, person_days=2002, rate_per_1000=12 / 2002 * 1000)

    assert (out["interventions"], out["person_days"], out["rate_per_1000"]) == (10, 2000, 5.0)


@pytest.mark.parametrize(
    "small",
    [
        {"interventions": 4, "incidents": 4, "people": 4, "planned": 0, "emergency": 4},
        {"people": 4},  # 40 interventions on 4 people
    ],
)
def test_the_rate_is_suppressed_when_its_interventions_or_people_are(small: dict[str, int]) -> None:
    assert protect(**small)["rate_per_1000"] == SUPPRESSED


def test_an_unknown_denominator_stays_unknown_not_suppressed() -> None:
    out = protect(person_days=None, rate_per_1000=None)

    assert (out["person_days"], out["rate_per_1000"]) == (None, None)


# --- shares and other derived figures ---------------------------------------------------------


def test_shares_are_computed_from_the_published_counts() -> None:
    # prone: 7 of 13 incidents → 5 of 15 = 0.33 (not 0.54); planned 3 / emergency 10.
    out = protect(incidents=13, planned=3, emergency=10, prone_share=7 / 13)

    assert out["prone_share"] == 0.33
    assert out["incidents"] == 15


def test_a_share_whose_numerator_is_below_five_is_suppressed() -> None:
    # 4 of 20 incidents had a post-incident review in time: the 4 would be disclosed.
    assert protect(post_incident_review_within_7d=0.2)["post_incident_review_within_7d"] == (
        SUPPRESSED
    )
    assert protect(post_incident_review_within_7d=0.25)["post_incident_review_within_7d"] == 0.25


def test_everything_derived_from_suppressed_incidents_is_suppressed() -> None:
    out = protect(
        interventions=6,
        incidents=4,
        people=3,
        planned=0,
        emergency=4,
        prone_share=1.0,
        immediate_debrief_within_24h=1.0,
    )

    for name in (
        "incidents",
        "people",
        "planned",
        "emergency",
        "rate_per_1000",
        "prone_share",
        "median_minutes",
        "p90_minutes",
        "immediate_debrief_within_24h",
        "top10pct_share",
    ):
        assert out[name] == SUPPRESSED, name
    assert out["interventions"] == 5  # 6 is not small


def test_an_empty_period_shows_stars_not_nones_that_would_reveal_the_zero() -> None:
    empty = protect(
        interventions=0,
        incidents=0,
        people=0,
        planned=0,
        emergency=0,
        rate_per_1000=0.0,
        prone_share=None,
        prone_minutes=0.0,
        median_minutes=None,
        p90_minutes=None,
        injuries_per_100=None,
        immediate_debrief_within_24h=None,
        person_debrief_within_72h=None,
        post_incident_review_within_7d=None,
        top10pct_share=None,
    )

    assert all(empty[name] == SUPPRESSED for name in METRIC_NAMES if name != "person_days")
    assert empty["person_days"] == 3100


def test_under_the_hes_profile_an_empty_period_shows_its_zeros() -> None:
    # HES 2018 suppresses 1-7 only: zero is published, and a share of zero incidents is
    # undefined rather than suppressed.
    (out,) = protect_rows(
        [row(interventions=0, incidents=0, people=0, planned=0, emergency=0, prone_share=None)],
        HES_2018,
    )

    assert (out["interventions"], out["incidents"], out["people"]) == (0, 0, 0)
    assert out["prone_share"] is None
    assert out["rate_per_1000"] == 0.0  # 0 / 3,100 x 1,000


def test_injuries_per_100_need_five_injuries() -> None:
    assert protect(injuries_per_100=10.0)["injuries_per_100"] == SUPPRESSED  # 4 of 40
    assert protect(injuries_per_100=15.0)["injuries_per_100"] == 12.5  # 6 → 5 of 40 → 5 / 40


def test_minutes_are_published_for_groups_of_five_or_more() -> None:
    out = protect()
    assert (out["median_minutes"], out["p90_minutes"], out["prone_minutes"]) == (7.3, 14.0, 123.0)
    assert protect(prone_share=0.2)["prone_minutes"] == SUPPRESSED  # 4 prone incidents


def test_top_decile_share_needs_five_people_and_five_interventions_on_top() -> None:
    assert protect(top10pct_share=0.2)["top10pct_share"] == 0.25  # 8 → 10; 10 / 40
    assert protect(top10pct_share=0.1)["top10pct_share"] == SUPPRESSED  # 4 interventions


# --- secondary suppression --------------------------------------------------------------------


def test_both_parts_below_five_would_reveal_each_other_through_the_total() -> None:
    # incidents 8 → 10; planned 4 and emergency 4 are "*", but each is < 5 and they add up
    # to 8..12, so both must be 4. The total is suppressed as well.
    out = protect(incidents=8, planned=4, emergency=4, people=8, interventions=8)

    assert (out["incidents"], out["planned"], out["emergency"]) == ("*", "*", "*")
    assert out["prone_share"] == SUPPRESSED  # derived from the suppressed total


def test_one_small_part_is_not_derivable_when_counts_are_rounded() -> None:
    # incidents 13 → 15 (13..17), emergency 10 → 10 (8..12), planned "*" (0..4): planned
    # could be 1, 2, 3 or 4, so nothing more is suppressed.
    out = protect(incidents=13, planned=3, emergency=10)

    assert (out["incidents"], out["planned"], out["emergency"]) == (15, "*", 10)


def test_without_rounding_the_other_part_is_suppressed_too() -> None:
    exact = DisclosureProfile(round_to=1)
    (out,) = protect_rows([row(incidents=13, planned=3, emergency=10)], exact)

    # 13 - 10 = 3 would give planned away: emergency is suppressed as well.
    assert (out["incidents"], out["planned"], out["emergency"]) == (13, "*", "*")


def test_rows_keep_their_order_labels_and_dates() -> None:
    rows = [row(label="2026-10"), row(label="2026-11", start=date(2026, 11, 1))]
    out = protect_rows(rows, MHSDS)

    assert [(r["label"], r["start"]) for r in out] == [
        ("2026-10", "2026-10-01"),
        ("2026-11", "2026-11-01"),
    ]
    assert list(out[0]) == ["label", "start", "end", *METRIC_NAMES]


def test_a_profile_that_suppresses_only_zero_reveals_it_and_suppresses_nothing_more() -> None:
    zero_only = DisclosureProfile(suppress_below=1)
    (out,) = protect_rows([row(incidents=10, planned=0, emergency=10)], zero_only)

    assert (out["incidents"], out["planned"], out["emergency"]) == (10, "*", 10)


@pytest.mark.parametrize(
    "profile",
    [MHSDS, HES_2018, DisclosureProfile(round_to=1), DisclosureProfile(round_to=10)],
    ids=["mhsds", "hes-2018", "no-rounding", "round-to-10"],
)
def test_no_suppressed_planned_or_emergency_cell_can_be_pinned_down(
    profile: DisclosureProfile,
) -> None:
    # A reader who knows this very algorithm groups every (planned, emergency) pair by what it
    # publishes; within each group a "*" cell must still have at least two possible values.
    published: dict[tuple[object, object, object], list[tuple[int, int, int]]] = {}
    for planned in range(31):
        for emergency in range(31):
            incidents = planned + emergency
            (out,) = protect_rows(
                [row(incidents=incidents, planned=planned, emergency=emergency)], profile
            )
            key = (out["incidents"], out["planned"], out["emergency"])
            published.setdefault(key, []).append((incidents, planned, emergency))

    for key, truths in published.items():
        for cell, shown in enumerate(key):
            if shown == SUPPRESSED:
                assert len({truth[cell] for truth in truths}) >= 2, (key, truths)
