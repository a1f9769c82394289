"""The organisation's technique catalogue: approved responses ranked by restrictiveness.

Organisation-configurable data (published as a signed event); the default below follows a
CALM-style hierarchy: non-physical → disengagement → one-, two- and three-person holds.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any, ClassVar

from pydantic import ValidationError

from domain.errors import RuleViolated
from domain.events import Aggregate, Value, stream_id
from domain.guards import check_slug, check_text
from domain.vocabulary import InterventionType, Position

CATALOGUE_KEY = "organisation"


class Technique(Value):
    technique_id: str
    name: str
    rank: int  # restrictiveness: 0 = non-physical, higher = more restrictive
    staff_required: int  # 0 for non-physical, then one-, two- or three-person
    types: tuple[InterventionType, ...] = ()  # the intervention types it is recorded as
    positions: tuple[Position, ...] = ()
    curriculum: str = ""


def catalogue_stream() -> Any:
    return stream_id("catalogue", CATALOGUE_KEY)


class TechniqueCatalogue(Aggregate):
    KIND: ClassVar[str] = "catalogue"

    def __init__(self) -> None:
        self.version = 0
        self.techniques: dict[str, Technique] = {}

    class Published(Aggregate.Created):
        TYPE: ClassVar[str] = "catalogue.published"
        techniques: tuple[Technique, ...]

        def apply(self, aggregate: Any) -> None:
            aggregate.techniques = {t.technique_id: t for t in self.techniques}

    class Revised(Aggregate.Event):
        TYPE: ClassVar[str] = "catalogue.revised"
        techniques: tuple[Technique, ...]
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.techniques = {t.technique_id: t for t in self.techniques}

    @classmethod
    def publish(cls, techniques: tuple[Technique, ...]) -> TechniqueCatalogue:
        check_catalogue(techniques)
        return cls._create(cls.Published, id=catalogue_stream(), techniques=techniques)

    def revise(self, techniques: tuple[Technique, ...], reason: str) -> None:
        check_catalogue(techniques)
        check_text(reason, "a reason for revising the catalogue")
        self.trigger_event(self.Revised, techniques=techniques, reason=reason)

    def technique(self, technique_id: str) -> Technique:
        try:
            return self.techniques[technique_id]
        except KeyError:
            known = ", ".join(sorted(self.techniques))
            raise RuleViolated(
                f"unknown technique {technique_id!r} (the catalogue has: {known})"
            ) from None


def check_catalogue(techniques: tuple[Technique, ...]) -> None:
    if not techniques:
        raise RuleViolated("a technique catalogue needs at least one technique")
    ids = [t.technique_id for t in techniques]
    if len(set(ids)) != len(ids):
        raise RuleViolated("technique ids must be unique")
    for t in techniques:
        check_slug(t.technique_id, "technique id")
        if not 0 <= t.staff_required <= 3:
            raise RuleViolated(f"technique {t.technique_id!r}: staff_required must be 0-3")
        if t.rank < 0:
            raise RuleViolated(f"technique {t.technique_id!r}: rank cannot be negative")


def parse_catalogue(text: str) -> tuple[Technique, ...]:
    """Techniques from TOML: [[technique]] tables with the fields of `Technique`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleViolated(f"technique catalogue is not valid TOML: {e}") from None
    entries = raw.get("technique")
    if not isinstance(entries, list):
        raise RuleViolated("technique catalogue needs [[technique]] tables")
    parsed = []
    for n, entry in enumerate(entries, 1):
        try:
            parsed.append(Technique.model_validate(entry))
        except ValidationError as e:
            problem = e.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "entry"
            message = f"technique catalogue entry {n}: {where}: {problem['msg']}"
            raise RuleViolated(message) from None
    techniques = tuple(parsed)
    check_catalogue(techniques)
    return techniques


def default_catalogue() -> tuple[Technique, ...]:
    text = resources.files("domain").joinpath("data/techniques.toml").read_text()
    return parse_catalogue(text)
