"""The governance report's content: a pure, deterministic function of a `State` as of a
checkpoint, and of the report's parameters (no I/O, no wall clock).

The result is a JSON-ready dictionary. Its canonical form (`canonical_json`: sorted keys, no
whitespace) has a SHA-256 digest (`content_digest`) that the signed `report.issued` event
carries, so anyone holding the log up to the checkpoint recomputes the same figures.

Sections, in reading order: headline reduction metrics against a baseline and a target; SPC
charts of the key metrics with their signals in words; interventions by type, technique,
position, time of day and day of week; concentration on few people; compliance findings open
and overdue by rule; debrief and post-incident review timeliness; the learning loop (plan
changes that followed incidents, and those still missing); staff training currency; and
data-quality warnings.

Times are UTC. "As of" the report is the end of its period (midnight UTC after its last day):
a debrief, plan change or training recorded for a later time has not happened yet as far as
the report is concerned, so a report for October reads the same whenever it is issued.

Publication (`ReportParameters.publish`): every count passes the MHSDS disclosure profile
(`projections.disclosure`: below 5 suppressed as "*", others rounded to the nearest 5), every
share and rate is computed from the published counts, and per-person and per-incident detail
is left out.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from domain.reports import ReportParameters
from domain.vocabulary import POSITION_OF_TYPE, DebriefType, InterventionType
from ledger.errors import ValidationError
from projections.compliance import Status, evaluate
from projections.disclosure import MHSDS, SUPPRESSED, DisclosureProfile, protect_count, protect_rows
from projections.metrics import (
    DEFAULT_WINDOWS,
    PeriodMetrics,
    as_rows,
    compute_metrics,
    incident_date,
    range_metrics,
)
from projections.model import IncidentView, State
from projections.spc import XmrChart, xmr

FORMAT = "calm-ledger-governance-report/v1"
SPC_MONTHS = 24  # the longest series charted
SPC_BASELINE_POINTS = 12  # Making Data Count: limits from the first 12 points, then locked
TRAINING_WARNING_DAYS = 60
LATE_RECORDING = timedelta(hours=24)
ZERO_RUN_MONTHS = 3  # GOV-48
DETAIL_LIMIT = 50  # rows of per-item detail shown before "and N more"

Cell = int | float | str | None


@dataclass(frozen=True)
class Anchor:
    """The checkpoint a report is computed as of."""

    origin: str
    size: int
    root: str  # base64


# --- the report ------------------------------------------------------------------------------


def governance_report(
    state: State,
    *,
    report_id: str,
    parameters: ReportParameters,
    anchor: Anchor,
    profile: DisclosureProfile = MHSDS,
) -> dict[str, Any]:
    """The governance report's content. `state` must be folded from exactly the leaves below
    `anchor.size` (checked)."""
    if state.size != anchor.size:
        raise ValidationError(
            f"the state covers {state.size} leaves, the checkpoint {anchor.size}:"
            " a report is computed from exactly the log its checkpoint signs"
        )
    p = parameters
    if p.end < p.start:
        raise ValidationError(f"the report period ends ({p.end}) before it starts ({p.start})")
    scope = Scope(state, p.service_id, p.start, p.end, p.publish, profile)
    as_of = datetime.combine(p.end + timedelta(days=1), time(0), tzinfo=UTC)
    headline, target = _headline(scope, p)
    return {
        "format": FORMAT,
        "report": {
            "id": report_id,
            "kind": "governance",
            "title": f"Governance report: {scope.name}, {_period_words(p)}",
        },
        "scope": scope.describe(),
        "period": {
            "label": p.label,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "as_of": as_of.isoformat().replace("+00:00", "Z"),
        },
        "checkpoint": {"origin": anchor.origin, "size": anchor.size, "root": anchor.root},
        "publication": _publication(p.publish, profile),
        "baseline": None
        if p.baseline_start is None or p.baseline_end is None
        else {"start": p.baseline_start.isoformat(), "end": p.baseline_end.isoformat()},
        "headline": headline,
        "target": target,
        "spc": _spc(scope, target),
        "breakdowns": _breakdowns(scope),
        "concentration": _concentration(scope),
        "compliance": _compliance(scope, as_of),
        "debriefs": _debriefs(scope, as_of),
        "learning_loop": _learning_loop(scope, as_of),
        "training": _training(scope),
        "data_quality": _data_quality(scope),
    }


def canonical_json(content: dict[str, Any]) -> bytes:
    """The bytes the content digest is taken over: sorted keys, no insignificant whitespace."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def content_digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


