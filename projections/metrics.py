"""Rate and distribution metrics per period: pure functions of a `State` (no I/O, no clock).

Definitions, with their national sources, are in docs/metrics.md; each one is summarised next
to the code that computes it. Every figure is about incidents whose *start* falls in the period
(by its UTC date), so a period's numbers never change when later periods are recorded; only
corrections, debriefs and occupancy records for that period change them.

These are the internal (safeguarding) numbers: nothing is suppressed or rounded except for
display. Anything published goes through `projections.disclosure` first.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal, get_args

from domain.vocabulary import DebriefType
from ledger.errors import NotFound, ValidationError
from projections.facts import TIMED_DEBRIEFS, first_debrief_after_end, incident_date
from projections.model import IncidentView, OccupancyView, State

__all__ = ["incident_date"]  # re-exported: reports and rules date incidents the same way

Period = Literal["week", "month", "quarter", "year"]
PERIODS: tuple[str, ...] = get_args(Period)


@dataclass(frozen=True)
class DebriefWindows:
    """How soon after an incident ends each kind of debrief counts as timely.

    Defaults: immediate debrief 24 h, debrief with the person 72 h, formal post-incident
    review 7 days (domain brief §3; see docs/metrics.md for how these relate to NICE NG10,
    QS154 St.5 and the HIS Scotland safety principles). A debrief exactly at the limit is on
    time.
    """

    immediate: timedelta = timedelta(hours=24)
    person: timedelta = timedelta(hours=72)
    post_incident_review: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        for f in fields(self):
            window = getattr(self, f.name)
            if not isinstance(window, timedelta) or window < timedelta(0):
                raise ValidationError(f"debrief window {f.name} must be a duration of 0 or more")

    def limits_us(self) -> tuple[int, ...]:
        """The windows of TIMED_DEBRIEFS, in that order, in microseconds."""
        windows = {
            DebriefType.IMMEDIATE: self.immediate,
            DebriefType.PERSON: self.person,
            DebriefType.POST_INCIDENT_REVIEW: self.post_incident_review,
        }
        return tuple(windows[kind] // timedelta(microseconds=1) for kind in TIMED_DEBRIEFS)


DEFAULT_WINDOWS = DebriefWindows()


@dataclass
class Tally:
    """What one period's metrics are computed from, added up incident by incident (from
    views) or group by group (from the read tables, `ReadStore.metric_tallies`)."""

    incidents: int = 0
    services: set[str] = field(default_factory=set)
    per_person: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    minutes: list[float] = field(default_factory=list)
    planned: int = 0
    injuries: int = 0
    prone: int = 0
    # Summed only in _metrics, in (start, ref) order of the incidents, so the float sum is
    # the same bit for bit however the tally was put together.
    prone_minutes: list[float] = field(default_factory=list)
    on_time: list[int] = field(default_factory=lambda: [0] * len(TIMED_DEBRIEFS))

    def add(self, incident: IncidentView, limits_us: Sequence[int]) -> None:
        self.incidents += 1
        self.services.add(incident.service_id)
        # MHS77-style: every recorded intervention counts (see docs/metrics.md on MHSDS pairs).
        self.per_person[incident.person_id] += len(incident.interventions)
        self.minutes.append(incident.minutes)
        self.planned += incident.planned
        self.injuries += len(incident.injuries)
        self.prone += incident.prone
        self.prone_minutes.append(incident.prone_minutes)
        for n, (kind, limit) in enumerate(zip(TIMED_DEBRIEFS, limits_us, strict=True)):
            delay = first_debrief_after_end(incident, kind)
            if delay is not None and delay <= limit:
                self.on_time[n] += 1

    def merge(self, other: Tally) -> None:
        self.incidents += other.incidents
        self.services |= other.services
        for person, count in other.per_person.items():
            self.per_person[person] += count
        self.minutes += other.minutes
        self.planned += other.planned
        self.injuries += other.injuries
        self.prone += other.prone
        self.prone_minutes += other.prone_minutes
        self.on_time = [a + b for a, b in zip(self.on_time, other.on_time, strict=True)]


@dataclass(frozen=True)
class PeriodMetrics:
    """One period's metrics. None means "not defined" (no incidents, no denominator), never 0."""

    label: str  # "2026-W41", "2026-10", "2026-Q4", "2026"
    start: date
    end: date  # inclusive; a period is clipped to the requested range
    interventions: int
    incidents: int
    people: int
    person_days: int | None
    rate_per_1000: float | None
    prone_share: float | None
    prone_minutes: float
    median_minutes: float | None
    p90_minutes: float | None
    injuries_per_100: float | None
    planned: int
    emergency: int
    immediate_debrief_within_24h: float | None
    person_debrief_within_72h: float | None
    post_incident_review_within_7d: float | None
    top10pct_share: float | None


