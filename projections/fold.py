"""Fold domain events, in log order, into the projected `State` (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from domain.authorisations import Authorisation
from domain.events import DomainEvent
from domain.incidents import Incident, IncidentFacts
from domain.people import Person
from domain.plans import BehaviourSupportPlan
from domain.services import Service
from domain.staff import StaffMember
from ledger.envelope import Header
from ledger.erasure import SubjectErasure
from ledger.mapper import build_event
from projections.model import (
    AuthorisationView,
    DebriefView,
    IncidentView,
    InjuryView,
    InterventionView,
    NotificationView,
    OccupancyView,
    PersonView,
    PlanChangeView,
    PlanView,
    SeclusionReviewView,
    ServiceView,
    StaffView,
    State,
    TrainingView,
    occupancy_key,
)

Handler = Callable[[State, Any, str], None]
_HANDLERS: dict[str, Handler] = {}


def handles(event_type: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[event_type] = handler
        return handler

    return register


def apply(state: State, event: DomainEvent, actor: str) -> None:
    """Apply one event (signed by `actor`); types the projections ignore change nothing."""
    handler = _HANDLERS.get(event.TYPE)
    if handler is not None:
        handler(state, event, actor)
    state.size += 1


def handled(event_type: str) -> bool:
    """Whether events of this type change the state (others only count towards its size)."""
    return event_type in _HANDLERS


def apply_stored(state: State, header: Header, data: dict[str, Any]) -> None:
    """Apply one event as stored (its signed header, its data fields with sealed ones read
    as None): validated as the domain event it records when a view handles its type (the
    writer validated it too, but the read side trusts only what it checks), else counted."""
    if header.type in _HANDLERS:
        apply(state, build_event(header, data), header.actor)
    else:
        state.size += 1


def fold(events: Iterable[tuple[DomainEvent, str]], state: State | None = None) -> State:
    state = state or State()
    for event, actor in events:
        apply(state, event, actor)
    return state


# --- organisation ------------------------------------------------------------------------


@handles(Service.Registered.TYPE)
def _service(state: State, e: Service.Registered, _actor: str) -> None:
    state.services[e.service_id] = ServiceView(e.service_id, e.name, e.setting, e.profiles)


@handles(Service.OccupancyRecorded.TYPE)
def _occupancy(state: State, e: Service.OccupancyRecorded, _actor: str) -> None:
    key = occupancy_key(e.service_id, e.period_start, e.period_end)
    state.occupancy[key] = OccupancyView(e.service_id, e.period_start, e.period_end, e.person_days)


@handles(Person.Registered.TYPE)
def _person(state: State, e: Person.Registered, _actor: str) -> None:
    state.people[e.pseudonym] = PersonView(
        e.pseudonym, e.service_id, e.age_band, e.learning_disability_or_autism
    )


@handles(StaffMember.Registered.TYPE)
def _staff(state: State, e: StaffMember.Registered, _actor: str) -> None:
    state.staff[e.staff_id] = StaffView(e.staff_id, e.service_id, e.job_title)


@handles(StaffMember.TrainingRecorded.TYPE)
def _training(state: State, e: StaffMember.TrainingRecorded, _actor: str) -> None:
    staff = state.staff.get(e.staff_id)
    if staff is None:
        return
    t = e.training
    view = TrainingView(e.staff_id, t.course, t.techniques, t.completed_on, t.valid_until)
    state.staff[e.staff_id] = replace(staff, training=(*staff.training, view))


@handles(SubjectErasure.Erased.TYPE)
def _erased(state: State, e: SubjectErasure.Erased, _actor: str) -> None:
    state.erased_subjects[e.subject] = True


# --- plans and authorisations --------------------------------------------------------------


@handles(BehaviourSupportPlan.Published.TYPE)
def _plan(state: State, e: BehaviourSupportPlan.Published, _actor: str) -> None:
    t = e.content.tertiary
    state.plans[e.person_id] = PlanView(
        e.person_id,
        1,
        e.published_at,
        e.content.review_due,
        t.approved_techniques,
        t.excluded_techniques,
        t.excluded_positions,
        t.max_minutes,
    )


@handles(BehaviourSupportPlan.Revised.TYPE)
def _revised(state: State, e: BehaviourSupportPlan.Revised, _actor: str) -> None:
    plan = state.plans.get(e.person_id)
    if plan is None:
        return
    t = e.content.tertiary
    change = PlanChangeView(e.revised_at, e.revision, tuple(str(i) for i in e.reason.incidents))
    state.plans[e.person_id] = replace(
        plan,
        revision=e.revision,
        review_due=e.content.review_due,
        approved_techniques=t.approved_techniques,
        excluded_techniques=t.excluded_techniques,
        excluded_positions=t.excluded_positions,
        max_minutes=t.max_minutes,
        changes=(*plan.changes, change),
    )


@handles(BehaviourSupportPlan.Reviewed.TYPE)
def _reviewed(state: State, e: BehaviourSupportPlan.Reviewed, _actor: str) -> None:
    plan = state.plans.get(e.person_id)
    if plan is None:
        return
    change = PlanChangeView(e.reviewed_at, None, tuple(str(i) for i in e.reason.incidents))
    state.plans[e.person_id] = replace(
        plan, review_due=e.next_review_due, changes=(*plan.changes, change)
    )


@handles(Authorisation.Granted.TYPE)
def _granted(state: State, e: Authorisation.Granted, _actor: str) -> None:
    state.authorisation_streams[str(e.originator_id)] = e.authorisation_id
    state.authorisations[e.authorisation_id] = AuthorisationView(
        e.authorisation_id, e.kind, e.service_id, e.person_id, e.valid_from, e.valid_until
    )


@handles(Authorisation.Renewed.TYPE)
def _renewed(state: State, e: Authorisation.Renewed, _actor: str) -> None:
    ref = _auth_ref(state, e)
    if ref:
        state.authorisations[ref] = replace(state.authorisations[ref], valid_until=e.valid_until)


@handles(Authorisation.Revoked.TYPE)
def _revoked(state: State, e: Authorisation.Revoked, _actor: str) -> None:
    ref = _auth_ref(state, e)
    if ref:
        state.authorisations[ref] = replace(state.authorisations[ref], revoked_at=e.revoked_at)


def _auth_ref(state: State, e: DomainEvent) -> str | None:
    # Renewals and revocations carry no ref; their stream identifies the grant.
    return state.authorisation_streams.get(str(e.originator_id))


# --- incidents -----------------------------------------------------------------------------


def _views(facts: IncidentFacts) -> dict[str, Any]:
    return {
        "place": facts.place,
        "start": facts.occurred_start,
        "end": facts.occurred_end,
        "reason": facts.reason,
        "interventions": tuple(
            InterventionView(
                i.type,
                i.technique_id,
                i.position,
                i.start,
                i.end,
                i.staff_count,
                tuple(s.staff_id for s in i.staff),
            )
            for i in facts.interventions
        ),
        "injuries": tuple(InjuryView(j.person.value, j.severity) for j in facts.injuries),
        "non_staff": tuple(n.agency for n in facts.non_staff),
        "de_escalation": facts.de_escalation,
        "part_of_care_plan": facts.part_of_care_plan,
        "authorisation_id": facts.authorisation_id,
    }


def _incident_by_stream(state: State, e: DomainEvent) -> IncidentView | None:
    ref = state.incident_streams.get(str(e.originator_id))
    return None if ref is None else state.incidents.get(ref)


def _update(state: State, incident: IncidentView, **changes: Any) -> None:
    state.incidents[incident.ref] = replace(incident, **changes)


@handles(Incident.Recorded.TYPE)
def _recorded(state: State, e: Incident.Recorded, actor: str) -> None:
    state.incident_streams[str(e.originator_id)] = e.incident_ref
    state.incidents[e.incident_ref] = IncidentView(
        ref=e.incident_ref,
        stream=str(e.originator_id),
        service_id=e.service_id,
        person_id=e.person_id,
        coverage=e.coverage.value,
        recorded_at=e.timestamp,
        recorded_by=actor,
        **_views(e.facts),
    )


@handles(Incident.Corrected.TYPE)
def _corrected(state: State, e: Incident.Corrected, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        _update(
            state,
            incident,
            coverage=e.coverage.value,
            corrections=incident.corrections + 1,
            **_views(e.facts),
        )


@handles(Incident.DebriefHeld.TYPE)
def _debrief(state: State, e: Incident.DebriefHeld, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        view = DebriefView(e.debrief_type, e.held_at, True, e.recommend_plan_revision)
        _update(state, incident, debriefs=(*incident.debriefs, view))


@handles(Incident.DebriefDeclined.TYPE)
def _declined(state: State, e: Incident.DebriefDeclined, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        view = DebriefView(e.debrief_type, e.declined_at, False)
        _update(state, incident, debriefs=(*incident.debriefs, view))


@handles(Incident.NotificationSent.TYPE)
def _sent(state: State, e: Incident.NotificationSent, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        view = NotificationView(e.recipient, e.sent_at, False)
        _update(state, incident, notifications=(*incident.notifications, view))


@handles(Incident.NotificationWithheld.TYPE)
def _withheld(state: State, e: Incident.NotificationWithheld, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        view = NotificationView(e.recipient, e.decided_at, True)
        _update(state, incident, notifications=(*incident.notifications, view))


@handles(Incident.SeclusionReviewed.TYPE)
def _seclusion(state: State, e: Incident.SeclusionReviewed, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        view = SeclusionReviewView(e.review, e.reviewed_at, e.continue_seclusion)
        _update(state, incident, seclusion_reviews=(*incident.seclusion_reviews, view))


@handles(Incident.ObservationRecorded.TYPE)
def _observation(state: State, e: Incident.ObservationRecorded, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        _update(state, incident, observations=(*incident.observations, e.observed_at))


@handles(Incident.SignedOff.TYPE)
def _signed_off(state: State, e: Incident.SignedOff, _actor: str) -> None:
    incident = _incident_by_stream(state, e)
    if incident:
        _update(
            state,
            incident,
            signed_off_at=e.signed_at,
            spoke_to_staff_at=e.spoke_to_staff_at,
            spoke_to_person_at=e.spoke_to_person_at,
        )