# --- scope: what the report is about ---------------------------------------------------------


class Scope:
    """The services, incidents and disclosure rules of one report."""

    def __init__(
        self,
        state: State,
        service_id: str | None,
        start: date,
        end: date,
        publish: bool,
        profile: DisclosureProfile,
    ) -> None:
        if service_id is not None and service_id not in state.services:
            raise ValidationError(f"no service {service_id!r} is registered in the ledger")
        self.state, self.service_id, self.start, self.end = state, service_id, start, end
        self.publish, self.profile = publish, profile
        self.services = [service_id] if service_id else sorted(state.services)
        self.incidents = [
            i for i in state.incidents_of(service_id) if start <= incident_date(i) <= end
        ]

    @property
    def name(self) -> str:
        if self.service_id is None:
            return "all services"
        return self.state.services[self.service_id].name

    def describe(self) -> dict[str, Any]:
        return {
            "service_id": self.service_id,
            "name": self.name,
            "services": [
                {
                    "service_id": s,
                    "name": self.state.services[s].name,
                    "setting": self.state.services[s].setting.value,
                    "profiles": [p.value for p in self.state.services[s].profiles],
                }
                for s in self.services
            ],
        }

    def count(self, n: int) -> Cell:
        """A count as the report shows it: exact internally, protected when published."""
        if not self.publish:
            return n
        shown = protect_count(n, self.profile)
        return SUPPRESSED if shown is None else shown

    def share(self, numerator: Cell, denominator: Cell) -> Cell:
        """A share of two shown counts (so a published share is never more precise than
        its published counts)."""
        if numerator == SUPPRESSED or denominator == SUPPRESSED:
            return SUPPRESSED
        if not isinstance(numerator, int) or not isinstance(denominator, int) or not denominator:
            return None
        return round(numerator / denominator, 3)


def _publication(publish: bool, p: DisclosureProfile) -> dict[str, Any]:
    if not publish:
        return {
            "published": False,
            "disclosure_control": None,
            "note": "Internal report: figures are exact and include per-person detail."
            " Do not publish it; issue a report marked for publication instead.",
        }
    return {
        "published": True,
        "disclosure_control": {
            "profile": "nhs-mhsds",
            "suppress_below": p.suppress_below,
            "round_to": p.round_to,
            "min_denominator": p.min_denominator,
            "suppress_zero": p.suppress_zero,
        },
        "note": f"Marked for publication: counts below {p.suppress_below} are shown as"
        f" {SUPPRESSED}, other counts are rounded to the nearest {p.round_to}, rates on fewer"
        f" than {p.min_denominator} person-days are suppressed, shares are computed from the"
        " published counts, and per-person and per-incident detail is left out.",
    }


# --- headline --------------------------------------------------------------------------------

HEADLINE: tuple[tuple[str, str, bool], ...] = (
    # metric, label, compared with the baseline (rates and shares; counts depend on length)
    ("interventions", "Restrictive interventions", False),
    ("incidents", "Incidents", False),
    ("people", "People subject to restrictive interventions", False),
    ("person_days", "Person-days (occupied bed days or pupil days)", False),
    ("rate_per_1000", "Interventions per 1,000 person-days", True),
    ("prone_share", "Share of incidents with a prone restraint", True),
    ("median_minutes", "Median incident length (minutes)", True),
    ("injuries_per_100", "Injuries per 100 interventions", True),
    ("planned", "Planned (authorised) incidents", False),
    ("emergency", "Emergency (unplanned) incidents", False),
    ("immediate_debrief_within_24h", "Immediate debrief within 24 hours", True),
    ("post_incident_review_within_7d", "Post-incident review within 7 days", True),
    ("top10pct_share", "Share of interventions on the 10% of people with most", True),
)


def _row(scope: Scope, metrics: PeriodMetrics) -> dict[str, Any]:
    if scope.publish:
        return protect_rows([metrics], scope.profile)[0]
    return as_rows([metrics])[0]


