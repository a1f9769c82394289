"""Domain errors: a broken rule or a refused permission, each with a human message.

The ledger's error tree (`ledger.errors`) extends `DomainError`, so the CLI maps one tree.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can be shown; exit code 2 unless a subclass says otherwise."""

    exit_code = 2

    def diagnostics(self) -> str:
        return str(self)


class RuleViolated(DomainError):
    """A command would break an invariant of an aggregate (a named guard refused it)."""


class PermissionDenied(DomainError):
    """The actor's roles may not sign this event type, or the actor is revoked."""


class InvalidValue(DomainError):
    """A value outside its vocabulary (an unknown role, code or technique)."""
