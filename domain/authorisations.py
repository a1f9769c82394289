"""Authorisations: planned (in a plan), emergency, or time-limited orders, with a scope.

Whether an authorisation covers an intervention is a pure function of its state, the
intervention and the time (`coverage`), so recording never refuses a real event: an
intervention outside a valid authorisation is recorded as emergency use, and the compliance
rules raise a finding.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from domain.errors import RuleViolated
from domain.events import Aggregate, Instant, Value
from domain.guards import check_ends_after_start, check_text
from domain.vocabulary import POSITION_OF_TYPE, AuthorisationKind, InterventionType, Position


class Scope(Value):
    person_id: str
    techniques: tuple[str, ...] = ()  # empty: any technique of the listed types
    types: tuple[InterventionType, ...] = ()  # empty: any type
    excluded_positions: tuple[Position, ...] = ()
    max_minutes: int | None = None


class Coverage(StrEnum):
    """What an authorisation says about one intervention."""

    NONE = "none"  # no authorisation named: emergency use
    VALID = "valid"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    OUT_OF_SCOPE = "out-of-scope"
    NOT_FOUND = "not-found"


class Authorisation(Aggregate):
    KIND: ClassVar[str] = "authorisation"

    def __init__(self) -> None:
        self.authorisation_id = ""
        self.kind = AuthorisationKind.PLANNED
        self.scope: Scope | None = None
        self.valid_from: datetime | None = None
        self.valid_until: datetime | None = None
        self.revoked_at: datetime | None = None

    class Granted(Aggregate.Created):
        TYPE: ClassVar[str] = "authorisation.granted"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        authorisation_id: str
        kind: AuthorisationKind
        service_id: str
        person_id: str
        scope: Scope
        approver_staff_id: str
        approver_role: str  # e.g. responsible clinician, head teacher, registered manager
        valid_from: Instant
        valid_until: Instant
        conditions: str | None = None

        def apply(self, aggregate: Any) -> None:
            aggregate.authorisation_id = self.authorisation_id
            aggregate.kind = self.kind
            aggregate.scope = self.scope
            aggregate.valid_from = self.valid_from
            aggregate.valid_until = self.valid_until

    class Renewed(Aggregate.Event):
        TYPE: ClassVar[str] = "authorisation.renewed"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        valid_until: Instant
        assessment: str  # the face-to-face review or assessment it rests on

        def apply(self, aggregate: Any) -> None:
            aggregate.valid_until = self.valid_until

    class Revoked(Aggregate.Event):
        TYPE: ClassVar[str] = "authorisation.revoked"
        SUBJECT_FIELD: ClassVar[str | None] = "person_id"
        person_id: str
        revoked_at: Instant
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.revoked_at = self.revoked_at

    @classmethod
    def grant(
        cls,
        stream: Any,
        authorisation_id: str,
        kind: AuthorisationKind,
        service_id: str,
        scope: Scope,
        approver_staff_id: str,
        approver_role: str,
        valid_from: datetime,
        valid_until: datetime,
        conditions: str | None = None,
    ) -> Authorisation:
        check_ends_after_start(valid_from, valid_until, "the authorisation")
        if valid_from == valid_until:
            raise RuleViolated("an authorisation must be valid for some time")
        check_text(approver_role, "the approver's role")
        if scope.max_minutes is not None and scope.max_minutes <= 0:
            raise RuleViolated("a maximum duration must be a positive number of minutes")
        return cls._create(
            cls.Granted,
            id=stream,
            authorisation_id=authorisation_id,
            kind=kind,
            service_id=service_id,
            person_id=scope.person_id,
            scope=scope,
            approver_staff_id=approver_staff_id,
            approver_role=approver_role,
            valid_from=valid_from,
            valid_until=valid_until,
            conditions=conditions,
        )

    def renew(self, valid_until: datetime, assessment: str) -> None:
        self._check_not_revoked()
        check_text(assessment, "the assessment the renewal rests on")
        if self.valid_until is not None and valid_until <= self.valid_until:
            raise RuleViolated("a renewal must extend the authorisation")
        self.trigger_event(
            self.Renewed, person_id=self._person(), valid_until=valid_until, assessment=assessment
        )

    def revoke(self, at: datetime, reason: str) -> None:
        self._check_not_revoked()
        check_text(reason, "a reason for revoking")
        self.trigger_event(self.Revoked, person_id=self._person(), revoked_at=at, reason=reason)

    def coverage(
        self,
        person_id: str,
        technique: str | None,
        kind: InterventionType,
        position: Position | None,
        start: datetime,
        minutes: float,
    ) -> Coverage:
        """Does this authorisation cover that intervention at that time?"""
        scope = self.scope
        if scope is None or self.valid_from is None or self.valid_until is None:
            raise AssertionError("coverage asked of an authorisation never granted")
        if self.revoked_at is not None and self.revoked_at <= start:
            return Coverage.REVOKED
        if start < self.valid_from:
            return Coverage.NOT_YET_VALID
        if start > self.valid_until:
            return Coverage.EXPIRED
        # the recorded position and the one the type implies (a type-01 restraint is prone)
        positions = {p for p in (position, POSITION_OF_TYPE.get(kind)) if p is not None}
        in_scope = (
            scope.person_id == person_id
            and (not scope.techniques or technique in scope.techniques)
            and (not scope.types or kind in scope.types)
            and positions.isdisjoint(scope.excluded_positions)
            and (scope.max_minutes is None or minutes <= scope.max_minutes)
        )
        return Coverage.VALID if in_scope else Coverage.OUT_OF_SCOPE

    def _check_not_revoked(self) -> None:
        if self.revoked_at is not None:
            raise RuleViolated(f"authorisation {self.authorisation_id} was revoked")

    def _person(self) -> str:
        return self.scope.person_id if self.scope else ""