def _headline(scope: Scope, p: ReportParameters) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    state = scope.state
    now = _row(
        scope,
        range_metrics(state, service_id=p.service_id, start=p.start, end=p.end, label=p.label),
    )
    then: dict[str, Any] | None = None
    if p.baseline_start is not None and p.baseline_end is not None:
        then = _row(
            scope,
            range_metrics(
                state,
                service_id=p.service_id,
                start=p.baseline_start,
                end=p.baseline_end,
                label="baseline",
            ),
        )
    headline = []
    for name, label, compared in HEADLINE:
        value = now[name]
        base = then[name] if then is not None and compared else None
        headline.append(
            {
                "metric": name,
                "label": label,
                "compared": compared,
                "value": value,
                "baseline": base,
                "change": _change(value, base),
            }
        )
    return headline, _target(now, then, p)


def _change(value: Any, base: Any) -> float | None:
    """Relative change against the baseline, or None where either is missing or zero."""
    if not isinstance(value, int | float) or not isinstance(base, int | float) or not base:
        return None
    return round((value - base) / base, 3)


def _target(
    now: dict[str, Any], then: dict[str, Any] | None, p: ReportParameters
) -> dict[str, Any]:
    pct = p.target_reduction_percent
    if pct is None:
        return {"set": False, "statement": "No reduction target was set for this report."}
    base = None if then is None else then["rate_per_1000"]
    rate = now["rate_per_1000"]
    if not isinstance(base, int | float):
        return {
            "set": True,
            "reduction_percent": pct,
            "rate_per_1000": None,
            "met": None,
            "statement": f"A {pct}% reduction target was set, but the baseline rate is not"
            " known (no baseline, suppressed, or no person-days), so it cannot be assessed.",
        }
    target = round(base * (100 - pct) / 100, 2)
    if not isinstance(rate, int | float):
        met = None
        words = "this period's rate is not known, so it cannot be assessed"
    else:
        met = rate <= target
        words = f"this period's rate of {_num(rate)} {'meets' if met else 'does not meet'} it"
    return {
        "set": True,
        "reduction_percent": pct,
        "rate_per_1000": target,
        "met": met,
        "statement": f"Target: a {pct}% reduction on the baseline rate of {_num(base)} per"
        f" 1,000 person-days, i.e. at most {_num(target)}; {words}.",
    }


# --- SPC ---------------------------------------------------------------------------------------

SPC_METRICS: tuple[tuple[str, str], ...] = (
    ("rate_per_1000", "Restrictive interventions per 1,000 person-days, by month"),
    ("interventions", "Restrictive interventions, by month"),
    ("people", "People subject to restrictive interventions, by month"),
    ("prone_share", "Share of incidents with a prone restraint, by month"),
)
RULE_NAMES = {
    "outside-limits": "a point outside the process limits",
    "run": "a run of points on one side of the mean",
    "trend": "a trend of rising or falling points",
    "two-of-three": "two of three points close to a limit",
}


def _spc(scope: Scope, target: dict[str, Any]) -> list[dict[str, Any]]:
    """XmR charts of the key metrics by calendar month, up to the last whole month of the
    period, starting at most SPC_MONTHS back and no earlier than the first month with data."""
    months = _spc_months(scope)
    if not months:
        return [
            {
                "metric": m,
                "title": t,
                "chart": None,
                "summary": "No month with data yet: nothing to chart.",
            }
            for m, t in SPC_METRICS
        ]
    first, last = months
    rows = compute_metrics(
        scope.state, service_id=scope.service_id, start=first, end=last, by="month"
    )
    shown = protect_rows(rows, scope.profile) if scope.publish else as_rows(rows)
    empty = frozenset(_month_words(row.start) for run in _zero_runs(rows) for row in run)
    charts = []
    for metric, title in SPC_METRICS:
        series = [
            (_month_words(row.start), _number_or_none(cell[metric]))
            for row, cell in zip(rows, shown, strict=True)
        ]
        rate_target = target if metric == "rate_per_1000" else None
        charts.append(_chart(metric, title, series, rate_target, empty))
    return charts


