"""Services (settings): type, jurisdiction profiles, and occupancy — the denominator of rates."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.errors import RuleViolated
from domain.events import Aggregate, stream_id
from domain.guards import check_ends_after_start, check_slug, check_text
from domain.vocabulary import Profile, Setting


def service_stream(service_id: str) -> Any:
    return stream_id("service", service_id)


class Service(Aggregate):
    KIND: ClassVar[str] = "service"

    def __init__(self) -> None:
        self.service_id = ""
        self.name = ""
        self.setting = Setting.SCHOOL
        self.profiles: tuple[Profile, ...] = ()
        self.occupancy: dict[tuple[date, date], int] = {}

    class Registered(Aggregate.Created):
        TYPE: ClassVar[str] = "service.registered"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        service_id: str
        name: str
        setting: Setting
        profiles: tuple[Profile, ...]

        def apply(self, aggregate: Any) -> None:
            aggregate.service_id = self.service_id
            aggregate.name = self.name
            aggregate.setting = self.setting
            aggregate.profiles = self.profiles

    class OccupancyRecorded(Aggregate.Event):
        """Person-days (occupied bed days or pupil days) in a period; a later record for the
        same period replaces the earlier one."""

        TYPE: ClassVar[str] = "service.occupancy-recorded"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        service_id: str
        period_start: date
        period_end: date
        person_days: int

        def apply(self, aggregate: Any) -> None:
            aggregate.occupancy[(self.period_start, self.period_end)] = self.person_days

    @classmethod
    def register(
        cls, service_id: str, name: str, setting: Setting, profiles: tuple[Profile, ...]
    ) -> Service:
        check_slug(service_id, "service id")
        check_text(name, "a service name")
        if not profiles:
            raise RuleViolated("a service needs at least one jurisdiction profile")
        return cls._create(
            cls.Registered,
            id=service_stream(service_id),
            service_id=service_id,
            name=name,
            setting=setting,
            profiles=tuple(dict.fromkeys(profiles)),
        )

    def record_occupancy(self, period_start: date, period_end: date, person_days: int) -> None:
        check_ends_after_start(period_start, period_end, "the occupancy period")
        days = (period_end - period_start).days + 1
        if person_days < 0:
            raise RuleViolated("person-days cannot be negative")
        if days > 366:
            raise RuleViolated("record occupancy per month or per year at most")
        self.trigger_event(
            self.OccupancyRecorded,
            service_id=self.service_id,
            period_start=period_start,
            period_end=period_end,
            person_days=person_days,
        )