METRIC_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(PeriodMetrics) if f.name not in ("label", "start", "end")
)
"""The numeric fields of `PeriodMetrics`, in order: what `metric_series` accepts."""

_COUNTS = frozenset({"interventions", "incidents", "people", "person_days", "planned", "emergency"})
_DECIMALS: dict[str, int] = {
    "rate_per_1000": 2,
    "injuries_per_100": 2,
    "prone_minutes": 1,
    "median_minutes": 1,
    "p90_minutes": 1,
    "prone_share": 3,
    "immediate_debrief_within_24h": 3,
    "person_debrief_within_72h": 3,
    "post_incident_review_within_7d": 3,
    "top10pct_share": 3,
}


def compute_metrics(
    state: State,
    *,
    service_id: str | None,
    start: date,
    end: date,
    by: Period = "month",
    windows: DebriefWindows = DEFAULT_WINDOWS,
) -> list[PeriodMetrics]:
    """Metrics for each period from the one containing `start` to the one containing `end`.

    `service_id=None` covers every service. The first and last periods are clipped to
    `start`..`end` (their `start`/`end` fields say so). Periods without events still appear,
    with zero counts and None for the figures that need an incident or a denominator.
    """
    _check_range(start, end, by)
    if service_id is not None and not _known_service(state, service_id):
        raise NotFound(f"no service {service_id!r} in the ledger")
    limits = windows.limits_us()
    periods = list(_periods(start, end, by))
    tallies = [Tally() for _ in periods]
    index = {p_start: n for n, (_, p_start, _) in enumerate(periods)}
    for incident in state.incidents_of(service_id):
        day = incident_date(incident)
        if start <= day <= end:
            tallies[index[max(_period_start(day, by), start)]].add(incident, limits)
    occupancy = _occupancy_by_service(state.occupancy.values(), service_id)
    return _metrics_of(periods, tallies, occupancy, service_id)


def metrics_from_tallies(
    days: Iterable[tuple[date, Tally]],
    occupancy: Iterable[OccupancyView],
    *,
    service_id: str | None,
    start: date,
    end: date,
    by: Period = "month",
) -> list[PeriodMetrics]:
    """`compute_metrics` from tallies already added up per day, in (start, ref) order of
    their incidents (the read tables answer so; see `ReadStore.metric_tallies`). The caller
    checks the service exists and computes the tallies with the windows it wants."""
    _check_range(start, end, by)
    periods = list(_periods(start, end, by))
    tallies = [Tally() for _ in periods]
    index = {p_start: n for n, (_, p_start, _) in enumerate(periods)}
    for day, tally in days:
        if start <= day <= end:
            tallies[index[max(_period_start(day, by), start)]].merge(tally)
    return _metrics_of(periods, tallies, _occupancy_by_service(occupancy, service_id), service_id)


def _check_range(start: date, end: date, by: str) -> None:
    if by not in PERIODS:
        raise ValidationError(f"unknown period {by!r}; choose one of: {', '.join(PERIODS)}")
    if end < start:
        raise ValidationError(f"the range ends ({end}) before it starts ({start})")


