"""Erasure of a subject's personal data by crypto-shredding: the data key is destroyed and a
signed `subject.erased` event records who did it and why. No signed byte changes."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import RuleViolated
from domain.events import Aggregate


def erasure_id(subject: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"calm-ledger:subject:{subject}")


class SubjectErasure(Aggregate):
    KIND: ClassVar[str] = "subject"

    def __init__(self) -> None:
        self.subject = ""

    class Erased(Aggregate.Created):
        TYPE: ClassVar[str] = "subject.erased"
        SUBJECT_FIELD: ClassVar[str | None] = "subject"
        subject: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.subject = self.subject

    @classmethod
    def erase(cls, subject: str, reason: str) -> SubjectErasure:
        if not subject.strip():
            raise RuleViolated("name the subject to erase")
        if not reason.strip():
            raise RuleViolated("a reason for the erasure is required")
        return cls._create(cls.Erased, id=erasure_id(subject), subject=subject, reason=reason)
