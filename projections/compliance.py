"""Compliance rules: pure functions of a projected `State` and an explicit `as_of`.

Each rule checks one requirement (a statutory clock, a banned or limited practice, a missing
authorisation or training record) for one entity — an incident, one staff member's part in an
incident, an order, or a person in a service — and returns a `Finding` or `None`.

Which rules apply, and with which thresholds, is data: `projections/profiles/<profile>.toml`
lists the rules of each jurisdiction profile with their parameters and sources. A service is
checked against the rules of every profile it is registered under (`ServiceView.profiles`).

Time: nothing reads the wall clock. A fact dated after `as_of` (a debrief, a notification, a
sign-off, a plan change, the record itself) has not happened yet as far as a rule is
concerned, so evaluating the same state at an earlier `as_of` replays what a board would have
seen then. Post-incident clocks start when the incident ended (`IncidentView.end`); the CMS
face-to-face and seclusion-review clocks start when the intervention started.

Statuses: a duty not yet done is OPEN until it falls due and OVERDUE after; a duty done after
it fell due is MET_LATE (boards see lateness); a duty done on time gives no finding; a fact
that is itself non-compliant (a prone restraint, an order longer than allowed) is a BREACH.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from domain.errors import DomainError, InvalidValue
from domain.vocabulary import (
    POSITION_OF_TYPE,
    AgeBand,
    AuthorisationKind,
    Category,
    DebriefType,
    Profile,
    Recipient,
    SeclusionReview,
    Severity,
)
from projections.model import (
    AuthorisationView,
    IncidentView,
    InterventionView,
    PlanView,
    State,
)

# --- results -------------------------------------------------------------------------------


class Status(StrEnum):
    OPEN = "open"  # due in the future, not yet met
    OVERDUE = "overdue"  # due in the past, not met
    BREACH = "breach"  # a fact that is itself non-compliant (e.g. a prone restraint)
    MET_LATE = "met-late"  # met, but after it fell due


@dataclass(frozen=True)
class Finding:
    rule_id: str
    status: Status
    service_id: str
    subject: str  # incident ref, person id, staff id, or (CMS orders) authorisation ref
    due_at: datetime | None
    message: str  # plain English
    source: str

    def row(self) -> dict[str, str | None]:
        """The finding as the query commands print it (live ledger and bundle alike)."""
        return {
            "rule": self.rule_id,
            "status": self.status.value,
            "service": self.service_id,
            "subject": self.subject,
            "due": self.due_at.isoformat() if self.due_at else None,
            "message": self.message,
            "source": self.source,
        }


@dataclass(frozen=True)
class RuleSpec:
    """One rule as a profile configures it: its id, a title, its source and its thresholds."""

    rule_id: str
    title: str
    source: str
    params: Mapping[str, Any]


class ProfileError(DomainError):
    """A profile file that cannot be used: bad TOML, an unknown rule, a missing threshold."""


# --- the rule registry ---------------------------------------------------------------------

Check = Callable[[State, Any, RuleSpec, datetime], Finding | None]
Entities = Callable[[State, str, datetime], Iterable[Any]]

DEADLINE_KEYS = ("within_minutes", "within_hours", "within_days", "next_business_day")


@dataclass(frozen=True)
class _Rule:
    check: Check
    over: Entities  # the entities of one service the rule is applied to
    requires: tuple[str, ...]  # parameters a profile must give
    optional: tuple[str, ...]  # parameters a profile may give
    deadline: bool  # needs exactly one of DEADLINE_KEYS

    def allowed(self) -> frozenset[str]:
        extra = (*DEADLINE_KEYS, "close_of_business_hour_utc") if self.deadline else ()
        return frozenset((*self.requires, *self.optional, *extra))


_REGISTRY: dict[str, _Rule] = {}


def _rule(
    rule_id: str,
    over: Entities,
    *,
    requires: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    deadline: bool = False,
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if rule_id in _REGISTRY:
            raise AssertionError(f"rule {rule_id} declared twice")
        _REGISTRY[rule_id] = _Rule(check, over, requires, optional, deadline)
        return check

    return register


# --- the entities rules range over ---------------------------------------------------------


@dataclass(frozen=True)
class StaffUse:
    """One staff member's part in one incident (the entity of the training rule)."""

    incident: IncidentView
    staff_id: str