def _metrics_of(
    periods: Sequence[tuple[str, date, date]],
    tallies: Sequence[Tally],
    occupancy: dict[str, list[OccupancyView]],
    service_id: str | None,
) -> list[PeriodMetrics]:
    return [
        _metrics(label, p_start, p_end, tally, occupancy, service_id)
        for (label, p_start, p_end), tally in zip(periods, tallies, strict=True)
    ]


def range_metrics(
    state: State,
    *,
    service_id: str | None,
    start: date,
    end: date,
    label: str,
    windows: DebriefWindows = DEFAULT_WINDOWS,
) -> PeriodMetrics:
    """The metrics of one arbitrary date range taken as a single period (a report's
    headline, a baseline): the same definitions as `compute_metrics`."""
    if end < start:
        raise ValidationError(f"the range ends ({end}) before it starts ({start})")
    if service_id is not None and not _known_service(state, service_id):
        raise NotFound(f"no service {service_id!r} in the ledger")
    tally = Tally()
    limits = windows.limits_us()
    for incident in state.incidents_of(service_id):
        if start <= incident_date(incident) <= end:
            tally.add(incident, limits)
    occupancy = _occupancy_by_service(state.occupancy.values(), service_id)
    return _metrics(label, start, end, tally, occupancy, service_id)


def change_against_baseline(
    current: Sequence[PeriodMetrics], baseline: Sequence[PeriodMetrics]
) -> dict[str, float | None]:
    """Relative change of each metric's per-period mean: (current - baseline) / baseline.

    Means are over the periods where the metric is defined (None skipped). A metric is None
    when either mean is undefined or the baseline mean is 0 (no relative change from zero).
    """
    changes: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        now = _mean(v for _, v in metric_series(current, name))
        then = _mean(v for _, v in metric_series(baseline, name))
        changes[name] = None if now is None or not then else (now - then) / then
    return changes


def metric_series(rows: Sequence[PeriodMetrics], name: str) -> list[tuple[str, float | None]]:
    """(label, value) pairs of one metric, in period order: the input of an SPC chart."""
    if name not in METRIC_NAMES:
        raise ValidationError(f"unknown metric {name!r}; valid metrics: {', '.join(METRIC_NAMES)}")
    series: list[tuple[str, float | None]] = []
    for row in rows:
        value = getattr(row, name)
        series.append((row.label, None if value is None else float(value)))
    return series


def as_rows(rows: Sequence[PeriodMetrics]) -> list[dict[str, object]]:
    """JSON/CSV-ready dictionaries: ISO dates, counts as ints, other figures rounded for display."""
    out: list[dict[str, object]] = []
    for row in rows:
        item: dict[str, object] = {
            "label": row.label,
            "start": row.start.isoformat(),
            "end": row.end.isoformat(),
        }
        for name in METRIC_NAMES:
            value = getattr(row, name)
            if value is None or name in _COUNTS:
                item[name] = value
            else:
                item[name] = round(float(value), _DECIMALS[name])
        out.append(item)
    return out


# --- one period -------------------------------------------------------------------------------


