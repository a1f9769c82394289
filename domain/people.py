"""People supported: a random pseudonymous id; identifying details sealed."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import RuleViolated
from domain.events import Aggregate
from domain.vocabulary import AgeBand

_PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$")


def person_stream(pseudonym: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"calm-ledger:person:{pseudonym}")


def check_pseudonym(pseudonym: str) -> None:
    if not _PSEUDONYM.match(pseudonym):
        raise RuleViolated(
            f"invalid person id {pseudonym!r}: 2-40 letters, digits, '-' or '_'"
            " (a pseudonym, never a name)"
        )


class Person(Aggregate):
    KIND: ClassVar[str] = "person"

    def __init__(self) -> None:
        self.pseudonym = ""
        self.service_id = ""
        self.age_band: AgeBand | None = None

    class Registered(Aggregate.Created):
        TYPE: ClassVar[str] = "person.registered"
        PERSONAL: ClassVar[frozenset[str]] = frozenset(
            {
                "full_name",
                "date_of_birth",
                "nhs_number",
                "mental_disorder",
                "protected_characteristics",
            }
        )
        SUBJECT_FIELD: ClassVar[str | None] = "pseudonym"
        INTRODUCES_SUBJECT: ClassVar[bool] = True
        SERVICE_FIELD: ClassVar[str | None] = "service_id"

        pseudonym: str
        service_id: str
        full_name: str | None = None  # UoF s.6(5)(e)
        date_of_birth: date | None = None
        nhs_number: str | None = None  # UoF s.6(5)(g): the consistent identifier
        mental_disorder: str | None = None  # UoF s.6(5)(j), if known
        protected_characteristics: str | None = None  # UoF s.6(5)(k), if known
        age_band: AgeBand | None = None  # for age-dependent rules, kept in clear
        learning_disability_or_autism: bool = False  # UoF s.6(5)(l)
        special_educational_needs: bool = False

        def apply(self, aggregate: Any) -> None:
            aggregate.pseudonym = self.pseudonym
            aggregate.service_id = self.service_id
            aggregate.age_band = self.age_band

    @classmethod
    def register(cls, pseudonym: str, service_id: str, **details: Any) -> Person:
        """Register a person; `details` are the optional fields of `Registered`."""
        check_pseudonym(pseudonym)
        name = details.get("full_name")
        if name is not None and not name.strip():
            raise RuleViolated("a name, if given, must not be blank")
        return cls._create(
            cls.Registered,
            id=person_stream(pseudonym),
            pseudonym=pseudonym,
            service_id=service_id,
            **details,
        )