@dataclass(frozen=True)
class PersonInService:
    """A person with their incidents in a service (the entity of repeat-use rules)."""

    service_id: str
    person_id: str
    incidents: tuple[IncidentView, ...]  # started by as_of, oldest first


def incidents(state: State, service_id: str, as_of: datetime) -> Iterator[IncidentView]:
    """Incidents of the service that had started by `as_of`, oldest first."""
    if isinstance(state, _Evaluation):
        return iter(state.started(service_id, as_of))
    return (i for i in state.incidents_of(service_id) if i.start <= as_of)


@dataclass
class _Evaluation(State):
    """The state as one `evaluate` reads it. Nothing changes meanwhile, so each service's
    incidents are sorted and filtered once, not once per rule (~20 rules a service)."""

    _started: dict[tuple[str, datetime], tuple[IncidentView, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, state: State) -> _Evaluation:
        return cls(**{f.name: getattr(state, f.name) for f in fields(State)})

    def started(self, service_id: str, as_of: datetime) -> tuple[IncidentView, ...]:
        key = (service_id, as_of)
        if key not in self._started:
            found = self.incidents_of(service_id)
            self._started[key] = tuple(i for i in found if i.start <= as_of)
        return self._started[key]


def staff_uses(state: State, service_id: str, as_of: datetime) -> Iterator[StaffUse]:
    for incident in incidents(state, service_id, as_of):
        staff = dict.fromkeys(s for i in incident.interventions for s in i.staff)
        for staff_id in sorted(staff):
            yield StaffUse(incident, staff_id)


def orders(state: State, service_id: str, as_of: datetime) -> Iterator[AuthorisationView]:
    for ref in sorted(state.authorisations):
        order = state.authorisations[ref]
        if (
            order.service_id == service_id
            and order.kind is AuthorisationKind.ORDER
            and order.valid_from <= as_of
        ):
            yield order


def people(state: State, service_id: str, as_of: datetime) -> Iterator[PersonInService]:
    by_person: dict[str, list[IncidentView]] = {}
    for incident in incidents(state, service_id, as_of):
        by_person.setdefault(incident.person_id, []).append(incident)
    for person_id in sorted(by_person):
        yield PersonInService(service_id, person_id, tuple(by_person[person_id]))


# --- small helpers -------------------------------------------------------------------------


def _when(t: datetime) -> str:
    """`%Y-%m-%d %H:%M UTC`, in every deadline's message (10^6 of them at 10^6 events):
    isoformat writes the same text in half strftime's time, for four-digit years."""
    u = t.astimezone(UTC)
    if u.year < 1000:  # strftime writes such a year unpadded
        return u.strftime("%Y-%m-%d %H:%M UTC")
    return u.isoformat(" ", "minutes")[:16] + " UTC"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(p for p in parts if p)


def _number(spec: RuleSpec, name: str) -> float:
    value = spec.params[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"rule {spec.rule_id}: {name} must be a number, not {value!r}")
    return float(value)


def _flag(spec: RuleSpec, name: str) -> bool:
    value = spec.params.get(name, False)
    if not isinstance(value, bool):
        raise ProfileError(f"rule {spec.rule_id}: {name} must be true or false, not {value!r}")
    return value


def _strings(spec: RuleSpec, name: str) -> tuple[str, ...]:
    value = spec.params[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f"rule {spec.rule_id}: {name} must be a list of strings")
    return tuple(value)


def _next_business_day_close(t: datetime, close_hour: int) -> datetime:
    """Close of business on the next weekday after `t` (UTC; public holidays not known)."""
    day = t.astimezone(UTC).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, close_hour, tzinfo=UTC)


def due_after(spec: RuleSpec, t: datetime) -> datetime:
    """When a duty whose clock starts at `t` falls due under this rule's deadline parameter."""
    p = spec.params
    if "within_minutes" in p:
        return t + timedelta(minutes=_number(spec, "within_minutes"))
    if "within_hours" in p:
        return t + timedelta(hours=_number(spec, "within_hours"))
    if "within_days" in p:
        return t + timedelta(days=_number(spec, "within_days"))
    if _flag(spec, "next_business_day"):
        close = p.get("close_of_business_hour_utc", 17)
        if isinstance(close, bool) or not isinstance(close, int) or not 0 <= close <= 23:
            raise ProfileError(f"rule {spec.rule_id}: close_of_business_hour_utc must be 0-23")
        return _next_business_day_close(t, close)
    raise ProfileError(f"rule {spec.rule_id} needs one of {', '.join(DEADLINE_KEYS)}")


