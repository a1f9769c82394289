"""XmR statistical process control charts with the NHS "Making Data Count" rules (pure; no I/O).

Boards and regulators are shown SPC charts instead of red/amber/green or two-point comparisons
(domain notes §8). This module follows the NHS-R reference package, NHSRplotthedots
(`R/ptd_spc_standard.R`, `R/ptd_calculate_point_type.R`), which mimics the Making Data Count
Excel tools:

- centre line = mean of the baseline values; moving range MR_i = |x_i - x_(i-1)|;
  AMR = mean of the moving ranges inside the baseline;
- process limits = mean ± 2.66 * AMR; near limits = mean ± (2/3 * 2.66) * AMR, so the
  "outer third" of each half of the chart lies beyond a near limit;
- four special-cause rules, each a `Signal`:
  1. OUTSIDE_LIMITS: one point strictly above the upper or below the lower limit (a point
     exactly on a limit is inside);
  2. RUN: `run_length` (default 7) or more consecutive points all strictly above or all
     strictly below the mean; a point exactly on the mean breaks the run;
  3. TREND: `trend_length` (default 7) or more consecutive points each strictly higher (or each
     strictly lower) than the one before; a tie breaks the trend. The length counts points,
     not rises, as NHS-R's `ptd_seven_point_trend` does: 7 points = 6 successive rises;
  4. TWO_OF_THREE: in some window of three consecutive points, all three on the same side of
     the mean and at least two of them close to the limit on that side (beyond the near limit
     but not outside the process limit). The whole window being on one side is NHS-R's
     convention (`ptd_two_in_three` requires |sum(sign(x - mean))| == 3), stricter than the
     classic Western Electric rule; the points flagged are the close ones.

Conventions of our own, where NHS-R is silent or differs:

- No outlier screening of moving ranges (NHS-R's default drops MRs ≥ 3.267 * AMR; the Making
  Data Count Excel tools do not, and neither do we: `screen_outliers = FALSE`).
- `baseline=(first, last)` (inclusive indexes) generalises NHS-R's `fix_after_n_points`: the
  mean and AMR come from those points only and the limits apply to every point. A moving range
  counts towards AMR only when both of its points are inside the baseline.
- `None` is a period with no value (e.g. a zero denominator). It is left out of the mean; the
  moving ranges on either side of it are `None` (a gap is never bridged, like R's `diff` with
  `NA`); and it breaks runs, trends and two-of-three windows.
- `lower_bound` (default 0: counts and rates cannot go below zero) clamps the lower limit and
  the lower near limit for display. A value below the bound is rejected, so the clamp never
  changes which points signal. Pass `lower_bound=None` for metrics that can be negative.
- Arithmetic is exact (`fractions.Fraction` over the given floats), so "exactly on the mean"
  and "exactly on a limit" do not depend on summation order; the chart reports floats.
- A run, trend or two-of-three episode is reported once, with every point it covers, rather
  than point by point; each point outside the limits is its own signal.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Literal

from ledger.errors import ValidationError

__all__ = ["Signal", "SignalKind", "SpcPoint", "XmrChart", "xmr"]

Direction = Literal["high", "low", "up", "down"]

LIMIT_FACTOR = Fraction(266, 100)  # 2.66 ≈ 3 / d2, d2 = 1.128 for moving ranges of two
NEAR_FACTOR = LIMIT_FACTOR * 2 / 3  # 1.7733…: the boundary of the outer third
EN_DASH = "\u2013"  # between the first and last labels of a span, as in "Mar\u2013Sep 2026"


class SignalKind(StrEnum):
    OUTSIDE_LIMITS = "outside-limits"
    RUN = "run"
    TREND = "trend"
    TWO_OF_THREE = "two-of-three"


_KIND_ORDER = {kind: position for position, kind in enumerate(SignalKind)}


@dataclass(frozen=True)
class Signal:
    """One special-cause episode: which rule, which way, which points, and what it means."""

    kind: SignalKind
    direction: Direction  # high/low for limits, runs and two-of-three; up/down for trends
    indexes: tuple[int, ...]  # positions in the input, ascending
    explanation: str  # plain English for a board


@dataclass(frozen=True)
class SpcPoint:
    label: str
    value: float | None
    moving_range: float | None  # |value - previous value|; None for the first point or a gap


@dataclass(frozen=True)
class XmrChart:
    points: tuple[SpcPoint, ...]
    mean: float
    upper: float
    lower: float  # clamped to lower_bound
    upper_near: float
    lower_near: float  # clamped to lower_bound
    baseline: tuple[int, int]  # inclusive indexes the mean and limits were computed from
    signals: tuple[Signal, ...]  # ordered by first index, then rule number


def xmr(
    points: Sequence[tuple[str, float | None]],
    *,
    baseline: tuple[int, int] | None = None,
    run_length: int = 7,
    trend_length: int = 7,
    lower_bound: float | None = 0.0,
) -> XmrChart:
    """An XmR chart of `(label, value)` points in time order, with Making Data Count signals.

    Raises `ValidationError` for an empty series, a non-finite value, a value below
    `lower_bound`, a baseline outside the series, rule lengths below 2, or a baseline with no
    two consecutive values (no moving range, so no limits).
    """
    labels = [label for label, _ in points]
    values = [value for _, value in points]
    _check_inputs(labels, values, run_length, trend_length, lower_bound)
    first, last = _check_baseline(baseline, len(values))

    exact = [None if v is None else Fraction(v) for v in values]
    ranges = [_moving_range(exact, i) for i in range(len(exact))]
    base_values = [v for v in exact[first : last + 1] if v is not None]
    base_ranges = [r for r in ranges[first + 1 : last + 1] if r is not None]
    if len(base_values) < 2:
        raise ValidationError(
            f"an XmR chart needs at least 2 values in its baseline (points {first} to {last}); "
            f"found {len(base_values)}"
        )
    if not base_ranges:
        raise ValidationError(
            f"an XmR chart needs two consecutive values in its baseline (points {first} to {last}) "
            "to measure a moving range; no two values there are next to each other"
        )

    mean = Fraction(sum(base_values)) / len(base_values)
    amr = Fraction(sum(base_ranges)) / len(base_ranges)
    limits = _Limits(
        mean=mean,
        upper=mean + LIMIT_FACTOR * amr,
        lower=_clamp(mean - LIMIT_FACTOR * amr, lower_bound),
        upper_near=mean + NEAR_FACTOR * amr,
        lower_near=_clamp(mean - NEAR_FACTOR * amr, lower_bound),
    )

    signals = [
        *_outside_limits(labels, exact, limits),
        *_runs(labels, exact, limits, run_length),
        *_trends(labels, exact, trend_length),
        *_two_of_three(labels, exact, limits),
    ]
    signals.sort(key=lambda s: (s.indexes[0], _KIND_ORDER[s.kind], s.indexes))
    return XmrChart(
        points=tuple(
            SpcPoint(label=label, value=value, moving_range=None if r is None else float(r))
            for label, value, r in zip(labels, values, ranges, strict=True)
        ),
        mean=float(limits.mean),
        upper=float(limits.upper),
        lower=float(limits.lower),
        upper_near=float(limits.upper_near),
        lower_near=float(limits.lower_near),
        baseline=(first, last),
        signals=tuple(signals),
    )


# --- validation --------------------------------------------------------------------------------


def _check_inputs(
    labels: list[str],
    values: list[float | None],
    run_length: int,
    trend_length: int,
    lower_bound: float | None,
) -> None:
    if not values:
        raise ValidationError("an XmR chart needs at least 2 values; got an empty series")
    if run_length < 2:
        raise ValidationError(f"run_length must be at least 2; got {run_length}")
    if trend_length < 2:
        raise ValidationError(f"trend_length must be at least 2; got {trend_length}")
    if lower_bound is not None and not math.isfinite(lower_bound):
        raise ValidationError(f"lower_bound must be a finite number or None; got {lower_bound}")
    for label, value in zip(labels, values, strict=True):
        if value is None:
            continue
        if not math.isfinite(value):
            raise ValidationError(f"value for {label!r} is {value}; use None for no data")
        if lower_bound is not None and value < lower_bound:
            raise ValidationError(
                f"value for {label!r} ({value}) is below the lower bound ({lower_bound}); "
                "pass lower_bound=None for a metric that can go below it"
            )


def _check_baseline(baseline: tuple[int, int] | None, count: int) -> tuple[int, int]:
    if baseline is None:
        return (0, count - 1)
    first, last = baseline
    if not 0 <= first <= last < count:
        raise ValidationError(
            f"baseline {baseline} must be inclusive indexes with 0 <= first <= last < {count}"
        )
    return (first, last)


# --- arithmetic --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    mean: Fraction
    upper: Fraction
    lower: Fraction
    upper_near: Fraction
    lower_near: Fraction

    def side(self, value: Fraction) -> int:
        """+1 above the mean, -1 below, 0 exactly on it."""
        return (value > self.mean) - (value < self.mean)

    def outside(self, value: Fraction) -> int:
        """+1 above the upper limit, -1 below the lower limit, 0 within (limits inclusive)."""
        return (value > self.upper) - (value < self.lower)

    def close(self, value: Fraction) -> bool:
        """In the outer third: beyond a near limit but not outside the process limits."""
        return not self.outside(value) and (value > self.upper_near or value < self.lower_near)


def _moving_range(values: list[Fraction | None], i: int) -> Fraction | None:
    if i == 0:
        return None
    current, previous = values[i], values[i - 1]
    if current is None or previous is None:
        return None
    return abs(current - previous)


def _clamp(limit: Fraction, lower_bound: float | None) -> Fraction:
    return limit if lower_bound is None else max(limit, Fraction(lower_bound))


def _segments(signs: list[int]) -> list[tuple[int, int, int]]:
    """Maximal stretches of one non-zero sign: (first index, last index, sign)."""
    stretches: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(signs) + 1):
        if i == len(signs) or signs[i] != signs[start]:
            if signs[start] != 0:
                stretches.append((start, i - 1, signs[start]))
            start = i
    return stretches


# --- the four rules ----------------------------------------------------------------------------


def _outside_limits(
    labels: list[str], values: list[Fraction | None], limits: _Limits
) -> list[Signal]:
    signals = []
    for i, value in enumerate(values):
        if value is None or not (way := limits.outside(value)):
            continue
        if way > 0:
            text = (
                f"{labels[i]} ({_number(value)}) is above the upper limit "
                f"({_number(limits.upper)}): an unusually high value"
            )
        else:
            text = (
                f"{labels[i]} ({_number(value)}) is below the lower limit "
                f"({_number(limits.lower)}): an unusually low value"
            )
        signals.append(Signal(SignalKind.OUTSIDE_LIMITS, _high_low(way), (i,), text))
    return signals


def _runs(
    labels: list[str], values: list[Fraction | None], limits: _Limits, run_length: int
) -> list[Signal]:
    sides = [0 if v is None else limits.side(v) for v in values]
    signals = []
    for start, end, side in _segments(sides):
        count = end - start + 1
        if count < run_length:
            continue
        where, change = ("above", "rise") if side > 0 else ("below", "fall")
        text = (
            f"{count} points in a row {where} the mean ({_span(labels, start, end)}): "
            f"a sustained {change}"
        )
        signals.append(Signal(SignalKind.RUN, _high_low(side), tuple(range(start, end + 1)), text))
    return signals


def _trends(labels: list[str], values: list[Fraction | None], trend_length: int) -> list[Signal]:
    # steps[i] is the direction from point i to point i + 1; a gap or a tie is 0.
    steps = [
        0 if before is None or after is None else (after > before) - (after < before)
        for before, after in itertools.pairwise(values)
    ]
    signals = []
    for first_step, last_step, way in _segments(steps):
        start, end = first_step, last_step + 1  # n steps join n + 1 points
        count = end - start + 1
        if count < trend_length:
            continue
        comparison, direction = ("higher", "upward") if way > 0 else ("lower", "downward")
        text = (
            f"{count} points in a row, each {comparison} than the one before "
            f"({_span(labels, start, end)}): a steady {direction} trend"
        )
        indexes = tuple(range(start, end + 1))
        signals.append(Signal(SignalKind.TREND, "up" if way > 0 else "down", indexes, text))
    return signals


def _two_of_three(
    labels: list[str], values: list[Fraction | None], limits: _Limits
) -> list[Signal]:
    # Qualifying windows of three (NHS-R `ptd_two_in_three`), then overlapping windows on the
    # same side merged into one episode whose points are the close ones.
    episodes: list[tuple[int, int, int]] = []  # (first window start, last window start, side)
    for start in range(len(values) - 2):
        window = values[start : start + 3]
        if any(v is None for v in window):
            continue
        present = [v for v in window if v is not None]
        sides = {limits.side(v) for v in present}
        if len(sides) != 1 or 0 in sides:
            continue
        if sum(limits.close(v) for v in present) < 2:
            continue
        side = sides.pop()
        if episodes and episodes[-1][2] == side and episodes[-1][1] + 2 >= start:
            episodes[-1] = (episodes[-1][0], start, side)
        else:
            episodes.append((start, start, side))

    signals = []
    for first_start, last_start, side in episodes:
        indexes = tuple(
            i
            for i in range(first_start, last_start + 3)
            if (v := values[i]) is not None and limits.close(v)
        )
        first, last = indexes[0], indexes[-1]
        span = last - first + 1
        counted = (
            f"{len(indexes)} points in a row"
            if span == len(indexes)
            else f"{len(indexes)} of {span} points"
        )
        if side > 0:
            where = f"close to the upper limit (above {_number(limits.upper_near)})"
            change = "rise"
        else:
            where = f"close to the lower limit (below {_number(limits.lower_near)})"
            change = "fall"
        text = f"{counted} ({_span(labels, first, last)}) {where}: an early warning of a {change}"
        signals.append(Signal(SignalKind.TWO_OF_THREE, _high_low(side), indexes, text))
    return signals


# --- wording -----------------------------------------------------------------------------------


def _high_low(sign: int) -> Literal["high", "low"]:
    return "high" if sign > 0 else "low"


def _span(labels: list[str], first: int, last: int) -> str:
    """Labels "Mar 2026" and "Sep 2026" make "Mar\u2013Sep 2026": shared last words said once."""
    if first == last:
        return labels[first]
    start, end = labels[first].split(" "), labels[last].split(" ")
    shared = 0
    while shared < min(len(start), len(end)) - 1 and start[-1 - shared] == end[-1 - shared]:
        shared += 1
    if shared == 0:
        return f"{labels[first]}{EN_DASH}{labels[last]}"
    head = " ".join(start[: len(start) - shared])
    tail = " ".join(end[: len(end) - shared])
    return f"{head}{EN_DASH}{tail} {' '.join(end[len(end) - shared :])}"


def _number(value: Fraction) -> str:
    """Up to two decimal places, thousands separated; small magnitudes to two significant
    figures (a rate of 0.0042 per bed day should not read as 0)."""
    number = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
    if number == 0 or abs(number) >= 1:
        return f"{number:,.2f}".rstrip("0").rstrip(".")
    return f"{number:.2g}"
