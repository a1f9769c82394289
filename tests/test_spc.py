"""XmR charts and the Making Data Count rules: hand-worked limits, each rule firing and just not
firing, baselines, the lower clamp, gaps, wording, and shift/symmetry properties."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import ValidationError
from projections.spc import Signal, SignalKind, SpcPoint, XmrChart, xmr

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def months(first: str, count: int) -> list[str]:
    """`months("Sep 2025", 3)` -> ["Sep 2025", "Oct 2025", "Nov 2025"]."""
    name, year = first.split()
    start = int(year) * 12 + MONTHS.index(name)
    return [f"{MONTHS[m % 12]} {m // 12}" for m in range(start, start + count)]


def chart(values: Sequence[float | None], **options: Any) -> XmrChart:
    labels = months("Jan 2025", len(values))
    return xmr(list(zip(labels, values, strict=True)), **options)


def kinds(result: XmrChart) -> list[tuple[SignalKind, str, tuple[int, ...]]]:
    return [(s.kind, s.direction, s.indexes) for s in result.signals]


def of_kind(result: XmrChart, kind: SignalKind) -> list[Signal]:
    return [s for s in result.signals if s.kind == kind]


# A fixed baseline used by the rule tests, so the points under test do not move the limits:
#   values 10, 20, 10, 20, 10, 20 -> mean = 90 / 6 = 15
#   moving ranges 10, 10, 10, 10, 10 -> AMR = 50 / 5 = 10
#   upper = 15 + 2.66 * 10 = 41.6; lower = 15 - 26.6 = -11.6, clamped to 0 by default
#   near: (2/3) * 2.66 * 10 = 17.7333; upper_near = 32.7333; lower_near = -2.7333
WIDE = [10.0, 20.0, 10.0, 20.0, 10.0, 20.0]
WIDE_BASELINE = (0, 5)


def after_wide(values: Sequence[float | None], **options: Any) -> XmrChart:
    return chart([*WIDE, *values], baseline=WIDE_BASELINE, **options)


# --- worked examples ---------------------------------------------------------------------------


def test_worked_example_mean_moving_ranges_and_limits() -> None:
    result = chart([5, 7, 6, 8, 4, 6])
    # mean = (5 + 7 + 6 + 8 + 4 + 6) / 6 = 36 / 6 = 6
    # moving ranges |7-5|=2, |6-7|=1, |8-6|=2, |4-8|=4, |6-4|=2 -> AMR = 11 / 5 = 2.2
    # limits 6 ± 2.66 * 2.2 = 6 ± 5.852 -> 11.852 and 0.148
    # near limits 6 ± (2/3) * 2.66 * 2.2 = 6 ± 3.901333 -> 9.901333 and 2.098667
    assert result.mean == 6
    assert result.upper == pytest.approx(11.852)
    assert result.lower == pytest.approx(0.148)
    assert result.upper_near == pytest.approx(9.901333, abs=1e-6)
    assert result.lower_near == pytest.approx(2.098667, abs=1e-6)
    assert [p.moving_range for p in result.points] == [None, 2, 1, 2, 4, 2]
    assert result.points[0] == SpcPoint(label="Jan 2025", value=5, moving_range=None)
    assert result.baseline == (0, 5)
    assert result.signals == ()


def test_worked_example_with_one_point_above_the_upper_limit() -> None:
    result = chart([10, 12, 11, 13, 9, 11, 30])
    # mean = 96 / 7 = 13.714286
    # moving ranges 2, 1, 2, 4, 2, 19 -> AMR = 30 / 6 = 5
    # upper = 13.714286 + 2.66 * 5 = 13.714286 + 13.3 = 27.014286 < 30
    # the six points before it are all below the mean: a run of 6, short of 7
    assert result.mean == pytest.approx(13.714286, abs=1e-6)
    assert result.upper == pytest.approx(27.014286, abs=1e-6)
    assert result.lower == pytest.approx(0.414286, abs=1e-6)
    assert kinds(result) == [(SignalKind.OUTSIDE_LIMITS, "high", (6,))]


# --- rule 1: outside the limits ----------------------------------------------------------------

# Exactly representable limits: 100, 150, 100, 150 -> mean 125, AMR 50,
# upper = 125 + 2.66 * 50 = 125 + 133 = 258, lower = 125 - 133 = -8 (clamped to 0).
ROUND = [100.0, 150.0, 100.0, 150.0]


def test_a_point_above_the_upper_limit_signals() -> None:
    result = chart([*ROUND, 258.5], baseline=(0, 3))
    assert result.upper == 258
    assert kinds(result) == [(SignalKind.OUTSIDE_LIMITS, "high", (4,))]


def test_a_point_exactly_on_the_upper_limit_does_not_signal() -> None:
    result = chart([*ROUND, 258.0], baseline=(0, 3))
    assert of_kind(result, SignalKind.OUTSIDE_LIMITS) == []


def test_a_point_below_the_lower_limit_signals_low() -> None:
    # unclamped lower = -8
    result = chart([*ROUND, -8.5], baseline=(0, 3), lower_bound=None)
    assert result.lower == -8
    assert kinds(result) == [(SignalKind.OUTSIDE_LIMITS, "low", (4,))]
    assert (
        of_kind(chart([*ROUND, -8.0], baseline=(0, 3), lower_bound=None), SignalKind.OUTSIDE_LIMITS)
        == []
    )


# --- rule 2: runs on one side of the mean ------------------------------------------------------

# After WIDE (mean 15): values between 11 and 14 are below the mean and well inside the near limits.
BELOW_7 = [11.0, 12.0, 11.0, 12.0, 11.0, 12.0, 11.0]


def test_seven_points_below_the_mean_is_a_run() -> None:
    result = after_wide(BELOW_7)
    assert kinds(result) == [(SignalKind.RUN, "low", tuple(range(6, 13)))]


def test_six_points_below_the_mean_is_not_a_run_of_seven() -> None:
    result = after_wide([*BELOW_7[:6], 16.0])
    assert result.signals == ()


def test_a_point_exactly_on_the_mean_breaks_the_run() -> None:
    on_mean = [11.0, 12.0, 11.0, 15.0, 11.0, 12.0, 11.0, 12.0]
    assert after_wide(on_mean).signals == ()
    just_below = [11.0, 12.0, 11.0, 14.0, 11.0, 12.0, 11.0, 12.0]
    assert kinds(after_wide(just_below)) == [(SignalKind.RUN, "low", tuple(range(6, 14)))]
    # and above: 16..18 are above the mean, 15 is on it (index 5, the 20, is above too)
    assert after_wide([17.0, 16.0, 15.0, 16.0, 18.0, 17.0, 16.0, 18.0]).signals == ()


def test_a_run_above_the_mean_is_high_and_reported_once_with_every_point() -> None:
    above = [16.0, 18.0, 17.0, 18.0, 16.0, 18.0, 17.0, 18.0, 16.0]
    result = after_wide(above)
    # index 5 (20) is above the mean too, so the run starts there: 10 points, one signal
    assert kinds(result) == [(SignalKind.RUN, "high", tuple(range(5, 15)))]


def test_run_length_is_configurable() -> None:
    six = [*BELOW_7[:6], 16.0]
    assert kinds(after_wide(six, run_length=6)) == [(SignalKind.RUN, "low", tuple(range(6, 12)))]
    assert after_wide(BELOW_7, run_length=8).signals == ()


def test_a_gap_breaks_a_run() -> None:
    gapped = [11.0, 12.0, 11.0, None, 12.0, 11.0, 12.0, 11.0]
    assert after_wide(gapped).signals == ()


# --- rule 3: trends ----------------------------------------------------------------------------


def test_seven_rising_points_are_a_trend() -> None:
    # 20 -> 11 is a fall, so the trend starts at index 6; 11..14 below the mean 15, 15 on it,
    # 16..17 above: no run; all inside the near limits (-2.73..32.73)
    result = after_wide([11, 12, 13, 14, 15, 16, 17])
    assert kinds(result) == [(SignalKind.TREND, "up", tuple(range(6, 13)))]


def test_six_rising_points_are_not_a_trend_of_seven() -> None:
    assert after_wide([11, 12, 13, 14, 15, 16, 10]).signals == ()


def test_a_tie_breaks_a_trend() -> None:
    assert after_wide([11, 12, 13, 13, 14, 15, 16]).signals == ()


def test_a_gap_breaks_a_trend() -> None:
    assert after_wide([11, 12, 13, None, 14, 15, 16, 17]).signals == ()


def test_trend_length_counts_points_not_rises_and_is_configurable() -> None:
    falling = [19.0, 18.0, 17.0, 16.0, 15.0]  # 20 -> 19 is a fall too: 6 points, 5 falls
    assert kinds(after_wide(falling, trend_length=6)) == [
        (SignalKind.TREND, "down", tuple(range(5, 11)))
    ]
    assert after_wide(falling, trend_length=7).signals == ()


def test_trend_matches_the_nhs_r_test_vector() -> None:
    # NHSRplotthedots tests: ptd_seven_point_trend(c(2, 1:7, 3)) flags the 7 rising points.
    # mean = 33 / 9 = 3.667; AMR = (1 * 7 + 4) / 8 = 1.375; upper = 3.667 + 3.6575 = 7.324
    result = chart([2, 1, 2, 3, 4, 5, 6, 7, 3])
    assert kinds(result) == [(SignalKind.TREND, "up", tuple(range(1, 8)))]
    falling = chart([2, 7, 6, 5, 4, 3, 2, 1, 3], lower_bound=None)
    assert [(s.direction, s.indexes) for s in of_kind(falling, SignalKind.TREND)] == [
        ("down", tuple(range(1, 8)))
    ]


# --- rule 4: two of three in the outer third ---------------------------------------------------
# After WIDE: close to the upper limit means 32.7333 < x <= 41.6.


def test_two_of_three_close_to_the_upper_limit_signals() -> None:
    result = after_wide([35, 20, 34])
    assert kinds(result) == [(SignalKind.TWO_OF_THREE, "high", (6, 8))]


def test_two_of_three_needs_all_three_points_on_the_same_side_of_the_mean() -> None:
    # NHS-R convention: the middle point below the mean (10 < 15) spoils the window
    assert after_wide([35, 10, 34]).signals == ()


def test_two_close_points_on_opposite_sides_do_not_signal() -> None:
    # unclamped: lower_near = -2.7333, lower = -11.6; 35 is close high, -5 close low
    assert after_wide([35, -5, 20], lower_bound=None).signals == ()


def test_two_of_three_close_to_the_lower_limit_signals_low() -> None:
    result = after_wide([-5, 0, -4], lower_bound=None)
    assert kinds(result) == [(SignalKind.TWO_OF_THREE, "low", (6, 8))]


def test_a_point_on_the_mean_spoils_a_two_of_three_window() -> None:
    assert after_wide([35, 15, 34]).signals == ()


def test_a_gap_spoils_a_two_of_three_window() -> None:
    assert after_wide([35, None, 34]).signals == ()


def test_one_close_point_is_not_enough() -> None:
    assert after_wide([35, 20, 30]).signals == ()


def test_a_point_outside_the_limits_is_not_close() -> None:
    # 45 > 41.6 is outside, so only 35 is in the outer third
    assert kinds(after_wide([45, 35, 20])) == [(SignalKind.OUTSIDE_LIMITS, "high", (6,))]


def test_overlapping_windows_make_one_two_of_three_signal() -> None:
    result = after_wide([35, 36, 20, 37])
    assert kinds(result) == [(SignalKind.TWO_OF_THREE, "high", (6, 7, 9))]
    # windows 6..8 and 8..10 qualify and share index 8 (window 7..9 has only one close point)
    chained = after_wide([35, 20, 34, 20, 36])
    assert kinds(chained) == [(SignalKind.TWO_OF_THREE, "high", (6, 8, 10))]
    assert chained.signals[0].explanation.startswith("3 of 5 points (Jul\u2013Nov 2025)")


# --- baseline, clamp, gaps, validation ---------------------------------------------------------


def test_limits_fixed_on_a_baseline_apply_to_later_points() -> None:
    result = chart([10, 12, 11, 13, 30, 31, 32], baseline=(0, 3))
    # baseline mean = 46 / 4 = 11.5; moving ranges 2, 1, 2 -> AMR = 5 / 3
    # limits 11.5 ± 2.66 * 5 / 3 = 11.5 ± 4.433333 -> 15.933333 and 7.066667
    # |30 - 13| = 17 is outside the baseline and does not count towards AMR
    assert result.baseline == (0, 3)
    assert result.mean == 11.5
    assert result.upper == pytest.approx(15.933333, abs=1e-6)
    assert result.lower == pytest.approx(7.066667, abs=1e-6)
    assert result.points[4].moving_range == 17
    assert kinds(result) == [
        (SignalKind.OUTSIDE_LIMITS, "high", (4,)),
        (SignalKind.OUTSIDE_LIMITS, "high", (5,)),
        (SignalKind.OUTSIDE_LIMITS, "high", (6,)),
    ]
    # the same points without a baseline: mean = 139 / 7 = 19.857143; moving ranges
    # 2, 1, 2, 17, 1, 1 -> AMR = 24 / 6 = 4; upper = 19.857143 + 10.64 = 30.497143,
    # so the jump inflates the limits and 30 is no longer outside
    unfixed = chart([10, 12, 11, 13, 30, 31, 32])
    assert unfixed.upper == pytest.approx(30.497143, abs=1e-6)
    assert [s.indexes for s in of_kind(unfixed, SignalKind.OUTSIDE_LIMITS)] == [(5,), (6,)]


def test_baseline_can_be_a_later_stretch() -> None:
    result = chart([50, 10, 12, 11, 13], baseline=(1, 4))
    # mean = 46 / 4 = 11.5; moving ranges inside the baseline 2, 1, 2 -> AMR = 5 / 3
    # (|10 - 50| = 40 reaches outside it and does not count); upper = 15.933333
    assert result.mean == 11.5
    assert result.upper == pytest.approx(15.933333, abs=1e-6)
    assert kinds(result) == [(SignalKind.OUTSIDE_LIMITS, "high", (0,))]


def test_lower_limits_are_clamped_to_the_lower_bound() -> None:
    values = [1, 0, 2, 0, 1]
    # mean = 4 / 5 = 0.8; moving ranges 1, 2, 2, 1 -> AMR = 6 / 4 = 1.5
    # limits 0.8 ± 3.99 -> 4.79 and -3.19; near 0.8 ± 2.66 -> 3.46 and -1.86
    clamped = chart(values)
    assert (clamped.lower, clamped.lower_near) == (0, 0)
    assert clamped.upper == pytest.approx(4.79)
    unclamped = chart(values, lower_bound=None)
    assert unclamped.lower == pytest.approx(-3.19)
    assert unclamped.lower_near == pytest.approx(-1.86)
    assert chart(values, lower_bound=-2.0).lower == -2


def test_a_value_below_the_lower_bound_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"'Feb 2025' \(-1\.0\) is below the lower bound"):
        chart([1.0, -1.0, 2.0])


def test_gaps_are_left_out_of_the_mean_and_moving_ranges() -> None:
    result = chart([4, None, 6, 8, None, 5])
    # mean = (4 + 6 + 8 + 5) / 4 = 5.75; the only moving range is |8 - 6| = 2, so AMR = 2
    # upper = 5.75 + 5.32 = 11.07
    assert [p.moving_range for p in result.points] == [None, None, None, 2, None, None]
    assert [p.value for p in result.points] == [4, None, 6, 8, None, 5]
    assert result.mean == 5.75
    assert result.upper == pytest.approx(11.07)
    assert result.signals == ()


@pytest.mark.parametrize(
    ("values", "options", "message"),
    [
        ([], {}, "empty series"),
        ([3.0], {}, "at least 2 values"),
        ([None, None, 1.0], {}, "at least 2 values"),
        ([1.0, None, 2.0], {}, "two consecutive values"),
        ([1.0, 2.0, math.nan], {}, "use None for no data"),
        ([1.0, 2.0, math.inf], {}, "use None for no data"),
        ([1.0, 2.0, 3.0], {"baseline": (0, 3)}, "baseline"),
        ([1.0, 2.0, 3.0], {"baseline": (2, 1)}, "baseline"),
        ([1.0, 2.0, 3.0], {"baseline": (-1, 1)}, "baseline"),
        ([1.0, 2.0, 3.0], {"baseline": (2, 2)}, "at least 2 values"),
        ([1.0, 2.0, 3.0], {"run_length": 1}, "run_length"),
        ([1.0, 2.0, 3.0], {"trend_length": 1}, "trend_length"),
        ([1.0, 2.0, 3.0], {"lower_bound": math.nan}, "lower_bound"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(
    values: list[float | None], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        chart(values, **options)


# --- wording -----------------------------------------------------------------------------------


def test_explanations_read_plainly_for_a_board() -> None:
    labels = months("Sep 2025", 13)  # index 6 is Mar 2026, index 12 is Sep 2026
    run = xmr(list(zip(labels, [*WIDE, *BELOW_7], strict=True)), baseline=WIDE_BASELINE)
    assert [s.explanation for s in run.signals] == [
        "7 points in a row below the mean (Mar\u2013Sep 2026): a sustained fall"
    ]

    trend = after_wide([11, 12, 13, 14, 15, 16, 17])
    assert trend.signals[0].explanation == (
        "7 points in a row, each higher than the one before (Jul 2025\u2013Jan 2026): "
        "a steady upward trend"
    )

    outside = chart([10, 12, 11, 13, 9, 11, 30])
    assert outside.signals[0].explanation == (
        "Jul 2025 (30) is above the upper limit (27.01): an unusually high value"
    )
    low = chart([*ROUND, -8.5], baseline=(0, 3), lower_bound=None)
    assert low.signals[0].explanation == (
        "May 2025 (-8.5) is below the lower limit (-8): an unusually low value"
    )

    two = after_wide([35, 20, 34])
    assert two.signals[0].explanation == (
        "2 of 3 points (Jul\u2013Sep 2025) close to the upper limit (above 32.73): "
        "an early warning of a rise"
    )
    adjacent = after_wide([-5, -4, 0], lower_bound=None)
    assert adjacent.signals[0].explanation == (
        "2 points in a row (Jul\u2013Aug 2025) close to the lower limit (below -2.73): "
        "an early warning of a fall"
    )


def test_spans_say_shared_trailing_words_once_and_small_numbers_keep_their_digits() -> None:
    points = [("Q4 2025", 0.001), ("Q1 2026", 0.0042), ("Q2 2026", 0.002), ("Q3 2026", 0.05)]
    result = xmr(points, baseline=(0, 2))
    # mean = 0.0072 / 3 = 0.0024; AMR = (0.0032 + 0.0022) / 2 = 0.0027; upper = 0.009582
    assert [s.explanation for s in result.signals] == [
        "Q3 2026 (0.05) is above the upper limit (0.0096): an unusually high value"
    ]
    plain = xmr([("week 1", 1.0), ("week 2", 1.0), ("week 3", 1200.5)], baseline=(0, 1))
    assert plain.signals[0].explanation == (
        "week 3 (1,200.5) is above the upper limit (1): an unusually high value"
    )


def test_signals_are_ordered_by_first_point_then_rule() -> None:
    # a run of 11 above the mean (5..15) and, at its end, a point outside the limits (50)
    result = after_wide([16, 18, 17, 18, 16, 18, 17, 18, 16, 50])
    assert [(s.kind, s.indexes[0]) for s in result.signals] == [
        (SignalKind.RUN, 5),
        (SignalKind.OUTSIDE_LIMITS, 15),
    ]
    assert [kind.value for kind in SignalKind] == [
        "outside-limits",
        "run",
        "trend",
        "two-of-three",
    ]


# --- properties --------------------------------------------------------------------------------


@st.composite
def series(draw: st.DrawFn, negative: bool = True) -> list[float | None]:
    """Whole numbers (so shifts are exact), a few gaps, the first two present (one moving range).

    Small ranges give ties and points on the mean; a sorted stretch gives trends and runs."""
    top = draw(st.sampled_from([3, 20, 1000]))
    numbers = draw(st.lists(st.integers(-top if negative else 0, top), min_size=2, max_size=30))
    start, end = sorted(draw(st.lists(st.integers(0, len(numbers)), min_size=2, max_size=2)))
    numbers[start:end] = sorted(numbers[start:end], reverse=draw(st.booleans()))
    gaps = draw(st.sets(st.integers(2, max(2, len(numbers) - 1)), max_size=len(numbers) // 3))
    return [None if i in gaps else float(n) for i, n in enumerate(numbers)]


@given(series())
def test_unclamped_limits_are_symmetric_about_the_mean(values: list[float | None]) -> None:
    result = chart(values, lower_bound=None)
    scale = 1e-9 * (1 + abs(result.mean) + result.upper - result.lower)
    assert result.upper - result.mean == pytest.approx(result.mean - result.lower, abs=scale)
    assert result.upper_near - result.mean == pytest.approx(
        result.mean - result.lower_near, abs=scale
    )
    assert result.lower <= result.lower_near <= result.mean <= result.upper_near <= result.upper


@given(
    series(),
    st.integers(-10_000, 10_000),
    st.integers(1, 29),
    st.integers(2, 7),
    st.integers(2, 7),
)
def test_shifting_every_value_shifts_the_chart_and_keeps_the_signals(
    values: list[float | None], shift: int, baseline_end: int, run: int, trend: int
) -> None:
    baseline = (0, min(baseline_end, len(values) - 1))
    shifted = [None if v is None else v + shift for v in values]
    options = {"lower_bound": None, "baseline": baseline, "run_length": run, "trend_length": trend}
    before = chart(values, **options)
    after = chart(shifted, **options)
    for name in ("mean", "upper", "lower", "upper_near", "lower_near"):
        assert getattr(after, name) == pytest.approx(getattr(before, name) + shift, abs=1e-6)
    assert [p.moving_range for p in after.points] == [p.moving_range for p in before.points]
    assert kinds(after) == kinds(before)


@given(series(negative=False))
def test_the_lower_clamp_never_changes_which_points_signal(values: list[float | None]) -> None:
    clamped = chart(values)
    assert clamped.lower >= 0
    assert kinds(clamped) == kinds(chart(values, lower_bound=None))
