"""Statistical disclosure control for published metrics (domain brief §9; docs/metrics.md).

The default profile is the one NHS England applies to the MHSDS restrictive-interventions
publication: counts below 5 (zero included) are suppressed, other counts are rounded to the
nearest 5, and a rate per 1,000 bed days is suppressed when the people or interventions count
is below 5 or the denominator is below 100 bed days.

Two rules go further than that publication, following the HES/ECDS 2018 methodology and the
brief's own policy (§9): every published share or rate is computed from the *published*
(rounded) counts, so no figure is more precise than the counts it derives from; and a cell
that could be worked out exactly from the other cells of its row (incidents = planned +
emergency) is suppressed too (secondary suppression).

Internal (safeguarding) views are never suppressed: use `projections.metrics` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import ValidationError
from projections.metrics import PeriodMetrics

SUPPRESSED = "*"
"""What a suppressed cell holds in `protect_rows` (None there means "not defined")."""


@dataclass(frozen=True)
class DisclosureProfile:
    suppress_below: int = 5  # counts under this are suppressed
    round_to: int = 5  # other counts are rounded to the nearest multiple (halves up)
    min_denominator: int = 100  # rates on fewer person-days are suppressed
    suppress_zero: bool = True  # MHSDS suppresses 0 too; HES 2018 suppresses only 1-7
    rate_decimals: int = 1

    def __post_init__(self) -> None:
        if self.suppress_below < 0 or self.min_denominator < 0 or self.rate_decimals < 0:
            raise ValidationError(
                "suppress_below, min_denominator and rate_decimals cannot be negative"
            )
        if self.round_to < 1:
            raise ValidationError("round_to must be 1 (no rounding) or more")

    def suppresses(self, n: int) -> bool:
        return n < self.suppress_below and (n > 0 or self.suppress_zero)


MHSDS = DisclosureProfile()
"""NHS England MHSDS restrictive interventions: <5 (incl. 0) → *, round to 5, bed days <100."""

HES_2018 = DisclosureProfile(suppress_below=8, suppress_zero=False)
"""HES/ECDS from Sept 2018, sub-national: 1-7 → *, others (0 included) rounded to 5."""


def protect_count(n: int | None, p: DisclosureProfile) -> int | None:
    """A count fit to publish: None when unknown or suppressed (shown as "*")."""
    if n is None:
        return None
    if n < 0:
        raise ValidationError(f"a count cannot be negative ({n})")
    if p.suppresses(n):
        return None
    return _round_half_up(n, p.round_to)


def protect_rate(rate: float | None, denominator: int | None, p: DisclosureProfile) -> float | None:
    """A rate fit to publish: None when unknown or its denominator is below `min_denominator`.

    The rate's numerator is checked by the caller (`protect_rows` checks it against the
    people and interventions counts, as MHSDS does).
    """
    if rate is None or denominator is None or denominator < p.min_denominator:
        return None
    return round(rate, p.rate_decimals)


def protect_rows(rows: Sequence[PeriodMetrics], p: DisclosureProfile) -> list[dict[str, object]]:
    """Publishable rows: "*" for a suppressed cell, None for one that is not defined.

    A figure that depends on a suppressed count is suppressed too, even where it would be
    undefined, because "undefined" would reveal a zero.
    """
    return [_protect(row, p) for row in rows]


def _protect(row: PeriodMetrics, p: DisclosureProfile) -> dict[str, object]:
    true = {
        "interventions": row.interventions,
        "incidents": row.incidents,
        "people": row.people,
        "planned": row.planned,
        "emergency": row.emergency,
        "prone_incidents": _numerator(row.prone_share, row.incidents),
        "injuries": _numerator(_per_one(row.injuries_per_100, 100), row.interventions),
        "immediate": _numerator(row.immediate_debrief_within_24h, row.incidents),
        "person": _numerator(row.person_debrief_within_72h, row.incidents),
        "review": _numerator(row.post_incident_review_within_7d, row.incidents),
        "top_decile": _numerator(row.top10pct_share, row.interventions),
    }
    shown = {name: protect_count(n, p) for name, n in true.items()}
    _secondary(true, shown, "incidents", ("planned", "emergency"), p)

    def share(numerator: str, denominator: str, *also: str, scale: int = 1, nd: int = 2) -> object:
        top, bottom = shown[numerator], shown[denominator]
        if top is None or bottom is None or any(shown[name] is None for name in also):
            return SUPPRESSED
        return round(top / bottom * scale, nd) if bottom else None

    def unless_suppressed(value: float | None, *counts: str, nd: int) -> object:
        if any(shown[name] is None for name in counts):
            return SUPPRESSED
        return None if value is None else round(value, nd)

    def rate() -> object:
        interventions = shown["interventions"]
        if interventions is None or shown["people"] is None or person_days == SUPPRESSED:
            return SUPPRESSED
        if not isinstance(person_days, int) or not person_days:
            return None
        return protect_rate(interventions / person_days * 1000, row.person_days, p)

    person_days: object = row.person_days
    if row.person_days is not None:
        small = row.person_days < p.min_denominator
        person_days = SUPPRESSED if small else _round_half_up(row.person_days, p.round_to)

    return {
        "label": row.label,
        "start": row.start.isoformat(),
        "end": row.end.isoformat(),
        "interventions": _cell(shown["interventions"]),
        "incidents": _cell(shown["incidents"]),
        "people": _cell(shown["people"]),
        "person_days": person_days,
        "rate_per_1000": rate(),
        "prone_share": share("prone_incidents", "incidents"),
        "prone_minutes": unless_suppressed(row.prone_minutes, "prone_incidents", nd=0),
        "median_minutes": unless_suppressed(row.median_minutes, "incidents", "people", nd=1),
        "p90_minutes": unless_suppressed(row.p90_minutes, "incidents", "people", nd=1),
        "injuries_per_100": share("injuries", "interventions", scale=100, nd=1),
        "planned": _cell(shown["planned"]),
        "emergency": _cell(shown["emergency"]),
        "immediate_debrief_within_24h": share("immediate", "incidents"),
        "person_debrief_within_72h": share("person", "incidents"),
        "post_incident_review_within_7d": share("review", "incidents"),
        "top10pct_share": share("top_decile", "interventions", "people"),
    }


def _cell(value: int | None) -> object:
    return SUPPRESSED if value is None else value


def _numerator(share: float | None, denominator: int) -> int:
    """The count behind a share of `denominator` (0 when the share is undefined)."""
    return 0 if share is None else round(share * denominator)


def _per_one(rate: float | None, per: int) -> float | None:
    return None if rate is None else rate / per


def _round_half_up(n: int, step: int) -> int:
    """`n` to the nearest multiple of `step`; a half rounds up (7 → 5, 8 → 10 for step 5)."""
    return (2 * n + step) // (2 * step) * step


# --- secondary suppression ---------------------------------------------------------------------


def _secondary(
    true: dict[str, int],
    shown: dict[str, int | None],
    total: str,
    parts: tuple[str, str],
    p: DisclosureProfile,
) -> None:
    """Suppress more cells of `total = parts[0] + parts[1]` until no suppressed cell can be
    worked out exactly from the published ones (at most two more cells)."""
    secondary: set[str] = set()
    for _ in range(3):
        names = (total, *parts)
        candidates = {n: _candidates(n, true, shown, secondary, total, p) for n in names}
        feasible: dict[str, set[int]] = {n: set() for n in names}
        a, b = parts
        for x in candidates[a]:
            for y in candidates[b]:
                if x + y in candidates[total]:
                    feasible[a].add(x)
                    feasible[b].add(y)
                    feasible[total].add(x + y)
        # A suppressed cell is exposed when the published cells pin it to one value. (When the
        # profile itself allows only one suppressed value, e.g. "suppress 0", nothing can help.)
        exposed = [
            n for n in names if shown[n] is None and len(feasible[n]) <= 1 < len(candidates[n])
        ]
        if not exposed:
            return
        published = [n for n in parts if shown[n] is not None]
        victim = min(published, key=lambda n: true[n]) if published else total
        if shown[victim] is None:
            raise AssertionError(f"{exposed} stay exposed with every cell suppressed")
        shown[victim] = None
        secondary.add(victim)
    raise AssertionError("secondary suppression did not settle")


def _candidates(
    name: str,
    true: dict[str, int],
    shown: dict[str, int | None],
    secondary: set[str],
    total: str,
    p: DisclosureProfile,
) -> range | set[int]:
    """The true values a reader could believe a cell holds, given what is published."""
    if name in secondary:  # nothing said about it; the sum with the other cells bounds it
        return range(0, true[total] + 2 * p.round_to + p.suppress_below)
    value = shown[name]
    if value is None:
        return {n for n in range(p.suppress_below) if p.suppresses(n)}
    step = p.round_to
    return {
        n
        for n in range(max(0, value - step), value + step + 1)
        if not p.suppresses(n) and _round_half_up(n, step) == value
    }
