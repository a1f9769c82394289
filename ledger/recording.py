"""Recording the domain: services, people, staff, plans, authorisations and incidents.

Each method: check permission → load → one aggregate call → save → return the id. Inputs
arrive as command objects (pydantic), validated in full before anything is loaded or written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from domain.authorisations import Authorisation, Coverage, Scope
from domain.events import Aggregate, Instant, stream_id
from domain.incidents import Incident, IncidentFacts, Injury, Intervention, NonStaffInvolved
from domain.people import Person, person_stream
from domain.plans import BehaviourSupportPlan, PlanContent, RevisionReason, plan_stream
from domain.services import Service, service_stream
from domain.staff import StaffMember, Training, staff_stream
from domain.techniques import Technique, TechniqueCatalogue, catalogue_stream
from domain.vocabulary import (
    AgeBand,
    AuthorisationKind,
    DebriefType,
    Profile,
    Recipient,
    SeclusionReview,
    Setting,
)
from ledger.app import storage_errors
from ledger.errors import NotFound, ValidationError
from ledger.service import LedgerService

A = TypeVar("A", bound=Aggregate)
M = TypeVar("M", bound=BaseModel)

_COVERAGE_ORDER = list(Coverage)


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_command(model: type[M], data: object) -> M:
    """Validate user input into a command; every problem reported with its field path."""
    try:
        return model.model_validate(data)
    except PydanticError as e:
        raise ValidationError(describe(e)) from None


def describe(error: PydanticError) -> str:
    problems = []
    for item in error.errors()[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "record"
        problems.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - 10
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


class NewIncident(Command):
    service: str
    person: str
    place: str
    start: Instant
    end: Instant
    reason: str
    interventions: tuple[Intervention, ...] = Field(min_length=1)
    de_escalation: tuple[str, ...] = ()
    non_staff: tuple[NonStaffInvolved, ...] = ()
    injuries: tuple[Injury, ...] = ()
    part_of_care_plan: bool = False
    authorisation: str | None = None
    antecedents: str | None = None
    reason_detail: str | None = None
    force_description: str | None = None
    outcome: str | None = None
    de_escalation_notes: str | None = None

    def facts(self) -> IncidentFacts:
        return IncidentFacts.model_validate(
            {
                "place": self.place,
                "occurred_start": self.start,
                "occurred_end": self.end,
                "reason": self.reason,
                "interventions": self.interventions,
                "de_escalation": self.de_escalation,
                "non_staff": self.non_staff,
                "injuries": self.injuries,
                "part_of_care_plan": self.part_of_care_plan,
                "authorisation_id": self.authorisation,
            }
        )

    def narrative(self) -> dict[str, str | None]:
        names = (
            "antecedents",
            "reason_detail",
            "force_description",
            "outcome",
            "de_escalation_notes",
        )
        return {name: getattr(self, name) for name in names}


class RecordingService(LedgerService):
    _lookups: dict[UUID, Any] | None = None
    # How references and ids are made: random, except in a seeded simulation (the demo).
    new_ref: Callable[[str], str] = staticmethod(lambda prefix: new_ref(prefix))
    new_id: Callable[[], UUID] = staticmethod(uuid4)

    def cache_lookups(self) -> None:
        """Remember what `_get` loads (for a bulk import that only reads them)."""
        self._lookups = {}

    # --- organisation --------------------------------------------------------------------

    def register_service(
        self, service_id: str, name: str, setting: Setting, profiles: Sequence[Profile]
    ) -> UUID:
        self._refuse_existing(service_stream(service_id), f"service {service_id!r}")
        return self._save(Service.register(service_id, name, setting, tuple(profiles)))

    def record_occupancy(self, service_id: str, start: date, end: date, person_days: int) -> UUID:
        service = self.service_record(service_id)
        service.record_occupancy(start, end, person_days)
        return self._save(service)

    def publish_catalogue(self, techniques: Sequence[Technique], reason: str | None) -> UUID:
        try:
            catalogue = self._get(TechniqueCatalogue, catalogue_stream(), "catalogue")
        except NotFound:
            return self._save(TechniqueCatalogue.publish(tuple(techniques)))
        catalogue.revise(tuple(techniques), reason or "")
        return self._save(catalogue)

    def catalogue(self) -> TechniqueCatalogue:
        return self._get(
            TechniqueCatalogue,
            catalogue_stream(),
            "technique catalogue (publish one with 'calm-ledger techniques publish')",
        )

    # --- people and staff ------------------------------------------------------------------

    def register_person(self, pseudonym: str, service_id: str, **details: Any) -> UUID:
        self._refuse_existing(person_stream(pseudonym), f"person {pseudonym!r}")
        if details.get("age_band") is not None:
            details["age_band"] = AgeBand(details["age_band"])
        return self._save(Person.register(pseudonym, service_id, **details))

    def register_staff(
        self, staff_id: str, service_id: str, job_title: str, full_name: str | None
    ) -> UUID:
        self.service_record(service_id)
        self._refuse_existing(staff_stream(staff_id), f"staff member {staff_id!r}")
        return self._save(StaffMember.register(staff_id, service_id, job_title, full_name))

    def record_training(self, staff_id: str, training: Training) -> UUID:
        staff = self.staff_member(staff_id)
        if training.techniques:
            catalogue = self.catalogue()
            for technique in training.techniques:
                catalogue.technique(technique)
        staff.record_training(training)
        return self._save(staff)

    # --- plans and authorisations ----------------------------------------------------------

    def publish_plan(self, person_id: str, content: PlanContent, at: datetime) -> UUID:
        self.person(person_id)
        self._check_techniques(content.tertiary.approved_techniques)
        self._check_techniques(content.tertiary.excluded_techniques)
        self._refuse_existing(plan_stream(person_id), f"a plan for {person_id!r}")
        return self._save(BehaviourSupportPlan.publish(person_id, content, at))

    def revise_plan(
        self, person_id: str, content: PlanContent, reason: RevisionReason, at: datetime
    ) -> UUID:
        plan = self.plan(person_id)
        self._check_techniques(content.tertiary.approved_techniques)
        self._check_incidents(reason.incidents, person_id)
        plan.revise(content, reason, at)
        return self._save(plan)

    def review_plan(
        self, person_id: str, reason: RevisionReason, at: datetime, next_review_due: date
    ) -> UUID:
        plan = self.plan(person_id)
        self._check_incidents(reason.incidents, person_id)
        plan.review_unchanged(reason, at, next_review_due)
        return self._save(plan)

    def plan(self, person_id: str) -> BehaviourSupportPlan:
        return self._get(BehaviourSupportPlan, plan_stream(person_id), f"plan for {person_id!r}")

    def grant_authorisation(
        self,
        kind: AuthorisationKind,
        service_id: str,
        scope: Scope,
        approver_staff_id: str,
        approver_role: str,
        valid_from: datetime,
        valid_until: datetime,
        conditions: str | None = None,
    ) -> str:
        self.service_record(service_id)
        self.person(scope.person_id)
        self.staff_member(approver_staff_id)
        self._check_techniques(scope.techniques)
        ref = self.new_ref("AUTH")
        self._save(
            Authorisation.grant(
                stream_id("authorisation", ref),
                ref,
                kind,
                service_id,
                scope,
                approver_staff_id,
                approver_role,
                valid_from,
                valid_until,
                conditions,
            )
        )
        return ref

    def renew_authorisation(self, ref: str, valid_until: datetime, assessment: str) -> UUID:
        authorisation = self.authorisation(ref)
        authorisation.renew(valid_until, assessment)
        return self._save(authorisation)

    def revoke_authorisation(self, ref: str, at: datetime, reason: str) -> UUID:
        authorisation = self.authorisation(ref)
        authorisation.revoke(at, reason)
        return self._save(authorisation)

    def authorisation(self, ref: str) -> Authorisation:
        return self._get(Authorisation, stream_id("authorisation", ref), f"authorisation {ref!r}")

    # --- incidents ---------------------------------------------------------------------------

    def record_incident(self, command: NewIncident) -> str:
        self.authorise(Incident.Recorded.TYPE)
        incident, ref = self.prepare_incident(command)
        self._save(incident)
        return ref

    def prepare_incident(self, command: NewIncident) -> tuple[Incident, str]:
        """Validate an incident against the ledger's state and build it, unsaved (imports
        prepare many and save them in one transaction)."""
        service = self.service_record(command.service)
        self.person(command.person)
        facts = command.facts()
        self._check_interventions(facts)
        coverage = self._coverage(command.person, facts)
        ref = self.new_ref("INC")
        incident = Incident.record(
            stream_id("incident", ref),
            ref,
            command.service,
            command.person,
            facts,
            coverage,
            service.profiles,
            **command.narrative(),
        )
        return incident, ref

    def record_observation(self, ref: str, at: datetime, observer: str, **vitals: Any) -> UUID:
        incident = self.incident(ref)
        self.staff_member(observer)
        incident.record_observation(at, observer, **vitals)
        return self._save(incident)

    def review_seclusion(
        self,
        ref: str,
        review: SeclusionReview,
        at: datetime,
        reviewers: tuple[str, ...],
        continue_seclusion: bool,
        rationale: str | None,
    ) -> UUID:
        incident = self.incident(ref)
        incident.review_seclusion(review, at, reviewers, continue_seclusion, rationale)
        return self._save(incident)

    def notify(
        self, ref: str, recipient: Recipient, at: datetime, channel: str, sent_by: str
    ) -> UUID:
        incident = self.incident(ref)
        incident.notify(recipient, at, channel, sent_by)
        return self._save(incident)

    def withhold_notification(
        self, ref: str, recipient: Recipient, at: datetime, approver: str, reason: str
    ) -> UUID:
        incident = self.incident(ref)
        self.staff_member(approver)
        incident.withhold_notification(recipient, at, approver, reason)
        return self._save(incident)

    def record_debrief(
        self, ref: str, debrief_type: DebriefType, at: datetime, facilitator: str, **details: Any
    ) -> UUID:
        incident = self.incident(ref)
        debrief_id = self.new_id()
        incident.hold_debrief(debrief_id, debrief_type, at, facilitator, **details)
        self._save(incident)
        return debrief_id

    def decline_debrief(
        self, ref: str, debrief_type: DebriefType, at: datetime, offered_by: str, reason: str
    ) -> UUID:
        incident = self.incident(ref)
        incident.decline_debrief(debrief_type, at, offered_by, reason)
        return self._save(incident)

    def sign_off(
        self,
        ref: str,
        at: datetime,
        spoke_to_staff_at: datetime | None,
        spoke_to_person_at: datetime | None,
    ) -> UUID:
        self.authorise(Incident.SignedOff.TYPE)
        incident = self.incident(ref)
        incident.sign_off(at, spoke_to_staff_at, spoke_to_person_at)
        return self._save(incident)

    def correct_incident(
        self, ref: str, corrects_version: int, reason: str, changes: dict[str, Any]
    ) -> UUID:
        incident = self.incident(ref)
        facts = _corrected_facts(incident, changes)
        if facts is not None:
            self._check_interventions(facts)
        coverage = self._coverage(incident.person_id, facts) if facts is not None else None
        incident.correct(corrects_version, reason, changes, coverage)
        return self._save(incident)

    def incident(self, ref: str) -> Incident:
        return self._get(Incident, stream_id("incident", ref), f"incident {ref!r}")

    # --- lookups -----------------------------------------------------------------------------

    def service_record(self, service_id: str) -> Service:
        return self._get(Service, service_stream(service_id), f"service {service_id!r}")

    def person(self, pseudonym: str) -> Person:
        return self._get(Person, person_stream(pseudonym), f"person {pseudonym!r}")

    def staff_member(self, staff_id: str) -> StaffMember:
        return self._get(StaffMember, staff_stream(staff_id), f"staff member {staff_id!r}")

    def _get(self, cls: type[A], stream: UUID, what: str) -> A:
        found: Any = None if self._lookups is None else self._lookups.get(stream)
        if found is None:
            try:
                with storage_errors(self.app.store_url):
                    found = self.app.repository.get(stream)
            except AggregateNotFoundError:
                raise NotFound(f"no {what} is recorded") from None
            if self._lookups is not None:
                self._lookups[stream] = found
        if not isinstance(found, cls):
            raise NotFound(f"no {what} is recorded")
        return found

    def _refuse_existing(self, stream: UUID, what: str) -> None:
        if self._exists(stream):
            raise ValidationError(f"{what} is already recorded")

    def _check_techniques(self, technique_ids: Iterable[str]) -> None:
        ids = list(technique_ids)
        if ids:
            catalogue = self.catalogue()
            for technique in ids:
                catalogue.technique(technique)

    def _check_incidents(self, streams: Iterable[UUID], person_id: str) -> None:
        for stream in streams:
            try:
                with storage_errors(self.app.store_url):
                    incident: Any = self.app.repository.get(stream)
            except AggregateNotFoundError:
                raise NotFound(f"no incident with stream id {stream} is recorded") from None
            if not isinstance(incident, Incident) or incident.person_id != person_id:
                raise ValidationError(f"incident {stream} is not about {person_id!r}")

    def _check_interventions(self, facts: IncidentFacts) -> None:
        self._check_techniques(i.technique_id for i in facts.interventions if i.technique_id)
        named = {s.staff_id for i in facts.interventions for s in i.staff}
        for staff_id in sorted(named):
            self.staff_member(staff_id)

    def _coverage(self, person_id: str, facts: IncidentFacts) -> Coverage:
        """The worst coverage the named authorisation gives any intervention."""
        if facts.authorisation_id is None:
            return Coverage.NONE
        authorisation = self.authorisation(facts.authorisation_id)
        results = [
            authorisation.coverage(
                person_id, i.technique_id, i.type, i.position, i.start, i.minutes
            )
            for i in facts.interventions
        ]
        return max(results, key=_COVERAGE_ORDER.index)


def _corrected_facts(incident: Incident, changes: dict[str, Any]) -> IncidentFacts | None:
    if incident.facts is None:
        return None
    try:
        return IncidentFacts.model_validate({**incident.facts.model_dump(), **changes})
    except PydanticError as e:
        raise ValidationError(describe(e)) from None


def new_ref(prefix: str) -> str:
    """A short random reference people can read out (48 bits)."""
    return f"{prefix}-{secrets.token_hex(6).upper()}"
