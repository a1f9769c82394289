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

_RECORDERS = frozenset({_L, _M, _R})
_LEADS = frozenset({_A, _L, _M})

PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "actor.enrolled": frozenset({_A, _G}),
    "actor.rekeyed": frozenset({_A}),
    "actor.revoked": frozenset({_A}),
    "subject.erased": frozenset({_A, _L}),
    "service.registered": frozenset({_A, _L}),
    "service.occupancy-recorded": _LEADS,
    "catalogue.published": frozenset({_A, _L}),
    "catalogue.revised": frozenset({_A, _L}),
    "person.registered": _LEADS,
    "staff.registered": _LEADS,
    "staff.training-recorded": _LEADS,
    "plan.published": frozenset({_L, _M}),
    "plan.revised": frozenset({_L, _M}),
    "plan.reviewed": frozenset({_L, _M}),
    "authorisation.granted": frozenset({_Q}),  # only an authoriser grants
    "authorisation.renewed": frozenset({_Q}),
    "authorisation.revoked": frozenset({_Q, _L}),
    "incident.recorded": _RECORDERS,
    "incident.observation-recorded": _RECORDERS,
    "incident.seclusion-reviewed": _RECORDERS,
    "incident.notification-sent": _RECORDERS,
    "incident.notification-withheld": frozenset({_L, _M}),  # a DSL or head decides
    "incident.debrief-held": _RECORDERS,
    "incident.debrief-declined": _RECORDERS,
    "incident.signed-off": frozenset({_M}),  # only a manager signs off
    "incident.corrected": _RECORDERS,
    "report.issued": _LEADS,  # admin, safeguarding lead, manager
    "schedule.added": frozenset({_A, _L}),
    "schedule.removed": frozenset({_A, _L}),
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
