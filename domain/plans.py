"""Behaviour support plans: the four prevention components, revised as the service learns.

Each revision records why: the incidents and debriefs that triggered it. That is the learning
loop boards and regulators look for.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from domain.errors import RuleViolated
from domain.events import Aggregate, Instant, Value, stream_id
from domain.guards import check_text
from domain.vocabulary import Position, Recipient


def plan_stream(person_id: str) -> Any:
    return stream_id("plan", person_id)


class Tertiary(Value):
    """The ordered hierarchy of approved responses, least restrictive first."""

    approved_techniques: tuple[str, ...]
    excluded_techniques: tuple[str, ...] = ()
    excluded_positions: tuple[Position, ...] = ()
    max_minutes: int | None = None


class PlanContent(Value):
    primary: tuple[str, ...]  # root causes, wellbeing, environment, routines, communication
    secondary: tuple[str, ...]  # early signs, triggers, preferred de-escalation
    tertiary: Tertiary
    recovery: tuple[str, ...]  # debrief preferences, restoring relationships
    co_produced_with: tuple[str, ...] = ()  # person, family, advocate …
    notify_after_force: tuple[Recipient, ...] = ()  # UoF s.6(5)(p)
    review_due: date


class RevisionReason(Value):
    incidents: tuple[UUID, ...] = ()
    debriefs: tuple[UUID, ...] = ()
    note: str


class BehaviourSupportPlan(Aggregate):
    KIND: ClassVar[str] = "plan"

    def __init__(self) -> None:
        self.person_id = ""
        self.revision = 0
        self.content: PlanContent | None = None
        self.last_changed: Any = None
        self.revision_incidents: set[UUID] = set()

    class Published(Aggregate.Created):
        TYPE: ClassVar[str] = "plan.published"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        content: PlanContent
        published_at: Instant

        def apply(self, aggregate: Any) -> None:
            aggregate.person_id = self.person_id
            aggregate.revision = 1
            aggregate.content = self.content
            aggregate.last_changed = self.published_at

    class Revised(Aggregate.Event):
        TYPE: ClassVar[str] = "plan.revised"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        revision: int
        content: PlanContent
        reason: RevisionReason
        revised_at: Instant

        def apply(self, aggregate: Any) -> None:
            aggregate.revision = self.revision
            aggregate.content = self.content
            aggregate.last_changed = self.revised_at
            aggregate.revision_incidents.update(self.reason.incidents)

    class Reviewed(Aggregate.Event):
        """Reviewed after an incident and kept unchanged, with the reviewer's rationale."""

        TYPE: ClassVar[str] = "plan.reviewed"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        reason: RevisionReason
        reviewed_at: Instant
        next_review_due: date

        def apply(self, aggregate: Any) -> None:
            aggregate.revision_incidents.update(self.reason.incidents)

    @classmethod
    def publish(cls, person_id: str, content: PlanContent, at: Any) -> BehaviourSupportPlan:
        check_plan_content(content)
        return cls._create(
            cls.Published,
            id=plan_stream(person_id),
            person_id=person_id,
            content=content,
            published_at=at,
        )

    def revise(self, content: PlanContent, reason: RevisionReason, at: Any) -> None:
        check_plan_content(content)
        check_text(reason.note, "the reason for the revision")
        if at < self.last_changed:
            raise RuleViolated("a revision cannot predate the plan's last change")
        self.trigger_event(
            self.Revised,
            person_id=self.person_id,
            revision=self.revision + 1,
            content=content,
            reason=reason,
            revised_at=at,
        )

    def review_unchanged(self, reason: RevisionReason, at: Any, next_review_due: date) -> None:
        check_text(reason.note, "the reviewer's rationale")
        self.trigger_event(
            self.Reviewed,
            person_id=self.person_id,
            reason=reason,
            reviewed_at=at,
            next_review_due=next_review_due,
        )


def check_plan_content(content: PlanContent) -> None:
    tertiary = content.tertiary
    overlap = set(tertiary.approved_techniques) & set(tertiary.excluded_techniques)
    if overlap:
        raise RuleViolated(f"techniques both approved and excluded: {sorted(overlap)}")
    if tertiary.max_minutes is not None and tertiary.max_minutes <= 0:
        raise RuleViolated("a maximum duration must be a positive number of minutes")
    if not (
        content.primary and content.secondary and tertiary.approved_techniques and content.recovery
    ):
        raise RuleViolated(
            "a behaviour support plan needs primary, secondary, tertiary (at least one approved"
            " technique) and recovery strategies"
        )
