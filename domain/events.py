"""The base of every domain event and aggregate, and the registry of stable type names.

Events are frozen pydantic models: immutable facts, validated on construction and again when
read back from the log. Each concrete event class declares a stable `TYPE` name (never a Python
path) and a `SCHEMA` version, which the envelope carries; `PERSONAL` names the fields that hold
personal data, which the ledger seals under the data key of the subject named by
`SUBJECT_FIELD`.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import AfterValidator, BaseModel, ConfigDict


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time must carry its UTC offset (e.g. 2026-10-05T14:30:00Z)")
    return value.astimezone(UTC)


Instant = Annotated[datetime, AfterValidator(_utc)]
"""A point in time, always stored in UTC; naive times are refused."""


class Clock:
    """When events are recorded. The wall clock, except where a simulation (the demo, tests
    of late recording) sets the time explicitly."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)


clock = Clock()


class Value(BaseModel):
    """An immutable value object inside an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@functools.lru_cache(maxsize=16_384)  # a bulk import names the same people and staff per row
def stream_id(kind: str, key: str) -> UUID:
    """The stream of the aggregate of `kind` known to people by `key` (a slug or pseudonym)."""
    return uuid5(NAMESPACE_URL, f"calm-ledger:{kind}:{key}")


_REGISTRY: dict[str, type[DomainEvent]] = {}
_AGGREGATES: dict[str, type[Aggregate]] = {}


class DomainEvent(BaseModel):
    """An immutable fact about one aggregate, at one version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    originator_id: UUID
    originator_version: int
    timestamp: datetime

    TYPE: ClassVar[str] = ""
    SCHEMA: ClassVar[int] = 1
    PERSONAL: ClassVar[frozenset[str]] = frozenset()
    SUBJECT_FIELD: ClassVar[str | None] = None
    SERVICE_FIELD: ClassVar[str | None] = None
    # True when the event registers its subject (a new person or staff member): nothing can
    # be stored about that subject before it, so a writer need not look it up first.
    INTRODUCES_SUBJECT: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Called once pydantic has built the fields, so PERSONAL can be checked against them.
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("TYPE"):
            _register(cls)

    def scope_subject(self) -> str | None:
        """The pseudonymous id of the person this event is about, if any."""
        return _str_field(self, self.SUBJECT_FIELD)

    def scope_service(self) -> str | None:
        """The service this event belongs to, if any (an export's scope)."""
        return _str_field(self, self.SERVICE_FIELD)


def _str_field(event: DomainEvent, name: str | None) -> str | None:
    value = getattr(event, name) if name else None
    return None if value is None else str(value)


def _register(cls: type[DomainEvent]) -> None:
    existing = _REGISTRY.get(cls.TYPE)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise TypeError(f"event type {cls.TYPE!r} is declared twice")
    if "." not in cls.TYPE:
        raise TypeError(f"event type {cls.TYPE!r} must be 'aggregate.past-tense-name'")
    unknown = cls.PERSONAL - set(cls.model_fields)
    if unknown:
        raise TypeError(f"{cls.__name__}.PERSONAL names unknown fields {sorted(unknown)}")
    for name in cls.PERSONAL:
        if cls.model_fields[name].is_required():
            # An erased subject's sealed fields read back as None.
            raise TypeError(f"personal field {cls.__name__}.{name} must default to None")
    _REGISTRY[cls.TYPE] = cls


def event_class(type_name: str) -> type[DomainEvent]:
    """The event class for a stable type name; KeyError if unknown."""
    return _REGISTRY[type_name]


def event_types() -> frozenset[str]:
    return frozenset(_REGISTRY)


def aggregate_class(type_name: str) -> type[Aggregate]:
    """The aggregate whose events carry this type name (`KIND.event-name`)."""
    return _AGGREGATES[type_name.partition(".")[0]]


class Aggregate(BaseAggregate[UUID]):
    """Base aggregate: explicit event classes, guards in command methods, `apply` evolves.

    Subclasses set `KIND`, the stable prefix of their events' type names, so a stream can
    be rebuilt from the log without any Python path stored in it.
    """

    KIND: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("KIND"):
            _AGGREGATES[cls.KIND] = cls

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()

        def apply(self, aggregate: Any) -> None:
            """Evolve the aggregate's state; overridden by events that change it."""

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str