def _spc_months(scope: Scope) -> tuple[date, date] | None:
    end = scope.end
    following = end + timedelta(days=1)
    last_month = end.replace(day=1) if following.day == 1 else _add_months(end.replace(day=1), -1)
    last = _add_months(last_month, 1) - timedelta(days=1)
    starts = [incident_date(i) for i in scope.state.incidents_of(scope.service_id)]
    starts += [
        o.start
        for o in scope.state.occupancy.values()
        if scope.service_id is None or o.service_id == scope.service_id
    ]
    starts = [d for d in starts if d <= last]
    if not starts:
        return None
    first = max(min(starts).replace(day=1), _add_months(last_month, 1 - SPC_MONTHS))
    return first, last


def _chart(
    metric: str,
    title: str,
    series: list[tuple[str, float | None]],
    target: dict[str, Any] | None,
    empty: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    points = [{"period": label, "value": value} for label, value in series]
    n = len(series)
    baseline = (0, min(n, SPC_BASELINE_POINTS) - 1)
    try:
        chart = xmr(series, baseline=baseline)
    except ValidationError as e:
        return {
            "metric": metric,
            "title": title,
            "chart": None,
            "points": points,
            "summary": f"Not enough data for an SPC chart yet: {e}.",
        }
    signals = [
        _signal(chart, s.kind.value, s.direction, s.indexes, s.explanation, empty)
        for s in chart.signals
    ]
    trial = n < SPC_BASELINE_POINTS
    result: dict[str, Any] = {
        "metric": metric,
        "title": title,
        "points": points,
        "chart": {
            "mean": round(chart.mean, 3),
            "upper": round(chart.upper, 3),
            "lower": round(chart.lower, 3),
            "upper_near": round(chart.upper_near, 3),
            "lower_near": round(chart.lower_near, 3),
            "baseline": {"first": series[baseline[0]][0], "last": series[baseline[1]][0]},
            "trial_limits": trial,
            "improvement": "lower",
        },
        "signals": signals,
        "summary": _spc_summary(signals, trial, len(series)),
    }
    if target is not None and target.get("rate_per_1000") is not None:
        result["assurance"] = _assurance(chart, float(target["rate_per_1000"]))
    return result


def _signal(
    chart: XmrChart,
    kind: str,
    direction: str,
    indexes: Sequence[int],
    explanation: str,
    empty: frozenset[str],
) -> dict[str, Any]:
    worse = direction in ("high", "up")  # for restrictive practice, lower is better
    meaning = "concern" if worse else "improvement"
    periods = [chart.points[i].label for i in indexes]
    text = (
        f"{explanation} — special cause variation: {RULE_NAMES[kind]},"
        f" a sign of {'deterioration' if worse else 'improvement'}."
    )
    if not worse and any(p in empty for p in periods):
        text += (
            " Check the data first: no intervention at all was recorded in some of these"
            " months while the service was occupied (see Data quality)."
        )
    return {
        "rule": kind,
        "direction": direction,
        "periods": periods,
        "meaning": meaning,
        "explanation": text,
    }


def _spc_summary(signals: list[dict[str, Any]], trial: bool, n: int) -> str:
    if signals:
        concerns = sum(1 for s in signals if s["meaning"] == "concern")
        text = (
            f"{len(signals)} special-cause signal(s): {concerns} of concern,"
            f" {len(signals) - concerns} of improvement. Each is explained below."
        )
    else:
        text = (
            "Common-cause variation only: no month is unusual, and no run or trend shows"
            " a change in the process."
        )
    if trial:
        text += (
            f" Limits are provisional (trial limits): {n} month(s) of data, fewer than the"
            f" {SPC_BASELINE_POINTS} Making Data Count recommends."
        )
    return text


def _assurance(chart: XmrChart, target: float) -> str:
    """Making Data Count assurance for a lower-is-better metric against a target."""
    if target >= chart.upper:
        return (
            f"The target ({_num(target)}) is above the upper process limit: the process will"
            " consistently meet it if nothing changes."
        )
    if target < chart.lower:
        return (
            f"The target ({_num(target)}) is below the lower process limit: the process will"
            " consistently miss it unless something changes."
        )
    return (
        f"The target ({_num(target)}) lies within the process limits: the process will meet"
        " it in some months and miss it in others (hit and miss)."
    )


# --- breakdowns -------------------------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOUR_BANDS = tuple((h, h + 3) for h in range(0, 24, 3))


def _breakdowns(scope: Scope) -> dict[str, Any]:
    interventions = [v for i in scope.incidents for v in i.interventions]
    by_type = Counter(v.type for v in interventions)
    by_technique = Counter(v.technique_id or "" for v in interventions)
    by_position = Counter((v.position or POSITION_OF_TYPE.get(v.type)) for v in interventions)
    by_hour = Counter(v.start.astimezone(UTC).hour // 3 for v in interventions)
    by_day = Counter(v.start.astimezone(UTC).weekday() for v in interventions)
    total = scope.count(len(interventions))
    return {
        "unit": "interventions",
        "total": total,
        "type": _ranked(
            scope,
            total,
            ((t.value, _type_label(t), n) for t, n in by_type.items()),
        ),
        "technique": _ranked(
            scope,
            total,
            ((k or "none", k or "No technique recorded", n) for k, n in by_technique.items()),
        ),
        "position": _ranked(
            scope,
            total,
            (
                (p.value if p else "none", _words(p.value) if p else "Not recorded", n)
                for p, n in by_position.items()
            ),
        ),
        "time_of_day": [
            _cell_row(
                scope,
                total,
                f"{a:02d}-{b:02d}",
                f"{a:02d}:00 to {b - 1:02d}:59 UTC",
                by_hour[a // 3],
            )
            for a, b in HOUR_BANDS
        ],
        "day_of_week": [
            _cell_row(scope, total, day[:3].lower(), day, by_day[n])
            for n, day in enumerate(WEEKDAYS)
        ],
    }


def _ranked(
    scope: Scope, total: Cell, items: Iterable[tuple[str, str, int]]
) -> list[dict[str, Any]]:
    ordered = sorted(items, key=lambda item: (-item[2], item[0]))
    return [_cell_row(scope, total, key, label, n) for key, label, n in ordered]


def _cell_row(scope: Scope, total: Cell, key: str, label: str, n: int) -> dict[str, Any]:
    count = scope.count(n)
    return {"key": key, "label": label, "count": count, "share": scope.share(count, total)}


def _type_label(t: InterventionType) -> str:
    return f"{_words(t.name)} ({t.value})"


def _words(name: str) -> str:
    text = name.replace("_", " ").replace("-", " ").lower()
    return text[:1].upper() + text[1:]


# --- concentration ----------------------------------------------------------------------------


def _concentration(scope: Scope) -> dict[str, Any]:
    per_person: dict[str, int] = defaultdict(int)
    incidents: dict[str, int] = defaultdict(int)
    for incident in scope.incidents:
        per_person[incident.person_id] += len(incident.interventions)
        incidents[incident.person_id] += 1
    total = sum(per_person.values())
    ranked = sorted(per_person.items(), key=lambda item: (-item[1], item[0]))
    top = max(1, -(-len(ranked) // 10)) if ranked else 0
    top_share = round(sum(n for _, n in ranked[:top]) / total, 3) if total else None
    repeat = sum(1 for _, n in ranked if n >= 3)
    result: dict[str, Any] = {
        "people": scope.count(len(ranked)),
        "people_with_3_or_more": scope.count(repeat),
        "top10pct_share": top_share,
        "most": [],
        "note": "People are shown by pseudonym only.",
    }
    if scope.publish:
        shown_people, shown_total = result["people"], scope.count(total)
        result["top10pct_share"] = (
            SUPPRESSED if SUPPRESSED in (shown_people, shown_total) else top_share
        )
        result["note"] = "Per-person figures are left out of published reports."
        return result
    result["most"] = [
        {
            "person": person,
            "interventions": n,
            "incidents": incidents[person],
            "share": round(n / total, 3),
        }
        for person, n in ranked[:10]
    ]
    return result


# --- compliance --------------------------------------------------------------------------------


def _compliance(scope: Scope, as_of: datetime) -> dict[str, Any]:
    findings = [
        f
        for s in scope.services
        for f in evaluate(scope.state, as_of, service_id=s)
        if f.status in (Status.OPEN, Status.OVERDUE)
    ]
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    sources: dict[str, str] = {}
    for f in findings:
        by_rule[f.rule_id][f.status.value] += 1
        sources[f.rule_id] = f.source
    overdue = [f for f in findings if f.status is Status.OVERDUE]
    result: dict[str, Any] = {
        "as_of": as_of.isoformat().replace("+00:00", "Z"),
        "open": scope.count(sum(1 for f in findings if f.status is Status.OPEN)),
        "overdue": scope.count(len(overdue)),
        "by_rule": [
            {
                "rule": rule,
                "source": sources[rule],
                "open": scope.count(counts["open"]),
                "overdue": scope.count(counts["overdue"]),
            }
            for rule, counts in sorted(by_rule.items())
        ],
        "overdue_items": [],
        "more_overdue": 0,
    }
    if not scope.publish:
        overdue.sort(key=lambda f: (f.due_at or as_of, f.rule_id, f.subject))
        result["overdue_items"] = [
            {
                "rule": f.rule_id,
                "service": f.service_id,
                "subject": f.subject,
                "due": None if f.due_at is None else _instant(f.due_at),
                "message": f.message,
            }
            for f in overdue[:DETAIL_LIMIT]
        ]
        result["more_overdue"] = max(0, len(overdue) - DETAIL_LIMIT)
    return result


# --- debriefs ----------------------------------------------------------------------------------

DEBRIEFS: tuple[tuple[DebriefType, str, timedelta], ...] = (
    (DebriefType.IMMEDIATE, "Immediate (hot) debrief", DEFAULT_WINDOWS.immediate),
    (DebriefType.PERSON, "Debrief with the person", DEFAULT_WINDOWS.person),
    (
        DebriefType.POST_INCIDENT_REVIEW,
        "Formal post-incident review",
        DEFAULT_WINDOWS.post_incident_review,
    ),
)


def _debriefs(scope: Scope, as_of: datetime) -> list[dict[str, Any]]:
    rows = []
    for kind, label, window in DEBRIEFS:
        counts: Counter[str] = Counter()
        for incident in scope.incidents:
            counts[_debrief_state(incident, kind, window, as_of)] += 1
        incidents = scope.count(len(scope.incidents))
        on_time = scope.count(counts["on_time"])
        rows.append(
            {
                "debrief": kind.value,
                "label": label,
                "within_hours": int(window.total_seconds() // 3600),
                "incidents": incidents,
                "on_time": on_time,
                "late": scope.count(counts["late"]),
                "declined": scope.count(counts["declined"]),
                "not_held": scope.count(counts["not_held"]),
                "on_time_share": scope.share(on_time, incidents),
            }
        )
    return rows


def _debrief_state(
    incident: IncidentView, kind: DebriefType, window: timedelta, as_of: datetime
) -> str:
    seen = [d for d in incident.debriefs if d.debrief_type is kind and d.at <= as_of]
    held = [d.at for d in seen if d.held]
    if held:
        return "on_time" if min(held) - incident.end <= window else "late"
    return "declined" if seen else "not_held"


# --- the learning loop -------------------------------------------------------------------------


def _learning_loop(scope: Scope, as_of: datetime) -> dict[str, Any]:
    followed: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    no_plan = 0
    for incident in scope.incidents:
        plan = scope.state.plans.get(incident.person_id)
        if plan is None:
            no_plan += 1
            continue
        changes = [c for c in plan.changes if incident.stream in c.incidents and c.at <= as_of]
        if changes:
            change = min(changes, key=lambda c: c.at)
            followed.append(
                {
                    "incident": incident.ref,
                    "person": incident.person_id,
                    "change": "reviewed, no change"
                    if change.revision is None
                    else f"revised (revision {change.revision})",
                    "at": _instant(change.at),
                    "days_after": round((change.at - incident.end).total_seconds() / 86400, 1),
                }
            )
        else:
            recommended = any(d.recommend_plan_revision for d in incident.debriefs)
            missing.append(
                {
                    "incident": incident.ref,
                    "person": incident.person_id,
                    "ended": _instant(incident.end),
                    "debrief_recommended_revision": recommended,
                }
            )
    result: dict[str, Any] = {
        "incidents": scope.count(len(scope.incidents)),
        "followed_by_plan_change": scope.count(len(followed)),
        "missing_plan_change": scope.count(len(missing)),
        "person_has_no_plan": scope.count(no_plan),
        "followed": [],
        "missing": [],
    }
    if not scope.publish:
        result["followed"] = followed[:DETAIL_LIMIT]
        result["missing"] = missing[:DETAIL_LIMIT]
    return result


# --- training ----------------------------------------------------------------------------------


def _training(scope: Scope) -> dict[str, Any]:
    on = scope.end
    staff = sorted(
        (s for s in scope.state.staff.values() if s.service_id in scope.services),
        key=lambda s: s.staff_id,
    )
    rows = []
    for member in staff:
        valid = [t.valid_until for t in member.training if t.completed_on <= on]
        until = max(valid) if valid else None
        if until is None:
            status = "none"
        elif until < on:
            status = "expired"
        elif until < on + timedelta(days=TRAINING_WARNING_DAYS):
            status = "expiring"
        else:
            status = "current"
        rows.append(
            {
                "staff": member.staff_id,
                "job_title": member.job_title,
                "valid_until": None if until is None else until.isoformat(),
                "status": status,
            }
        )
    counts = Counter(r["status"] for r in rows)
    result: dict[str, Any] = {
        "as_of": on.isoformat(),
        "expiring_within_days": TRAINING_WARNING_DAYS,
        "staff": scope.count(len(rows)),
        "current": scope.count(counts["current"]),
        "expiring": scope.count(counts["expiring"]),
        "expired": scope.count(counts["expired"]),
        "none": scope.count(counts["none"]),
        "members": [] if scope.publish else [r for r in rows if r["status"] != "current"],
    }
    result["current_share"] = scope.share(result["current"], result["staff"])
    return result


# --- data quality ------------------------------------------------------------------------------


def _data_quality(scope: Scope) -> list[dict[str, Any]]:
    warnings: list[dict[str, Any]] = []
    months = _spc_months(scope)
    for service_id in scope.services:
        name = scope.state.services[service_id].name
        if months is not None:
            rows = compute_metrics(
                scope.state, service_id=service_id, start=months[0], end=months[1], by="month"
            )
            for run in _zero_runs(rows):
                days = sum(r.person_days or 0 for r in run)
                warnings.append(
                    {
                        "code": "GOV-48",
                        "service": service_id,
                        "message": f"{name} recorded no restrictive interventions for"
                        f" {len(run)} months in a row ({run[0].label} to {run[-1].label}) while"
                        f" it had {_count_words(scope.count(days))} person-days: check that"
                        " incidents are being recorded.",
                    }
                )
        period = range_metrics(
            scope.state, service_id=service_id, start=scope.start, end=scope.end, label="period"
        )
        if period.person_days is None:
            warnings.append(
                {
                    "code": "NO-DENOMINATOR",
                    "service": service_id,
                    "message": f"{name}: person-days are not recorded for every day of the"
                    " period, so its rate per 1,000 person-days cannot be calculated.",
                }
            )
    late = [i for i in scope.incidents if i.recorded_at - i.end > LATE_RECORDING]
    if late:
        warnings.append(
            {
                "code": "LATE-RECORDING",
                "service": scope.service_id,
                "message": f"{_count_words(scope.count(len(late)))} incident(s) in the period"
                " were recorded more than 24 hours after they ended.",
            }
        )
    corrected = [i for i in scope.incidents if i.corrections]
    if corrected:
        warnings.append(
            {
                "code": "CORRECTED",
                "service": scope.service_id,
                "message": f"{_count_words(scope.count(len(corrected)))} incident record(s) in"
                " the period were corrected after they were first recorded (each correction"
                " is a signed event with its reason).",
            }
        )
    return warnings


def _zero_runs(rows: Sequence[PeriodMetrics]) -> list[list[PeriodMetrics]]:
    runs: list[list[PeriodMetrics]] = []
    current: list[PeriodMetrics] = []
    for row in rows:
        if row.interventions == 0 and (row.person_days or 0) > 0:
            current.append(row)
            continue
        if len(current) >= ZERO_RUN_MONTHS:
            runs.append(current)
        current = []
    if len(current) >= ZERO_RUN_MONTHS:
        runs.append(current)
    return runs


# --- small helpers -----------------------------------------------------------------------------


def _number_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _num(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _count_words(value: Cell) -> str:
    if value == SUPPRESSED:
        return "a small number (suppressed) of"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _instant(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _month_words(day: date) -> str:
    return f"{MONTHS[day.month - 1]} {day.year}"


FULL_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _period_words(p: ReportParameters) -> str:
    if p.start.day == 1 and p.end == _add_months(p.start, 1) - timedelta(days=1):
        return f"{FULL_MONTHS[p.start.month - 1]} {p.start.year}"
    return f"{p.start.isoformat()} to {p.end.isoformat()}"
