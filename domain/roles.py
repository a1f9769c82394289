"""Roles and the role → event-type permission matrix.

The application service checks it before writing; every verifier checks it again from the log
alone, with the roles the signer held at that point of the log. Unknown event types are denied
(fail closed): a new event type is signable only once it is added here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from domain.errors import InvalidValue, PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"  # enrols, re-keys and revokes actors; registers services
    SAFEGUARDING_LEAD = "safeguarding-lead"  # records and reviews everything
    MANAGER = "manager"  # signs off incidents
    AUTHORISER = "authoriser"  # grants, renews and revokes authorisations
    RECORDER = "recorder"  # front-line staff: records incidents and their follow-up
    LOG = "log"  # the organisation's log key: only bootstraps the first admin


_A, _L, _M, _Q, _R, _G = (
    Role.ADMIN,
    Role.SAFEGUARDING_LEAD,
    Role.MANAGER,
    Role.AUTHORISER,
    Role.RECORDER,
    Role.LOG,
)

PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "actor.enrolled": frozenset({_A, _G}),
    "actor.rekeyed": frozenset({_A}),
    "actor.revoked": frozenset({_A}),
    "subject.erased": frozenset({_A, _L}),
    "person.registered": frozenset({_A, _L, _M}),
}


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        known = ", ".join(r.value for r in Role if r is not Role.LOG)
        raise InvalidValue(f"unknown role {text!r} (known roles: {known})") from None


def may_sign(roles: Iterable[Role], event_type: str) -> bool:
    return not PERMISSIONS.get(event_type, frozenset()).isdisjoint(roles)


def check_may_sign(actor: str, roles: Iterable[Role], event_type: str) -> None:
    """Raise PermissionDenied unless one of the roles may sign this event type."""
    held = frozenset(roles)
    if not may_sign(held, event_type):
        names = ", ".join(sorted(held)) or "no roles"
        raise PermissionDenied(f"actor {actor!r} ({names}) may not sign {event_type!r} events")
