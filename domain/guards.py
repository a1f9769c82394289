"""Small shared guards; each raises RuleViolated with a message a person can act on."""

from __future__ import annotations

import re
from datetime import date, datetime

from domain.errors import RuleViolated

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_slug(value: str, what: str) -> None:
    if not _SLUG.match(value):
        raise RuleViolated(
            f"invalid {what} {value!r}: 1-64 letters, digits, '.', '_' or '-', starting with a"
            " letter or digit"
        )


def check_text(value: str, what: str) -> None:
    if not value or not value.strip():
        raise RuleViolated(f"{what} is required")


def check_ends_after_start(start: datetime | date, end: datetime | date, what: str) -> None:
    if end < start:
        raise RuleViolated(
            f"{what} ends ({end.isoformat()}) before it starts ({start.isoformat()})"
        )
