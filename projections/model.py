"""The projected state: plain, immutable views of what the log says, as of some leaf.

Metrics, SPC, compliance rules and reports are pure functions of a `State`, so the same
numbers come out whether the state was folded from a live ledger, from read tables, or from a
regulator's export bundle.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime

from domain.vocabulary import (
    AgeBand,
    AuthorisationKind,
    DebriefType,
    InterventionType,
    Position,
    Profile,
    Reason,
    Recipient,
    SeclusionReview,
    Setting,
    Severity,
)


@dataclass(frozen=True)
class ServiceView:
    service_id: str
    name: str
    setting: Setting
    profiles: tuple[Profile, ...]


@dataclass(frozen=True)
class OccupancyView:
    service_id: str
    start: date
    end: date  # inclusive
    person_days: int


@dataclass(frozen=True)
class PersonView:
    person_id: str
    service_id: str
    age_band: AgeBand | None
    learning_disability_or_autism: bool


@dataclass(frozen=True)
class TrainingView:
    staff_id: str
    course: str
    techniques: tuple[str, ...]
    completed_on: date
    valid_until: date


@dataclass(frozen=True)
class StaffView:
    staff_id: str
    service_id: str
    job_title: str
    training: tuple[TrainingView, ...] = ()


@dataclass(frozen=True)
class InterventionView:
    type: InterventionType
    technique_id: str | None
    position: Position | None
    start: datetime
    end: datetime
    staff_count: int
    staff: tuple[str, ...]

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    @property
    def is_prone(self) -> bool:
        return self.type is InterventionType.PRONE or self.position is Position.PRONE


@dataclass(frozen=True)
class InjuryView:
    person: str  # subject | staff | other
    severity: Severity


@dataclass(frozen=True)
class DebriefView:
    debrief_type: DebriefType
    at: datetime
    held: bool  # False: offered and declined
    recommend_plan_revision: bool = False


@dataclass(frozen=True)
class NotificationView:
    recipient: Recipient
    at: datetime
    withheld: bool


@dataclass(frozen=True)
class SeclusionReviewView:
    review: SeclusionReview
    at: datetime
    continue_seclusion: bool


@dataclass(frozen=True)
class IncidentView:
    """One incident with its corrections applied and its follow-up so far."""

    ref: str
    stream: str
    service_id: str
    person_id: str
    place: str
    start: datetime
    end: datetime
    reason: Reason
    interventions: tuple[InterventionView, ...]
    injuries: tuple[InjuryView, ...]
    non_staff: tuple[str, ...]  # agencies, e.g. police
    de_escalation: tuple[str, ...]
    part_of_care_plan: bool
    authorisation_id: str | None
    coverage: str  # domain.authorisations.Coverage value
    recorded_at: datetime  # when the record was signed (late recording is a fact too)
    recorded_by: str
    debriefs: tuple[DebriefView, ...] = ()
    notifications: tuple[NotificationView, ...] = ()
    seclusion_reviews: tuple[SeclusionReviewView, ...] = ()
    observations: tuple[datetime, ...] = ()
    signed_off_at: datetime | None = None
    spoke_to_staff_at: datetime | None = None
    spoke_to_person_at: datetime | None = None
    corrections: int = 0

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    @property
    def planned(self) -> bool:
        """Planned use: in the person's plan under a valid authorisation; otherwise emergency."""
        return self.coverage == "valid"

    @property
    def prone(self) -> bool:
        return any(i.is_prone for i in self.interventions)

    @property
    def prone_minutes(self) -> float:
        return sum(i.minutes for i in self.interventions if i.is_prone)

    @property
    def serious_injury(self) -> bool:
        return any(i.severity in (Severity.SERIOUS, Severity.DEATH) for i in self.injuries)


@dataclass(frozen=True)
class PlanChangeView:
    at: datetime
    revision: int | None  # None: reviewed without change
    incidents: tuple[str, ...]  # incident streams named as the reason


@dataclass(frozen=True)
class PlanView:
    person_id: str
    revision: int
    published_at: datetime
    review_due: date
    approved_techniques: tuple[str, ...]
    excluded_techniques: tuple[str, ...]
    excluded_positions: tuple[Position, ...]
    max_minutes: int | None
    changes: tuple[PlanChangeView, ...] = ()


@dataclass(frozen=True)
class AuthorisationView:
    ref: str
    kind: AuthorisationKind
    service_id: str
    person_id: str
    valid_from: datetime
    valid_until: datetime
    revoked_at: datetime | None = None


@dataclass
class State:
    """Everything the projections know, keyed for lookup.

    The mappings are plain dicts in memory, or lazily loaded, write-tracked views of the read
    tables during a catch-up (`projections.readstore`); the fold treats both alike.
    """

    services: MutableMapping[str, ServiceView] = field(default_factory=dict)
    occupancy: MutableMapping[str, OccupancyView] = field(default_factory=dict)
    people: MutableMapping[str, PersonView] = field(default_factory=dict)
    staff: MutableMapping[str, StaffView] = field(default_factory=dict)
    incidents: MutableMapping[str, IncidentView] = field(default_factory=dict)  # by ref
    plans: MutableMapping[str, PlanView] = field(default_factory=dict)  # by person
    authorisations: MutableMapping[str, AuthorisationView] = field(default_factory=dict)
    erased_subjects: MutableMapping[str, bool] = field(default_factory=dict)
    incident_streams: MutableMapping[str, str] = field(default_factory=dict)  # stream → ref
    authorisation_streams: MutableMapping[str, str] = field(default_factory=dict)
    size: int = 0  # leaves folded so far

    def incidents_of(self, service_id: str | None = None) -> list[IncidentView]:
        found = self.incidents.values()
        return sorted(
            (i for i in found if service_id is None or i.service_id == service_id),
            key=lambda i: (i.start, i.ref),
        )


def occupancy_key(service_id: str, start: date, end: date) -> str:
    return f"{service_id}|{start.isoformat()}|{end.isoformat()}"
