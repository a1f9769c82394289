"""Staff members: job title and training records (what they are certified to use, until when)."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.events import Aggregate, Value, stream_id
from domain.guards import check_ends_after_start, check_slug, check_text


def staff_stream(staff_id: str) -> Any:
    return stream_id("staff", staff_id)


class Training(Value):
    course: str
    curriculum: str  # e.g. "CALM Core Theory", "CALM Physical Skills"
    techniques: tuple[str, ...] = ()  # technique ids certified
    completed_on: date
    valid_until: date
    provider: str
    certificate: str | None = None  # provider certification (e.g. Bild ACT / RRN) reference


class StaffMember(Aggregate):
    KIND: ClassVar[str] = "staff"

    def __init__(self) -> None:
        self.staff_id = ""
        self.service_id = ""
        self.job_title = ""
        self.training: list[Training] = []

    class Registered(Aggregate.Created):
        TYPE: ClassVar[str] = "staff.registered"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"full_name"})
        SUBJECT_FIELD: ClassVar[str | None] = "staff_id"
        INTRODUCES_SUBJECT: ClassVar[bool] = True
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        staff_id: str
        service_id: str
        job_title: str
        full_name: str | None = None  # UoF s.6(5)(h): name and job title of staff using force

        def apply(self, aggregate: Any) -> None:
            aggregate.staff_id = self.staff_id
            aggregate.service_id = self.service_id
            aggregate.job_title = self.job_title

    class TrainingRecorded(Aggregate.Event):
        TYPE: ClassVar[str] = "staff.training-recorded"
        SUBJECT_FIELD: ClassVar[str | None] = "staff_id"
        staff_id: str
        training: Training

        def apply(self, aggregate: Any) -> None:
            aggregate.training.append(self.training)

    @classmethod
    def register(
        cls, staff_id: str, service_id: str, job_title: str, full_name: str | None
    ) -> StaffMember:
        check_slug(staff_id, "staff id")
        check_text(job_title, "a job title")
        return cls._create(
            cls.Registered,
            id=staff_stream(staff_id),
            staff_id=staff_id,
            service_id=service_id,
            job_title=job_title,
            full_name=full_name,
        )

    def record_training(self, training: Training) -> None:
        check_text(training.course, "a course name")
        check_ends_after_start(training.completed_on, training.valid_until, "the certification")
        self.trigger_event(self.TrainingRecorded, staff_id=self.staff_id, training=training)

    def certified_for(self, technique_id: str, on: date) -> bool:
        """Whether a current training record covers this technique on this date."""
        return any(
            technique_id in t.techniques and t.completed_on <= on <= t.valid_until
            for t in self.training
        )
