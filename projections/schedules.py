"""Report periods and when scheduled reports fall due (pure; the clock is a parameter).

A schedule names a cron expression (UTC) and a period kind. The report for a period falls due
at the first cron time at or after the period has ended (midnight UTC after its last day): a
monthly "0 7 1 * *" schedule issues September's report at 07:00 on 1 October. `due_periods`
lists every period that has fallen due by `now` and ended after the schedule's `since`, so a
run after the machine was off catches up every period it missed — and never reaches a period
that has not ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain.reports import PeriodKind
from ledger.errors import ValidationError


@dataclass(frozen=True)
class Period:
    kind: PeriodKind | None  # None: an arbitrary range
    start: date
    end: date  # inclusive
    label: str

    @property
    def ends_at(self) -> datetime:
        """The instant the period is over: midnight UTC after its last day."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)


# --- periods ---------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> Period:
    """`2026-10` (a month), `2026-W41` (an ISO week), `2026-Q4` or `2026`."""
    try:
        if m := _MONTH.match(text):
            return period_of(date(int(m[1]), int(m[2]), 1), PeriodKind.MONTH)
        if m := _WEEK.match(text):
            return period_of(date.fromisocalendar(int(m[1]), int(m[2]), 1), PeriodKind.WEEK)
        if m := _QUARTER.match(text):
            return period_of(date(int(m[1]), 3 * int(m[2]) - 2, 1), PeriodKind.QUARTER)
        if m := _YEAR.match(text):
            return period_of(date(int(m[1]), 1, 1), PeriodKind.YEAR)
    except ValueError:
        pass
    raise ValidationError(
        f"invalid --period {text!r}: use a month (2026-10), an ISO week (2026-W41),"
        " a quarter (2026-Q4) or a year (2026)"
    )


def range_period(start: date, end: date) -> Period:
    if end < start:
        raise ValidationError(f"--to ({end}) is before --from ({start})")
    return Period(None, start, end, f"{start.isoformat()}..{end.isoformat()}")


def period_of(day: date, kind: PeriodKind) -> Period:
    """The period of `kind` that contains `day`."""
    if kind is PeriodKind.WEEK:
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        return Period(kind, start, start + timedelta(days=6), f"{iso.year}-W{iso.week:02d}")
    if kind is PeriodKind.MONTH:
        start = day.replace(day=1)
        return Period(kind, start, add_months(start, 1) - timedelta(days=1), f"{day:%Y-%m}")
    if kind is PeriodKind.QUARTER:
        start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        label = f"{day.year}-Q{(day.month - 1) // 3 + 1}"
        return Period(kind, start, add_months(start, 3) - timedelta(days=1), label)
    start = date(day.year, 1, 1)
    return Period(kind, start, date(day.year, 12, 31), str(day.year))


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def default_baseline(start: date, first_data: date | None) -> tuple[date, date] | None:
    """The 12 whole months before the period's month, from the first month with data."""
    month = start.replace(day=1)
    first = add_months(month, -12)
    if first_data is not None:
        first = max(first, first_data.replace(day=1))
    last = month - timedelta(days=1)
    if first_data is None or first > last:
        return None
    return first, last


# --- cron --------------------------------------------------------------------------------------


def check_cron(expression: str) -> str:
    """A valid 5-field cron expression (minute hour day-of-month month day-of-week), in the
    single-spaced form stored in the ledger."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 5 or not croniter.is_valid(" ".join(fields)):
        raise ValidationError(
            f"invalid cron expression {expression!r}: use 5 fields, minute hour day-of-month"
            ' month day-of-week, e.g. "0 7 1 * *" (07:00 UTC on the 1st of each month)'
        )
    normal = " ".join(fields)
    next_fire(normal, datetime(2000, 1, 1, tzinfo=UTC))  # a date that never comes is refused
    return normal


def infer_period(expression: str) -> PeriodKind | None:
    """The period a cron expression plainly reports on, if it is plain: monthly on one day
    → month; weekly on one weekday → week; on one day of January/April/July/October →
    quarter; on one day of one month → year."""
    _minute, _hour, dom, month, dow = expression.split()
    single = re.compile(r"^\d+$")
    if single.match(dom) and month == "*" and dow == "*":
        return PeriodKind.MONTH
    if dom == "*" and month == "*" and (single.match(dow) or dow.isalpha()):
        return PeriodKind.WEEK
    if single.match(dom) and month in ("1,4,7,10", "*/3", "1-12/3") and dow == "*":
        return PeriodKind.QUARTER
    if single.match(dom) and single.match(month) and dow == "*":
        return PeriodKind.YEAR
    return None


def next_fire(expression: str, at_or_after: datetime) -> datetime:
    """The first time the cron expression fires at or after `at_or_after` (UTC)."""
    from croniter import CroniterBadDateError, croniter

    start = at_or_after.astimezone(UTC) - timedelta(seconds=1)
    try:
        fired: Any = croniter(expression, start).get_next(datetime)
    except CroniterBadDateError:
        raise ValidationError(
            f"cron expression {expression!r} never fires (e.g. the 31st of a 30-day month only)"
        ) from None
    if not isinstance(fired, datetime):
        raise AssertionError("croniter returned no datetime")
    return fired.astimezone(UTC)


@dataclass(frozen=True)
class Due:
    period: Period
    due_at: datetime


def due_periods(
    expression: str, kind: PeriodKind, since: datetime, now: datetime, *, limit: int = 1000
) -> list[Due]:
    """Every period of `kind` that ended after `since` and whose due time is at or before
    `now`, oldest first. `limit` bounds a catch-up (1,000 weeks is 19 years)."""
    if since.tzinfo is None or now.tzinfo is None:
        raise ValidationError("since and now must carry their UTC offsets")
    found: list[Due] = []
    period = period_of(since.astimezone(UTC).date(), kind)
    while period.ends_at <= now:
        if period.ends_at > since:
            due_at = next_fire(expression, period.ends_at)
            if due_at > now:
                break
            found.append(Due(period, due_at))
            if len(found) >= limit:
                break
        period = period_of(period.end + timedelta(days=1), kind)
    return found
