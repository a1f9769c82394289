"""Issued reports and report schedules: signed facts like every other.

An issued report records what was reported (its kind and parameters), what it was computed
from (a checkpoint of the log: tree size and root) and what came out (the digest of its
canonical content and of every file written), so anyone holding the log can recompute it.
A schedule records when reports of a kind fall due (a cron expression) and what to issue.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, cast
from uuid import UUID

from pydantic import Field

from domain.errors import RuleViolated
from domain.events import Aggregate, Instant, Value, stream_id
from domain.guards import check_ends_after_start, check_slug, check_text

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ROOT = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # a SHA-256 hash in base64


class ReportKind(StrEnum):
    GOVERNANCE = "governance"


class ReportFormat(StrEnum):
    HTML = "html"
    MD = "md"
    CSV = "csv"
    JSON = "json"


class PeriodKind(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class ReportParameters(Value):
    """What a report covers and how: everything its content depends on besides the log."""

    service_id: str | None  # None: every service
    start: date
    end: date  # inclusive
    label: str  # "2026-10", "2026-W41", "2026-10-01..2026-12-31"
    baseline_start: date | None = None
    baseline_end: date | None = None
    target_reduction_percent: int | None = Field(default=None, ge=0, le=100)
    publish: bool = False  # statistical disclosure control applied


class FileDigest(Value):
    format: ReportFormat
    name: str  # the file name, without a directory
    sha256: str


class ScheduleParameters(Value):
    service_id: str | None
    period: PeriodKind
    target_reduction_percent: int | None = Field(default=None, ge=0, le=100)
    publish: bool = False


def report_stream(report_id: UUID) -> UUID:
    """A report's stream is its id: issuing the same id twice is a conflict at version 1."""
    return report_id


def schedule_stream(name: str) -> UUID:
    return stream_id("schedule", name)


class IssuedReport(Aggregate):
    KIND: ClassVar[str] = "report"

    def __init__(self) -> None:
        self.kind = ReportKind.GOVERNANCE
        self.content_digest = ""

    class Issued(Aggregate.Created):
        TYPE: ClassVar[str] = "report.issued"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        kind: ReportKind
        service_id: str | None
        parameters: ReportParameters
        checkpoint_size: int = Field(ge=0)
        checkpoint_root: str
        formats: tuple[ReportFormat, ...]
        content_digest: str
        files: tuple[FileDigest, ...]
        schedule: str | None = None  # the schedule that issued it, if any

        def apply(self, aggregate: Any) -> None:
            aggregate.kind = self.kind
            aggregate.content_digest = self.content_digest

    @classmethod
    def issue(
        cls,
        report_id: UUID,
        kind: ReportKind,
        parameters: ReportParameters,
        checkpoint_size: int,
        checkpoint_root: str,
        content_digest: str,
        files: tuple[FileDigest, ...],
        schedule: str | None = None,
    ) -> IssuedReport:
        check_ends_after_start(parameters.start, parameters.end, "the report period")
        if parameters.baseline_start is not None and parameters.baseline_end is not None:
            check_ends_after_start(
                parameters.baseline_start, parameters.baseline_end, "the baseline"
            )
        if checkpoint_size < 1:
            raise RuleViolated("a report must be anchored to a checkpoint of a non-empty log")
        if not _ROOT.match(checkpoint_root):
            raise RuleViolated("the checkpoint root must be a base64 SHA-256 hash")
        check_digest(content_digest, "content digest")
        if not files:
            raise RuleViolated("an issued report has at least one file")
        formats = tuple(f.format for f in files)
        if len(set(formats)) != len(formats):
            raise RuleViolated("one file per format")
        for f in files:
            check_digest(f.sha256, f"digest of {f.name}")
            check_file_name(f.name)
        return cls._create(
            cls.Issued,
            id=report_stream(report_id),
            kind=kind,
            service_id=parameters.service_id,
            parameters=parameters,
            checkpoint_size=checkpoint_size,
            checkpoint_root=checkpoint_root,
            formats=formats,
            content_digest=content_digest,
            files=files,
            schedule=schedule,
        )


class ReportSchedule(Aggregate):
    KIND: ClassVar[str] = "schedule"

    def __init__(self) -> None:
        self.name = ""
        self.cron = ""
        self.kind = ReportKind.GOVERNANCE
        self.parameters: ScheduleParameters | None = None
        self.formats: tuple[ReportFormat, ...] = ()
        self.out_dir = ""
        self.since: datetime | None = None
        self.removed = False

    class Added(Aggregate.Created):
        TYPE: ClassVar[str] = "schedule.added"
        SERVICE_FIELD: ClassVar[str | None] = "service_id"
        name: str
        cron: str
        kind: ReportKind
        service_id: str | None
        parameters: ScheduleParameters
        formats: tuple[ReportFormat, ...]
        out_dir: str
        since: Instant  # periods count from here: catch-up never reaches further back

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name
            aggregate.cron = self.cron
            aggregate.kind = self.kind
            aggregate.parameters = self.parameters
            aggregate.formats = self.formats
            aggregate.out_dir = self.out_dir
            aggregate.since = self.since

    class Removed(Aggregate.Event):
        TYPE: ClassVar[str] = "schedule.removed"
        name: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.removed = True

    @classmethod
    def add(
        cls,
        name: str,
        cron: str,
        kind: ReportKind,
        parameters: ScheduleParameters,
        formats: tuple[ReportFormat, ...],
        out_dir: str,
        since: datetime,
    ) -> ReportSchedule:
        check_slug(name, "schedule name")
        check_text(cron, "a cron expression")
        if len(cron.split()) != 5:
            raise RuleViolated(
                f"cron expression {cron!r} must have 5 fields: minute hour day month weekday"
            )
        if not formats:
            raise RuleViolated("a schedule needs at least one format")
        if len(set(formats)) != len(formats):
            raise RuleViolated("each format once")
        check_text(out_dir, "an output directory")
        return cls._create(
            cls.Added,
            id=schedule_stream(name),
            name=name,
            cron=" ".join(cron.split()),
            kind=kind,
            service_id=parameters.service_id,
            parameters=parameters,
            formats=formats,
            out_dir=out_dir,
            since=since,
        )

    def remove(self, reason: str) -> None:
        if self.removed:
            raise RuleViolated(f"schedule {self.name!r} is already removed")
        check_text(reason, "a reason for removing the schedule")
        self.trigger_event(self.Removed, name=self.name, reason=reason)


def as_issued(event: object) -> IssuedReport.Issued | None:
    """The event as a `report.issued` event, or None. By its stable type name: the event
    classes the log is read back with need not be the very class objects named here."""
    if getattr(event, "TYPE", None) != IssuedReport.Issued.TYPE:
        return None
    return cast(IssuedReport.Issued, event)


def check_digest(value: str, what: str) -> None:
    if not _SHA256.match(value):
        raise RuleViolated(f"{what} must be a lowercase hex SHA-256 digest")


def check_file_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise RuleViolated(f"invalid report file name {name!r}")
