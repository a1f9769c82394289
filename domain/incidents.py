"""Incidents: one restrictive-intervention episode and everything that follows it, on one stream.

Recorded → observations, seclusion reviews, notifications, debriefs, manager sign-off, and
corrections. A correction is a new event naming the event it corrects and why; nothing is
ever edited. Clocks come from `occurred_*` (what happened when), not from when it was signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from domain.authorisations import Coverage
from domain.errors import RuleViolated
from domain.events import Aggregate, Instant, Value
from domain.guards import check_ends_after_start, check_text
from domain.statutory import check_statutory_items_present
from domain.vocabulary import (
    Category,
    DebriefType,
    InjuredPerson,
    InterventionType,
    Position,
    Profile,
    Reason,
    Recipient,
    Route,
    SeclusionReview,
    Severity,
)


class StaffInvolved(Value):
    staff_id: str
    role_in_hold: str | None = None  # lead, airway monitor, limbs …


class Chemical(Value):
    drug: str
    dose: str
    route: Route
    prescriber: str | None = None


class Intervention(Value):
    """One restrictive intervention within the incident (several may overlap)."""

    type: InterventionType
    technique_id: str | None = None
    position: Position | None = None
    start: Instant
    end: Instant
    staff_count: int = Field(ge=0, le=20)
    staff: tuple[StaffInvolved, ...] = ()
    chemical: Chemical | None = None

    @classmethod
    def by_staff(cls, staff_ids: Sequence[str], **fields: Any) -> Intervention:
        """An intervention by these members of staff, every one of them named."""
        staff = tuple(StaffInvolved(staff_id=staff_id) for staff_id in staff_ids)
        return cls(staff_count=len(staff), staff=staff, **fields)

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    @model_validator(mode="after")
    def _consistent(self) -> Intervention:
        check_ends_after_start(self.start, self.end, f"intervention {self.type.value}")
        if self.staff_count < len(self.staff):
            raise ValueError("staff_count is smaller than the number of staff named")
        if (self.type.category is Category.CHEMICAL) != (self.chemical is not None):
            raise ValueError("give drug, dose and route for chemical restraint, and only then")
        return self


class NonStaffInvolved(Value):
    """Someone who is not staff of the unit took part (UoF s.6(5)(i)), e.g. police."""

    agency: str
    reason: str


class Injury(Value):
    person: InjuredPerson
    description: str
    severity: Severity
    treatment: str | None = None


class Action(Value):
    owner: str
    action: str
    due: Instant | None = None


class IncidentFacts(Value):
    """What an incident record says; a correction replaces some of these fields."""

    place: str
    occurred_start: Instant
    occurred_end: Instant
    reason: Reason
    interventions: tuple[Intervention, ...]
    de_escalation: tuple[str, ...] = ()  # efforts to avoid force (UoF o; Reg 35(3)(a)(v))
    non_staff: tuple[NonStaffInvolved, ...] = ()
    injuries: tuple[Injury, ...] = ()
    part_of_care_plan: bool = False  # UoF s.6(5)(d)
    authorisation_id: str | None = None


CORRECTABLE = frozenset(IncidentFacts.model_fields)


class Incident(Aggregate):
    KIND: ClassVar[str] = "incident"

    def __init__(self) -> None:
        self.incident_ref = ""
        self.service_id = ""
        self.person_id = ""
        self.facts: IncidentFacts | None = None
        self.coverage = Coverage.NONE
        self.signed_off = False
        self.debriefs: dict[UUID, DebriefType] = {}
        self.fact_versions: set[int] = set()  # versions that state facts (recorded, corrected)

    # --- events --------------------------------------------------------------------------

    class Recorded(Aggregate.Created):
        TYPE: ClassVar[str] = "incident.recorded"
        PERSONAL: ClassVar[frozenset[str]] = frozenset(
            {"antecedents", "reason_detail", "force_description", "outcome", "de_escalation_notes"}
        )
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        incident_ref: str
        service_id: str
        person_id: str
        facts: IncidentFacts
        coverage: Coverage  # of the named authorisation, worked out when recorded
        antecedents: str | None = None
        reason_detail: str | None = None
        force_description: str | None = None  # UoF s.6(5)(f)
        outcome: str | None = None  # UoF s.6(5)(m)
        de_escalation_notes: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.incident_ref = self.incident_ref
            aggregate.service_id = self.service_id
            aggregate.person_id = self.person_id
            aggregate.facts = self.facts
            aggregate.coverage = self.coverage
            aggregate.fact_versions.add(self.originator_version)

    class ObservationRecorded(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.observation-recorded"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"notes"})
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        observed_at: Instant
        observer_staff_id: str
        pulse: int | None = None
        respiratory_rate: int | None = None
        spo2: int | None = None
        consciousness: str | None = None  # AVPU
        notes: str | None = None

    class SeclusionReviewed(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.seclusion-reviewed"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"rationale"})
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        review: SeclusionReview
        reviewed_at: Instant
        reviewers: tuple[str, ...]
        continue_seclusion: bool
        rationale: str | None = None

    class NotificationSent(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.notification-sent"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        recipient: Recipient
        sent_at: Instant
        channel: str
        sent_by: str

    class NotificationWithheld(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.notification-withheld"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"reason"})
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        recipient: Recipient
        decided_at: Instant
        approver_staff_id: str
        reason: str | None = None

    class DebriefHeld(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.debrief-held"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"persons_account", "learning"})
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        debrief_id: UUID
        debrief_type: DebriefType
        held_at: Instant
        facilitator: str
        participants: tuple[str, ...] = ()
        actions: tuple[Action, ...] = ()
        recommend_plan_revision: bool = False
        persons_account: str | None = None
        learning: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.debriefs[self.debrief_id] = self.debrief_type

    class DebriefDeclined(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.debrief-declined"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"reason"})
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        debrief_type: DebriefType
        declined_at: Instant
        offered_by: str
        reason: str | None = None

    class SignedOff(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.signed-off"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        signed_at: Instant
        spoke_to_staff_at: Instant | None = None  # Reg 35: registered person spoke to the user
        spoke_to_person_at: Instant | None = None  # Reg 35: … and to the child

        def apply(self, aggregate: Any) -> None:
            aggregate.signed_off = True

    class Corrected(Aggregate.Event):
        TYPE: ClassVar[str] = "incident.corrected"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        corrects_version: int
        reason: str
        facts: IncidentFacts  # the whole corrected set of facts
        coverage: Coverage
        changed: tuple[str, ...]

        def apply(self, aggregate: Any) -> None:
            aggregate.facts = self.facts
            aggregate.coverage = self.coverage
            aggregate.fact_versions.add(self.originator_version)

    # --- commands ------------------------------------------------------------------------

    @classmethod
    def record(
        cls,
        stream: UUID,
        incident_ref: str,
        service_id: str,
        person_id: str,
        facts: IncidentFacts,
        coverage: Coverage,
        profiles: tuple[Profile, ...],
        **narrative: str | None,
    ) -> Incident:
        check_facts(facts)
        check_statutory_items_present(profiles, facts, narrative)
        return cls._create(
            cls.Recorded,
            id=stream,
            incident_ref=incident_ref,
            service_id=service_id,
            person_id=person_id,
            facts=facts,
            coverage=coverage,
            **narrative,
        )

    def record_observation(self, observed_at: datetime, observer: str, **vitals: Any) -> None:
        self._check_not_before_start(observed_at, "an observation")
        self.trigger_event(
            self.ObservationRecorded,
            person_id=self.person_id,
            observed_at=observed_at,
            observer_staff_id=observer,
            **vitals,
        )

    def review_seclusion(
        self,
        review: SeclusionReview,
        at: datetime,
        reviewers: tuple[str, ...],
        continue_seclusion: bool,
        rationale: str | None,
    ) -> None:
        if not any(i.type.category is Category.SECLUSION for i in self._facts().interventions):
            raise RuleViolated("this incident has no seclusion to review")
        self._check_not_before_start(at, "a seclusion review")
        if not reviewers:
            raise RuleViolated("name who carried out the review")
        self.trigger_event(
            self.SeclusionReviewed,
            person_id=self.person_id,
            review=review,
            reviewed_at=at,
            reviewers=reviewers,
            continue_seclusion=continue_seclusion,
            rationale=rationale,
        )

    def notify(self, recipient: Recipient, sent_at: datetime, channel: str, sent_by: str) -> None:
        self._check_not_before_start(sent_at, "a notification")
        check_text(channel, "the channel (e.g. phone, email, letter)")
        self.trigger_event(
            self.NotificationSent,
            person_id=self.person_id,
            recipient=recipient,
            sent_at=sent_at,
            channel=channel,
            sent_by=sent_by,
        )

    def withhold_notification(
        self, recipient: Recipient, decided_at: datetime, approver: str, reason: str
    ) -> None:
        self._check_not_before_start(decided_at, "a decision to withhold a notification")
        check_text(reason, "the reason for withholding the notification")
        check_text(approver, "who approved withholding it")
        self.trigger_event(
            self.NotificationWithheld,
            person_id=self.person_id,
            recipient=recipient,
            decided_at=decided_at,
            approver_staff_id=approver,
            reason=reason,
        )

    def hold_debrief(
        self,
        debrief_id: UUID,
        debrief_type: DebriefType,
        held_at: datetime,
        facilitator: str,
        **details: Any,
    ) -> None:
        check_debrief_not_before_the_incident(self._facts(), held_at)
        check_text(facilitator, "the debrief's facilitator")
        self.trigger_event(
            self.DebriefHeld,
            person_id=self.person_id,
            debrief_id=debrief_id,
            debrief_type=debrief_type,
            held_at=held_at,
            facilitator=facilitator,
            **details,
        )

    def decline_debrief(
        self, debrief_type: DebriefType, at: datetime, offered_by: str, reason: str
    ) -> None:
        check_debrief_not_before_the_incident(self._facts(), at)
        check_text(reason, "the reason the debrief did not happen")
        self.trigger_event(
            self.DebriefDeclined,
            person_id=self.person_id,
            debrief_type=debrief_type,
            declined_at=at,
            offered_by=offered_by,
            reason=reason,
        )

    def sign_off(
        self, at: datetime, spoke_to_staff_at: datetime | None, spoke_to_person_at: datetime | None
    ) -> None:
        if self.signed_off:
            raise RuleViolated("this incident is already signed off")
        self._check_not_before_start(at, "a sign-off")
        self.trigger_event(
            self.SignedOff,
            person_id=self.person_id,
            signed_at=at,
            spoke_to_staff_at=spoke_to_staff_at,
            spoke_to_person_at=spoke_to_person_at,
        )

    def correct(
        self,
        corrects_version: int,
        reason: str,
        changes: dict[str, Any],
        coverage: Coverage | None = None,
    ) -> None:
        check_correction_names_what_and_why(self, corrects_version, reason, changes)
        facts = IncidentFacts.model_validate({**self._facts().model_dump(), **changes})
        check_facts(facts)
        self.trigger_event(
            self.Corrected,
            person_id=self.person_id,
            corrects_version=corrects_version,
            reason=reason,
            facts=facts,
            coverage=coverage or self.coverage,
            changed=tuple(sorted(changes)),
        )

    def _facts(self) -> IncidentFacts:
        if self.facts is None:
            raise AssertionError("incident without facts")
        return self.facts

    def _check_not_before_start(self, at: datetime, what: str) -> None:
        if at < self._facts().occurred_start:
            raise RuleViolated(f"{what} cannot be before the incident started")


def check_facts(facts: IncidentFacts) -> None:
    check_ends_after_start(facts.occurred_start, facts.occurred_end, "the incident")
    check_text(facts.place, "the place")
    if not facts.interventions:
        raise RuleViolated("an incident records at least one intervention")
    for i in facts.interventions:
        if i.start < facts.occurred_start or i.end > facts.occurred_end:
            raise RuleViolated(
                f"intervention {i.type.value} ({i.start.isoformat()} to {i.end.isoformat()}) falls"
                " outside the incident's start and end"
            )


def check_debrief_not_before_the_incident(facts: IncidentFacts, at: datetime) -> None:
    if at < facts.occurred_end:
        raise RuleViolated("a debrief cannot precede the end of the incident")


def check_correction_names_what_and_why(
    incident: Incident, corrects_version: int, reason: str, changes: dict[str, Any]
) -> None:
    check_text(reason, "the reason for the correction")
    if not changes:
        raise RuleViolated("a correction must change at least one field")
    unknown = set(changes) - CORRECTABLE
    if unknown:
        raise RuleViolated(
            f"cannot correct {sorted(unknown)}; correctable: {', '.join(sorted(CORRECTABLE))}"
        )
    if corrects_version not in incident.fact_versions:
        stated = ", ".join(str(v) for v in sorted(incident.fact_versions))
        raise RuleViolated(
            f"a correction must name the record or an earlier correction it corrects"
            f" (version {stated}), not version {corrects_version}"
        )