def _deadline(
    spec: RuleSpec,
    service_id: str,
    subject: str,
    what: str,
    due: datetime,
    met_at: datetime | None,
    as_of: datetime,
    *,
    pending: str = "",
) -> Finding | None:
    """The finding for a duty due at `due` and done at `met_at` (if by `as_of`). Called
    once per incident and deadline rule (~10^6 times at 10^6 events): no closure per call."""
    if met_at is not None and met_at <= as_of:
        if met_at <= due:
            return None
        status = Status.MET_LATE
        message = f"{what} was done {_span(met_at - due)} late (due by {_when(due)})."
    else:
        detail = f" {pending}" if pending else ""
        if as_of <= due:
            status, message = Status.OPEN, f"{what} is due by {_when(due)}.{detail}"
        else:
            status = Status.OVERDUE
            message = f"{what} was due by {_when(due)} and is {_span(as_of - due)} overdue.{detail}"
    return Finding(spec.rule_id, status, service_id, subject, due, message, spec.source)


def _breach(spec: RuleSpec, service_id: str, subject: str, message: str) -> Finding:
    return Finding(spec.rule_id, Status.BREACH, service_id, subject, None, message, spec.source)


def _first(times: Iterable[datetime], as_of: datetime) -> datetime | None:
    """The earliest of `times` that had happened by `as_of`."""
    return min((t for t in times if t <= as_of), default=None)


def _positions(i: InterventionView) -> set[str]:
    implied = POSITION_OF_TYPE.get(i.type)
    return {p.value for p in (i.position, implied) if p is not None}


# --- restraint: duration and position ------------------------------------------------------


