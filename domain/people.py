"""People supported: a random pseudonymous id; identifying details sealed."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import RuleViolated
from domain.events import Aggregate

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

    class Registered(Aggregate.Created):
        TYPE: ClassVar[str] = "person.registered"
        PERSONAL: ClassVar[frozenset[str]] = frozenset({"full_name", "date_of_birth"})
        SUBJECT_FIELD: ClassVar[str | None] = "pseudonym"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"

        pseudonym: str
        service_id: str
        full_name: str | None = None
        date_of_birth: date | None = None
        learning_disability_or_autism: bool = False

        def apply(self, aggregate: Any) -> None:
            aggregate.pseudonym = self.pseudonym
            aggregate.service_id = self.service_id

    @classmethod
    def register(
        cls,
        pseudonym: str,
        service_id: str,
        *,
        full_name: str | None,
        date_of_birth: date | None,
        learning_disability_or_autism: bool,
    ) -> Person:
        check_pseudonym(pseudonym)
        if full_name is not None and not full_name.strip():
            raise RuleViolated("a name, if given, must not be blank")
        return cls._create(
            cls.Registered,
            id=person_stream(pseudonym),
            pseudonym=pseudonym,
            service_id=service_id,
            full_name=full_name,
            date_of_birth=date_of_birth,
            learning_disability_or_autism=learning_disability_or_autism,
        )
