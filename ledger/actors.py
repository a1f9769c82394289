"""Actors: the people (and the log key) who sign events, enrolled, re-keyed and revoked by
signed events of their own."""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import RuleViolated
from domain.events import Aggregate
from domain.roles import Role
from ledger.config import LOG_ACTOR as LOG_ACTOR  # there, so reading needs no models

_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")


@functools.lru_cache(maxsize=1024)  # every append names its signer's stream
def actor_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"calm-ledger:actor:{name}")


def check_actor_name(name: str) -> None:
    if not _NAME.match(name):
        raise RuleViolated(
            f"invalid actor name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter"
        )


class Actor(Aggregate):
    """A signer: its roles and its current Ed25519 public key."""

    KIND: ClassVar[str] = "actor"

    def __init__(self) -> None:
        # State is set by the events' apply(); no annotations here, because the library
        # would turn annotated attributes into constructor arguments.
        self.name = ""
        self.roles: tuple[Role, ...] = ()
        self.public_key = ""
        self.key_id = ""
        self.revoked = False

    class Enrolled(Aggregate.Created):
        TYPE: ClassVar[str] = "actor.enrolled"
        name: str
        roles: tuple[Role, ...]
        public_key: str  # base64 of the raw 32-byte Ed25519 public key
        key_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name
            aggregate.roles = self.roles
            aggregate.public_key = self.public_key
            aggregate.key_id = self.key_id
            aggregate.revoked = False

    class Rekeyed(Aggregate.Event):
        TYPE: ClassVar[str] = "actor.rekeyed"
        public_key: str
        key_id: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.public_key = self.public_key
            aggregate.key_id = self.key_id

    class Revoked(Aggregate.Event):
        TYPE: ClassVar[str] = "actor.revoked"
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.revoked = True

    @classmethod
    def enrol(cls, name: str, roles: tuple[Role, ...], public_key: str, key_id: str) -> Actor:
        check_actor_name(name)
        if name == LOG_ACTOR:
            raise RuleViolated(f"the name {LOG_ACTOR!r} is reserved for the log key")
        if not roles:
            raise RuleViolated("an actor needs at least one role")
        if Role.LOG in roles:
            raise RuleViolated("the 'log' role belongs to the log key alone")
        return cls._create(
            cls.Enrolled,
            id=actor_id(name),
            name=name,
            roles=tuple(sorted(set(roles))),
            public_key=public_key,
            key_id=key_id,
        )

    def rekey(self, public_key: str, key_id: str, reason: str) -> None:
        self._check_not_revoked()
        if key_id == self.key_id:
            raise RuleViolated(f"actor {self.name!r} already uses key {key_id}")
        _check_reason(reason)
        self.trigger_event(self.Rekeyed, public_key=public_key, key_id=key_id, reason=reason)

    def revoke(self, reason: str) -> None:
        self._check_not_revoked()
        _check_reason(reason)
        self.trigger_event(self.Revoked, reason=reason)

    def _check_not_revoked(self) -> None:
        if self.revoked:
            raise RuleViolated(f"actor {self.name!r} is revoked")


def _check_reason(reason: str) -> None:
    if not reason.strip():
        raise RuleViolated("a reason is required")