@_rule("restraint.max-duration", incidents, requires=("max_minutes",))
def restraint_max_duration(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    limit = _number(spec, "max_minutes")
    physical = [i for i in incident.interventions if i.type.is_physical]
    longest = max(physical, key=lambda i: i.minutes, default=None)
    if longest is None or longest.minutes <= limit:
        return None
    return _breach(
        spec,
        incident.service_id,
        incident.ref,
        f"Physical restraint in {incident.ref} ({longest.type.name.lower().replace('_', ' ')})"
        f" lasted {longest.minutes:g} minutes, over the {limit:g}-minute review threshold.",
    )


@_rule("restraint.prone", incidents, optional=("alert_after_minutes",))
def restraint_prone(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    if not incident.prone:
        return None
    minutes = incident.prone_minutes
    longer = ""
    if "alert_after_minutes" in spec.params and minutes > _number(spec, "alert_after_minutes"):
        longer = f", over the {_number(spec, 'alert_after_minutes'):g}-minute high-alert mark"
    return _breach(
        spec,
        incident.service_id,
        incident.ref,
        f"Prone (face-down) restraint was used in {incident.ref} for {minutes:g} minutes{longer};"
        " every use needs a recorded justification.",
    )


# --- debriefs and reviews ------------------------------------------------------------------


def _debrief_rule(default_types: tuple[DebriefType, ...], what: str) -> Check:
    def check(
        state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
    ) -> Finding | None:
        types = (
            {DebriefType(t) for t in _strings(spec, "types")}
            if "types" in spec.params
            else set(default_types)
        )
        # A declined debrief counts as met: the domain refuses a decline without a reason.
        done = _first((d.at for d in incident.debriefs if d.debrief_type in types), as_of)
        return _deadline(
            spec,
            incident.service_id,
            incident.ref,
            f"The {what} for {incident.ref}",
            due_after(spec, incident.end),
            done,
            as_of,
        )

    return check


_rule("debrief.immediate", incidents, optional=("types",), deadline=True)(
    _debrief_rule((DebriefType.IMMEDIATE,), "immediate post-incident debrief")
)
_rule("debrief.person", incidents, optional=("types",), deadline=True)(
    _debrief_rule((DebriefType.PERSON,), "debrief with the person (or their recorded refusal)")
)
_rule("debrief.post-incident-review", incidents, optional=("types",), deadline=True)(
    _debrief_rule(
        (
            DebriefType.POST_INCIDENT_REVIEW,
            DebriefType.EXTERNAL_REVIEW,
            DebriefType.AFTER_ACTION_REVIEW,
        ),
        "formal post-incident review",
    )
)


# --- the person's plan ---------------------------------------------------------------------


@_rule("plan.review-after-incident", incidents, deadline=True)
def plan_review_after_incident(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    plan = state.plans.get(incident.person_id)
    named = (incident.stream, incident.ref)
    done = None
    if plan is not None:
        done = _first((c.at for c in plan.changes if any(n in c.incidents for n in named)), as_of)
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"A review of {incident.person_id}'s plan naming {incident.ref} (a revision, or"
        " no change with a rationale)",
        due_after(spec, incident.end),
        done,
        as_of,
        pending="" if plan is not None else "There is no behaviour support plan on record.",
    )


def _plan_in_force(plan: PlanView | None, at: datetime) -> tuple[PlanView | None, bool]:
    """The plan to judge an intervention at `at` by, and whether it is exactly the revision
    then in force (False: it was revised since, and the state keeps only the latest content)."""
    if plan is None or plan.published_at > at:
        return None, True
    revised_since = any(c.revision is not None and c.at > at for c in plan.changes)
    return plan, not revised_since


@_rule("plan.technique-within-plan", incidents)
def plan_technique_within_plan(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    plan, exact = _plan_in_force(state.plans.get(incident.person_id), incident.start)
    if plan is None:
        if not incident.part_of_care_plan:
            return None
        return _breach(
            spec,
            incident.service_id,
            incident.ref,
            f"{incident.ref} is recorded as part of {incident.person_id}'s care plan, but no"
            " plan was in force when it started.",
        )
    problems: list[str] = []
    for i in incident.interventions:
        technique = i.technique_id
        if technique is not None and technique in plan.excluded_techniques:
            problems.append(f"technique {technique} is excluded by the plan")
        elif technique is not None and technique not in plan.approved_techniques:
            problems.append(f"technique {technique} is not among the plan's approved techniques")
        for position in sorted(_positions(i) & {p.value for p in plan.excluded_positions}):
            problems.append(f"the {position} position is excluded by the plan")
        if plan.max_minutes is not None and i.minutes > plan.max_minutes:
            problems.append(
                f"{i.type.name.lower().replace('_', ' ')} lasted {i.minutes:g} minutes, over the"
                f" plan's {plan.max_minutes}-minute maximum"
            )
    if not problems:
        return None
    caveat = (
        ""
        if exact
        else f" (checked against revision {plan.revision}, made after the incident: the"
        " revision then in force is not in the projected state)"
    )
    return _breach(
        spec,
        incident.service_id,
        incident.ref,
        f"{incident.ref} went outside {incident.person_id}'s plan: "
        + "; ".join(dict.fromkeys(problems))
        + f"{caveat}.",
    )


# --- authorisation and training ------------------------------------------------------------


NO_COVERAGE = "none"  # Coverage.NONE: no authorisation named (tests check it is the same)


@cache
def _invalid_coverage() -> tuple[str, ...]:
    """The coverages that do not cover an incident. `domain.authorisations` is imported here,
    not at the top: it loads the event models and eventsourcing (~150 ms of every
    `compliance` query's start-up), and only this rule and profiles naming `invalid` need it."""
    from domain.authorisations import Coverage

    return tuple(c.value for c in Coverage if c not in (Coverage.VALID, Coverage.NONE))


@_rule("authorisation.valid", incidents, optional=("invalid", "required"))
def authorisation_valid(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    coverage = incident.coverage
    if coverage == "valid":
        return None
    if "invalid" in spec.params:
        invalid = coverage in _strings(spec, "invalid")
    else:  # "none" (emergency use) is never in the default set: most incidents need no import
        invalid = coverage != NO_COVERAGE and coverage in _invalid_coverage()
    named = incident.authorisation_id or "none named"
    if invalid:
        why = f"authorisation {named} did not cover it ({coverage})"
    elif incident.part_of_care_plan:
        why = f"it is recorded as part of the care plan but has no valid authorisation ({coverage})"
    elif _flag(spec, "required"):
        why = f"every use needs a valid order or authorisation, and it had none ({coverage})"
    else:
        return None  # emergency use with no authorisation named
    return _breach(spec, incident.service_id, incident.ref, f"In {incident.ref}, {why}.")


def certified(state: State, staff_id: str, technique: str, on: date) -> bool:
    """Whether the staff member held current training for the technique on that date."""
    staff = state.staff.get(staff_id)
    return staff is not None and any(
        technique in t.techniques and t.completed_on <= on <= t.valid_until for t in staff.training
    )


@_rule("training.current", staff_uses)
def training_current(
    state: State, use: StaffUse, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    incident = use.incident
    missing = sorted(
        {
            i.technique_id
            for i in incident.interventions
            if i.technique_id is not None
            and use.staff_id in i.staff
            and not certified(state, use.staff_id, i.technique_id, i.start.astimezone(UTC).date())
        }
    )
    if not missing:
        return None
    known = "" if use.staff_id in state.staff else " (no staff record)"
    return _breach(
        spec,
        incident.service_id,
        use.staff_id,
        f"{use.staff_id}{known} used {', '.join(missing)} in {incident.ref} without current"
        " training for it on that date.",
    )


# --- notifications -------------------------------------------------------------------------


@_rule(
    "notification.parent-carer",
    incidents,
    optional=("recipients", "minors_only"),
    deadline=True,
)
def notification_parent_carer(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    age = ""
    if _flag(spec, "minors_only"):
        person = state.people.get(incident.person_id)
        band = person.age_band if person else None
        if band is AgeBand.ADULT:
            return None
        age = "" if band is not None else "The person's age band is not recorded."
    recipients = (
        {Recipient(r) for r in _strings(spec, "recipients")}
        if "recipients" in spec.params
        else {Recipient.PARENT_CARER}
    )
    # Withholding counts as met: the domain refuses it without a reason and an approver.
    done = _first((n.at for n in incident.notifications if n.recipient in recipients), as_of)
    who = " or ".join(sorted(r.value for r in recipients))
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"Notifying the {who} of {incident.ref} (or recording why it is withheld)",
        due_after(spec, incident.end),
        done,
        as_of,
        pending=age,
    )


@_rule(
    "regulator.serious-injury",
    incidents,
    requires=("recipient",),
    optional=("severities",),
    deadline=True,
)
def regulator_serious_injury(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    severities = (
        {Severity(s) for s in _strings(spec, "severities")}
        if "severities" in spec.params
        else {Severity.SERIOUS, Severity.DEATH}
    )
    if not any(j.severity in severities for j in incident.injuries):
        return None
    recipient = Recipient(str(spec.params["recipient"]))
    done = _first(
        (n.at for n in incident.notifications if n.recipient is recipient and not n.withheld),
        as_of,
    )
    worst = (
        "a death"
        if any(j.severity is Severity.DEATH for j in incident.injuries)
        else ("a serious injury")
    )
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"Notifying {recipient.value.upper()} of {worst} in {incident.ref}",
        due_after(spec, incident.end),
        done,
        as_of,
    )


# --- Ofsted: Children's Homes (England) Regulations 2015, reg 35 ---------------------------


@_rule("ofsted.reg35-record", incidents, deadline=True)
def ofsted_reg35_record(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"The written record of {incident.ref}",
        due_after(spec, incident.end),
        incident.recorded_at,
        as_of,
    )


@_rule("ofsted.reg35-sign-off", incidents, deadline=True)
def ofsted_reg35_sign_off(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    signed, spoke = incident.signed_off_at, incident.spoke_to_staff_at
    done = max(signed, spoke) if signed is not None and spoke is not None else None
    pending = ""
    if signed is not None and signed <= as_of and spoke is None:
        pending = "It was signed off without a record of speaking to the staff involved."
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"The registered person's sign-off of {incident.ref}, having spoken to the staff involved,",
        due_after(spec, incident.end),
        done,
        as_of,
        pending=pending,
    )


@_rule("ofsted.reg35-spoke-to-child", incidents, deadline=True)
def ofsted_reg35_spoke_to_child(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"The registered person speaking to the child about {incident.ref}",
        due_after(spec, incident.end),
        incident.spoke_to_person_at,
        as_of,
    )


# --- US CMS: 42 CFR 482.13(e) ---------------------------------------------------------------


@_rule("cms.order-length", orders, requires=("max_hours",))
def cms_order_length(
    state: State, order: AuthorisationView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    limits: Mapping[str, float] = spec.params["max_hours"]  # checked when the profile loaded
    person = state.people.get(order.person_id)
    band = person.age_band if person else None
    if band is None:
        limit = min(float(h) for h in limits.values())
        whose = "age band not recorded, so the strictest limit applies"
    else:
        limit = float(limits[band.value])
        whose = f"age band {band.value}"
    length = order.valid_until - order.valid_from
    if length <= timedelta(hours=limit):
        return None
    return _breach(
        spec,
        order.service_id,
        order.ref,
        f"Order {order.ref} for {order.person_id} runs {_span(length)}, over the {limit:g} h"
        f" limit ({whose}).",
    )


@_rule("cms.face-to-face", incidents, deadline=True)
def cms_face_to_face(
    state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    # Proxy: the first observation recorded after the start stands for the face-to-face
    # evaluation (the model has no separate face-to-face event yet).
    seen = _first((t for t in incident.observations if t >= incident.start), as_of)
    return _deadline(
        spec,
        incident.service_id,
        incident.ref,
        f"The face-to-face evaluation for {incident.ref} (first observation recorded)",
        due_after(spec, incident.start),
        seen,
        as_of,
    )


# --- seclusion reviews (MHA Code of Practice 2015, ch.26) ----------------------------------


def _review_gap(
    incident: IncidentView,
    seclusion: InterventionView,
    kinds: set[SeclusionReview],
    every: timedelta,
    as_of: datetime,
    *,
    first_only: bool,
) -> tuple[datetime, datetime | None] | None:
    """The worst gap in a chain of reviews due every `every` while the seclusion lasts:
    (due, None) for a review not done, else (due, done) for the first late one."""
    done = sorted(
        r.at
        for r in incident.seclusion_reviews
        if r.review in kinds and seclusion.start <= r.at <= as_of
    )
    anchor, late = seclusion.start, None
    while True:
        due = anchor + every
        if due >= seclusion.end:
            return late  # the seclusion ended before the next review fell due
        following = next((t for t in done if t > anchor), None)
        if following is None:
            return due, None
        if following > due and late is None:
            late = (due, following)
        if first_only:
            return late
        anchor = following


def _seclusion_rule(every_key: str, what: str, *, first_only: bool) -> Check:
    def check(
        state: State, incident: IncidentView, spec: RuleSpec, as_of: datetime
    ) -> Finding | None:
        seclusions = [i for i in incident.interventions if i.type.category is Category.SECLUSION]
        if not seclusions:
            # Most incidents; their parameters were checked when the profile was loaded.
            return None
        kinds = {SeclusionReview(r) for r in _strings(spec, "reviews")}
        every = timedelta(hours=_number(spec, every_key))
        for seclusion in seclusions:
            gap = _review_gap(incident, seclusion, kinds, every, as_of, first_only=first_only)
            if gap is not None:
                due, done = gap
                return _deadline(
                    spec,
                    incident.service_id,
                    incident.ref,
                    f"The {what} of the seclusion in {incident.ref}",
                    due,
                    done,
                    as_of,
                )
        return None

    return check


_rule("seclusion.medical-1h", incidents, requires=("within_hours", "reviews"))(
    _seclusion_rule("within_hours", "first medical review", first_only=True)
)
_rule("seclusion.nursing-2h", incidents, requires=("every_hours", "reviews"))(
    _seclusion_rule("every_hours", "nursing review", first_only=False)
)
_rule("seclusion.medical-4h", incidents, requires=("every_hours", "reviews"))(
    _seclusion_rule("every_hours", "medical review", first_only=False)
)


# --- repeated use ---------------------------------------------------------------------------


def _repeat_trigger(starts: list[datetime], threshold: int, window: timedelta) -> datetime | None:
    """The start of the first intervention that brings the count within `window` to
    `threshold` (starts sorted)."""
    for n in range(threshold - 1, len(starts)):
        if starts[n] - starts[n - threshold + 1] <= window:
            return starts[n]
    return None


@_rule(
    "plan.repeat-use-review",
    people,
    requires=("threshold", "window_days"),
    optional=("accept_review_without_change",),
    deadline=True,
)
def plan_repeat_use_review(
    state: State, who: PersonInService, spec: RuleSpec, as_of: datetime
) -> Finding | None:
    """`threshold` interventions within `window_days` call for a plan change (a revision, or a
    first plan) after the one that reached the threshold. Once changed, the count restarts."""
    threshold = int(_number(spec, "threshold"))
    window = timedelta(days=_number(spec, "window_days"))
    starts = sorted(
        i.start for incident in who.incidents for i in incident.interventions if i.start <= as_of
    )
    plan = state.plans.get(who.person_id)
    accept_review = _flag(spec, "accept_review_without_change")
    changes = sorted(
        [plan.published_at, *(c.at for c in plan.changes if accept_review or c.revision)]
        if plan
        else []
    )
    result: Finding | None = None
    since: datetime | None = None
    while True:
        trigger = _repeat_trigger(
            [s for s in starts if since is None or s > since], threshold, window
        )
        if trigger is None:
            return result
        changed = _first((c for c in changes if c >= trigger), as_of)
        found = _deadline(
            spec,
            who.service_id,
            who.person_id,
            f"A change to {who.person_id}'s plan after {threshold} or more restrictive"
            f" interventions within {window.days} days (the last on {_when(trigger)})",
            due_after(spec, trigger),
            changed,
            as_of,
        )
        result = found or result
        if changed is None:
            return result
        since = changed


RULES: Mapping[str, Check] = MappingProxyType({k: r.check for k, r in _REGISTRY.items()})
"""Rule id → pure function(state, entity, spec, as_of) -> Finding | None."""


# --- profiles -------------------------------------------------------------------------------


def parse_profile(text: str, name: str = "profile") -> tuple[Profile, list[RuleSpec]]:
    """A profile from TOML: `profile = "<id>"` and `[[rule]]` tables (id, title, source, and
    the rule's parameters)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{name}: not valid TOML: {e}") from None
    try:
        profile = Profile(str(raw.get("profile")))
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise ProfileError(f"{name}: profile must be one of {known}") from None
    entries = raw.get("rule")
    if not isinstance(entries, list) or not entries:
        raise ProfileError(f"{name}: a profile lists its rules as [[rule]] tables")
    specs = [_spec(name, n, entry) for n, entry in enumerate(entries, 1)]
    ids = [s.rule_id for s in specs]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ProfileError(f"{name}: rules listed twice: {', '.join(repeated)}")
    return profile, specs


def _spec(name: str, n: int, entry: Any) -> RuleSpec:
    where = f"{name}: rule {n}"
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: not a table")
    fields = {k: entry.get(k) for k in ("id", "title", "source")}
    for key, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ProfileError(f"{where}: {key} is required")
    rule_id = str(fields["id"])
    rule = _REGISTRY.get(rule_id)
    if rule is None:
        raise ProfileError(f"{where}: unknown rule {rule_id!r} (known: {', '.join(sorted(RULES))})")
    params = {k: v for k, v in entry.items() if k not in fields}
    missing = [p for p in rule.requires if p not in params]
    if missing:
        raise ProfileError(f"{where} ({rule_id}): missing {', '.join(missing)}")
    unknown = sorted(set(params) - rule.allowed())
    if unknown:
        allowed = ", ".join(sorted(rule.allowed())) or "none"
        raise ProfileError(
            f"{where} ({rule_id}): unknown parameters {', '.join(unknown)} (allowed: {allowed})"
        )
    given = [k for k in DEADLINE_KEYS if k in params]
    if rule.deadline and len(given) != 1:
        raise ProfileError(f"{where} ({rule_id}): give exactly one of {', '.join(DEADLINE_KEYS)}")
    spec = RuleSpec(rule_id, str(fields["title"]), str(fields["source"]), MappingProxyType(params))
    _check_params(spec)
    return spec


# parameter → the vocabulary its values come from (`invalid`: see _vocabulary)
_VOCABULARY: Mapping[str, type[StrEnum]] = {
    "types": DebriefType,
    "recipients": Recipient,
    "recipient": Recipient,
    "severities": Severity,
    "reviews": SeclusionReview,
}


def _vocabulary(key: str) -> type[StrEnum] | None:
    if key == "invalid":  # imported on use, as in _invalid_coverage
        from domain.authorisations import Coverage

        return Coverage
    return _VOCABULARY.get(key)


_NUMBERS = frozenset(
    {
        "within_minutes",
        "within_hours",
        "within_days",
        "every_hours",
        "max_minutes",
        "alert_after_minutes",
        "threshold",
        "window_days",
    }
)
_FLAGS = frozenset({"next_business_day", "minors_only", "required", "accept_review_without_change"})


def _check_params(spec: RuleSpec) -> None:
    """Refuse a parameter of the wrong type or outside its vocabulary, at load time."""
    for key, value in spec.params.items():
        if key in _NUMBERS and _number(spec, key) <= 0:
            raise ProfileError(f"rule {spec.rule_id}: {key} must be positive")
        if key in _FLAGS:
            _flag(spec, key)
        vocabulary = _vocabulary(key)
        if vocabulary is not None:
            values = [value] if isinstance(value, str) else _strings(spec, key)
            bad = [v for v in values if v not in {m.value for m in vocabulary}]
            if bad:
                known = ", ".join(m.value for m in vocabulary)
                raise ProfileError(f"rule {spec.rule_id}: {key}: unknown {bad} (known: {known})")
    if "close_of_business_hour_utc" in spec.params:
        due_after(spec, datetime(2000, 1, 3, tzinfo=UTC))
    if "max_hours" in spec.params:
        limits = spec.params["max_hours"]
        bands = {b.value for b in AgeBand}
        if (
            not isinstance(limits, Mapping)
            or set(limits) != bands
            or not all(isinstance(h, int | float) and h > 0 for h in limits.values())
        ):
            raise ProfileError(
                f"rule {spec.rule_id}: max_hours needs a positive limit for each age band"
                f" ({', '.join(sorted(bands))})"
            )


@cache
def _packaged() -> tuple[tuple[Profile, tuple[RuleSpec, ...]], ...]:
    found: dict[Profile, tuple[RuleSpec, ...]] = {}
    folder = resources.files("projections").joinpath("profiles")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        profile, specs = parse_profile(entry.read_text(encoding="utf-8"), entry.name)
        if f"{profile.value}.toml" != entry.name:
            raise ProfileError(f"{entry.name} declares profile {profile.value}")
        found[profile] = tuple(specs)
    return tuple(found.items())


def load_profiles() -> dict[Profile, list[RuleSpec]]:
    """The packaged profiles (`projections/profiles/<profile>.toml`), by profile."""
    return {profile: list(specs) for profile, specs in _packaged()}


# --- evaluation -----------------------------------------------------------------------------


def _specs_for(
    profiles: tuple[Profile, ...], configured: Mapping[Profile, list[RuleSpec]]
) -> list[RuleSpec]:
    """The rules of all the service's profiles; a rule configured identically by two profiles
    is checked once."""
    seen: list[RuleSpec] = []
    for profile in profiles:
        for spec in configured.get(profile, ()):
            if not any(s.rule_id == spec.rule_id and s.params == spec.params for s in seen):
                seen.append(spec)
    return seen


def evaluate(
    state: State,
    as_of: datetime,
    *,
    service_id: str | None = None,
    profiles: Mapping[Profile, list[RuleSpec]] | None = None,
) -> list[Finding]:
    """Every finding for every service (or one), as of `as_of`, in a stable order."""
    if as_of.tzinfo is None:
        raise InvalidValue("as_of must carry its UTC offset")
    if service_id is not None and service_id not in state.services:
        raise InvalidValue(f"unknown service {service_id!r}")
    configured = load_profiles() if profiles is None else profiles
    state = _Evaluation.of(state)
    findings: list[Finding] = []
    for sid in sorted(state.services):
        if service_id is not None and sid != service_id:
            continue
        for spec in _specs_for(state.services[sid].profiles, configured):
            rule = _REGISTRY.get(spec.rule_id)
            if rule is None:
                raise ProfileError(f"unknown rule {spec.rule_id!r}")
            for entity in rule.over(state, sid, as_of):
                found = rule.check(state, entity, spec, as_of)
                if found is not None:
                    findings.append(found)
    far = datetime.max.replace(tzinfo=UTC)
    findings.sort(
        key=lambda f: (f.service_id, f.rule_id, f.subject, f.due_at or far, f.message, f.source)
    )
    return findings