def _metrics(
    label: str,
    start: date,
    end: date,
    tally: Tally,
    occupancy: dict[str, list[OccupancyView]],
    service_id: str | None,
) -> PeriodMetrics:
    n = tally.incidents
    interventions = sum(tally.per_person.values())
    scope = {service_id} if service_id is not None else tally.services
    person_days = _person_days(occupancy, scope, start, end, all_services=service_id is None)
    minutes = sorted(tally.minutes)
    immediate, person, review = (_share(on_time, n) for on_time in tally.on_time)
    return PeriodMetrics(
        label=label,
        start=start,
        end=end,
        interventions=interventions,
        incidents=n,
        people=sum(1 for count in tally.per_person.values() if count),
        person_days=person_days,
        rate_per_1000=interventions / person_days * 1000 if person_days else None,
        prone_share=_share(tally.prone, n),
        prone_minutes=sum(tally.prone_minutes),
        median_minutes=statistics.median(minutes) if minutes else None,
        p90_minutes=_nearest_rank(minutes, 90),
        injuries_per_100=tally.injuries / interventions * 100 if interventions else None,
        planned=tally.planned,
        emergency=n - tally.planned,
        immediate_debrief_within_24h=immediate,
        person_debrief_within_72h=person,
        post_incident_review_within_7d=review,
        top10pct_share=_top_decile_share(tally.per_person.values()),
    )


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _nearest_rank(ordered: Sequence[float], percentile: int) -> float | None:
    """Nearest-rank percentile: the value at rank ceil(p/100 * n) (1-based) of the sorted values."""
    if not ordered:
        return None
    rank = -(-percentile * len(ordered) // 100)
    return ordered[rank - 1]


def _top_decile_share(counts: Iterable[int]) -> float | None:
    """Share of interventions on the ceil(10%) (at least 1) people with most interventions.

    Ties at the cut-off do not matter: whichever of the tied people is taken, the sum is the same.
    """
    ordered = sorted(counts, reverse=True)
    total = sum(ordered)
    if not total:
        return None
    top = max(1, -(-len(ordered) // 10))
    return sum(ordered[:top]) / total


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


# --- denominators ----------------------------------------------------------------------------


def _known_service(state: State, service_id: str) -> bool:
    return (
        service_id in state.services
        or any(i.service_id == service_id for i in state.incidents.values())
        or any(o.service_id == service_id for o in state.occupancy.values())
    )


def _occupancy_by_service(
    records: Iterable[OccupancyView], service_id: str | None
) -> dict[str, list[OccupancyView]]:
    by_service: dict[str, list[OccupancyView]] = defaultdict(list)
    for record in records:
        if service_id is None or record.service_id == service_id:
            by_service[record.service_id].append(record)
    for found in by_service.values():
        # Where records overlap, the most specific (shortest) one speaks for a day.
        found.sort(key=lambda o: (o.end - o.start, o.start))
    return by_service


def _person_days(
    occupancy: dict[str, list[OccupancyView]],
    scope: set[str],
    start: date,
    end: date,
    *,
    all_services: bool,
) -> int | None:
    """Person-days of `start`..`end`, each record spread evenly over its days (pro-rated).

    Unknown (None) unless every day of the period is covered, for every service in scope:
    a partial denominator would overstate the rate. Across all services, the scope is every
    service with an incident in the period or an occupancy record overlapping it.
    """
    if all_services:
        scope = scope | {
            s for s, found in occupancy.items() if any(_overlaps(o, start, end) for o in found)
        }
    if not scope:
        return None
    total = Fraction(0)
    for service in sorted(scope):
        found = [o for o in occupancy.get(service, ()) if _overlaps(o, start, end)]
        day = start
        while day <= end:
            record = next((o for o in found if o.start <= day <= o.end), None)
            if record is None:
                return None
            total += Fraction(record.person_days, (record.end - record.start).days + 1)
            day += timedelta(days=1)
    return int(total + Fraction(1, 2))  # to the nearest person-day, halves up


def _overlaps(record: OccupancyView, start: date, end: date) -> bool:
    return record.start <= end and record.end >= start


# --- periods ---------------------------------------------------------------------------------


def _periods(start: date, end: date, by: str) -> Iterable[tuple[str, date, date]]:
    p_start = _period_start(start, by)
    while p_start <= end:
        following = _next_start(p_start, by)
        yield _label(p_start, by), max(p_start, start), min(following - timedelta(days=1), end)
        p_start = following


def _period_start(day: date, by: str) -> date:
    if by == "week":  # ISO 8601 weeks start on Monday
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    if by == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    if by == "year":
        return date(day.year, 1, 1)
    raise AssertionError(f"unknown period {by!r}")


def _next_start(p_start: date, by: str) -> date:
    if by == "week":
        return p_start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[by]
    month = p_start.month - 1 + months
    return date(p_start.year + month // 12, month % 12 + 1, 1)


def _label(p_start: date, by: str) -> str:
    if by == "week":
        iso = p_start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if by == "month":
        return f"{p_start.year}-{p_start.month:02d}"
    if by == "quarter":
        return f"{p_start.year}-Q{(p_start.month - 1) // 3 + 1}"
    return str(p_start.year)
