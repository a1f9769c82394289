"""Issuing reports and keeping report schedules: check permission → load → one aggregate call
→ save, as in `ledger.recording`.

Issuing is exactly-once by construction: a report's stream is its id, and its `report.issued`
event is saved at version 1, so a second writer of the same id (a concurrent `schedule
run-due`) gets `Conflict` and nothing is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from domain.reports import (
    FileDigest,
    IssuedReport,
    ReportFormat,
    ReportKind,
    ReportParameters,
    ReportSchedule,
    ScheduleParameters,
    as_issued,
    report_stream,
    schedule_stream,
)
from ledger.app import storage_errors
from ledger.errors import NotFound, ValidationError
from ledger.service import LedgerService


def scheduled_report_id(schedule: str, period_label: str) -> UUID:
    """The one id a schedule's report for a period can have (so it is issued once)."""
    return uuid5(NAMESPACE_URL, f"calm-ledger:report:{schedule}:{period_label}")


class ReportingService(LedgerService):
    # --- reports ---------------------------------------------------------------------------

    def issue_report(
        self,
        report_id: UUID,
        kind: ReportKind,
        parameters: ReportParameters,
        checkpoint: tuple[int, str],
        content_digest: str,
        files: tuple[FileDigest, ...],
        schedule: str | None = None,
    ) -> UUID:
        """Record the signed `report.issued` fact. Raises Conflict if the id is taken."""
        self.authorise(IssuedReport.Issued.TYPE)
        size, root = checkpoint
        report = IssuedReport.issue(
            report_id, kind, parameters, size, root, content_digest, files, schedule
        )
        return self._save(report)

    def is_issued(self, report_id: UUID) -> bool:
        return self._exists(report_stream(report_id))

    def issued(self, report_id: UUID) -> IssuedReport.Issued:
        """The `report.issued` event of a report id."""
        with storage_errors(self.app.store_url):
            events = list(self.app.events.get(report_stream(report_id)))
        issued = as_issued(events[0]) if events else None
        if issued is None:
            raise NotFound(f"no report {report_id} has been issued in this ledger")
        return issued

    # --- schedules -------------------------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        cron: str,
        kind: ReportKind,
        parameters: ScheduleParameters,
        formats: tuple[ReportFormat, ...],
        out_dir: str,
        since: datetime,
    ) -> UUID:
        self.authorise(ReportSchedule.Added.TYPE)
        if self._exists(schedule_stream(name)):
            raise ValidationError(
                f"a schedule named {name!r} exists (or existed: names are never reused)"
            )
        return self._save(ReportSchedule.add(name, cron, kind, parameters, formats, out_dir, since))

    def remove_schedule(self, name: str, reason: str) -> UUID:
        self.authorise(ReportSchedule.Removed.TYPE)
        schedule = self.schedule(name)
        schedule.remove(reason)
        return self._save(schedule)

    def schedule(self, name: str) -> ReportSchedule:
        try:
            with storage_errors(self.app.store_url):
                found: Any = self.app.repository.get(schedule_stream(name))
        except AggregateNotFoundError:
            raise NotFound(f"no schedule named {name!r}") from None
        if not isinstance(found, ReportSchedule):
            raise NotFound(f"no schedule named {name!r}")
        return found

    def schedules(self, *, include_removed: bool = False) -> list[ReportSchedule]:
        """Every schedule, by name."""
        found = []
        for stream in self._streams_with(ReportSchedule.Added.TYPE):
            with storage_errors(self.app.store_url):
                schedule: Any = self.app.repository.get(stream)
            if isinstance(schedule, ReportSchedule) and (include_removed or not schedule.removed):
                found.append(schedule)
        return sorted(found, key=lambda s: s.name)

    def _streams_with(self, event_type: str) -> list[UUID]:
        """Streams holding an event of this type (the stored topic is the stable type name)."""
        store = self.app.store
        query = store.sql("SELECT originator_id FROM {events} WHERE topic = ?")
        with storage_errors(self.app.store_url):
            rows = list(store.stream_rows(query, (event_type,)))
        return [_uuid(row["originator_id"]) for row in rows]


def _uuid(value: object) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
