"""Issuing a report and verifying an issued report file.

Issuing: fold the log up to a signed checkpoint → compute the content → render every format in
memory → record the signed `report.issued` event (content digest, parameters, checkpoint, and
each file's digest) → only then write the files (to a temporary name, then renamed). A second
issuer of the same report id gets `Conflict` before anything is written.

Verifying: find the `report.issued` event the file names (in the ledger, or in a verified
export bundle), refold the log to its checkpoint, check the root, recompute the content and
compare its digest with the event's, then compare the file with the issued file's digest —
naming the figures or lines that differ when they do not match.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import orjson

from domain.events import DomainEvent
from domain.reports import (
    FileDigest,
    IssuedReport,
    ReportFormat,
    ReportKind,
    ReportParameters,
    report_stream,
)
from ledger import merkle
from ledger.app import LedgerApp, storage_errors
from ledger.checkpoints import StoredCheckpoint, sign_checkpoint, stored_checkpoints
from ledger.envelope import Header, decode_envelope
from ledger.errors import Conflict, LedgerError, NotFound, ValidationError, VerificationError
from ledger.keys import SigningKey
from ledger.reporting import ReportingService
from projections.fold import fold
from projections.governance import Anchor, content_digest, governance_report
from projections.metrics import incident_date
from projections.model import State
from projections.report_render import file_name, lines_differing, render, report_id_in
from projections.schedules import Period, default_baseline


@dataclass(frozen=True)
class Rendered:
    content: dict[str, Any]
    digest: str
    files: dict[ReportFormat, tuple[str, bytes]]  # format → (file name, bytes)

    def file_digests(self) -> tuple[FileDigest, ...]:
        return tuple(
            FileDigest(format=fmt, name=name, sha256=hashlib.sha256(raw).hexdigest())
            for fmt, (name, raw) in self.files.items()
        )


# --- the state and the anchor ---------------------------------------------------------------


def state_at(app: LedgerApp, size: int) -> State:
    """The projected state of exactly the first `size` leaves of the log."""
    events: list[tuple[DomainEvent, str]] = []
    with storage_errors(app.store_url):
        for row in app.store.iter_leaves(stop=size):
            if row.event is None:
                raise VerificationError(
                    f"leaf {row.leaf_index} has no event: run 'calm-ledger verify'", step="leaves"
                )
            header = decode_envelope(row.event.state).header()
            events.append((cast(DomainEvent, app.mapper.to_domain_event(row.event)), header.actor))
    state = fold(events)
    if state.size != size:
        raise VerificationError(f"the log has {state.size} leaves, fewer than {size}")
    return state


def choose_checkpoint(
    app: LedgerApp,
    origin: str,
    log_public_key: bytes,
    *,
    size: int | None = None,
    log_key: SigningKey | None = None,
) -> StoredCheckpoint:
    """The checkpoint a report is computed as of: a new one of the current log if `log_key`
    is given, else the stored one of `size`, else the latest stored."""
    if log_key is not None:
        try:
            return sign_checkpoint(app, origin, log_key)
        except Conflict:
            pass  # another process signed the same tree a moment ago: use it
    stored = stored_checkpoints(app, origin, log_public_key)
    if not stored:
        raise NotFound(
            "no checkpoint is signed yet: run 'calm-ledger checkpoint' first"
            " (or pass --new-checkpoint)"
        )
    if size is None:
        return stored[-1]
    for checkpoint in stored:
        if checkpoint.size == size:
            return checkpoint
    sizes = ", ".join(str(c.size) for c in stored)
    raise NotFound(f"no checkpoint is stored at size {size} (stored: {sizes})")


def anchor_of(checkpoint: StoredCheckpoint) -> Anchor:
    cp = checkpoint.checkpoint
    return Anchor(cp.origin, cp.size, str(cp.root_hash))


@dataclass(frozen=True)
class ReportOptions:
    """What `report governance` and a schedule share, validated."""

    service_id: str | None
    formats: tuple[ReportFormat, ...]
    target_reduction_percent: int | None
    publish: bool


def report_parameters(
    state: State,
    options: ReportOptions,
    period: Period,
    baseline: tuple[date, date] | bool | None = True,
) -> ReportParameters:
    """The parameters of one report; `baseline=True` asks for the default (the 12 months
    before the period, from the first month with data), False or None for none."""
    if options.service_id is not None and options.service_id not in state.services:
        raise ValidationError(f"no service {options.service_id!r} is registered in the ledger")
    if baseline is True:
        days = [incident_date(i) for i in state.incidents_of(options.service_id)]
        days += [
            o.start
            for o in state.occupancy.values()
            if options.service_id is None or o.service_id == options.service_id
        ]
        chosen = default_baseline(period.start, min(days) if days else None)
    else:
        chosen = baseline or None
    return ReportParameters(
        service_id=options.service_id,
        start=period.start,
        end=period.end,
        label=period.label,
        baseline_start=chosen[0] if chosen else None,
        baseline_end=chosen[1] if chosen else None,
        target_reduction_percent=options.target_reduction_percent,
        publish=options.publish,
    )


# --- rendering and issuing -----------------------------------------------------------------------


def render_report(
    state: State,
    report_id: UUID,
    parameters: ReportParameters,
    anchor: Anchor,
    formats: Iterable[ReportFormat],
) -> Rendered:
    content = governance_report(
        state, report_id=str(report_id), parameters=parameters, anchor=anchor
    )
    digest = content_digest(content)
    files = {fmt: (file_name(content, fmt), render(content, digest, fmt)) for fmt in formats}
    return Rendered(content, digest, files)


def prepare_out_dir(out_dir: Path) -> None:
    """Make sure the files can be written, before the report is recorded as issued."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValidationError(
            f"cannot create the output directory {out_dir}: {e.strerror}"
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValidationError(f"cannot write to the output directory {out_dir}")


def issue_report(
    service: ReportingService,
    report_id: UUID,
    parameters: ReportParameters,
    anchor: Anchor,
    rendered: Rendered,
    out_dir: Path,
    *,
    schedule: str | None = None,
) -> list[Path]:
    """Record the report as issued, then write its files. Raises Conflict (nothing written)
    if the id was issued already."""
    prepare_out_dir(out_dir)
    service.issue_report(
        report_id,
        ReportKind.GOVERNANCE,
        parameters,
        (anchor.size, anchor.root),
        rendered.digest,
        rendered.file_digests(),
        schedule,
    )
    return write_files(out_dir, rendered.files.values())


def write_files(out_dir: Path, files: Iterable[tuple[str, bytes]]) -> list[Path]:
    written = []
    for name, raw in files:
        target = out_dir / name
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(raw)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


# --- verifying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    event: IssuedReport.Issued
    format: ReportFormat
    lines: list[str]  # what was checked, for people


def file_format(path: Path) -> ReportFormat:
    suffix = path.suffix.lower().lstrip(".")
    aliases = {"htm": "html", "markdown": "md"}
    try:
        return ReportFormat(aliases.get(suffix, suffix))
    except ValueError:
        raise ValidationError(
            f"{path.name}: not a report file (expected .html, .md, .csv or .json)"
        ) from None


def read_report_file(path: Path) -> tuple[bytes, ReportFormat, UUID]:
    fmt = file_format(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ValidationError(f"cannot read {path}: {e.strerror}") from None
    found = report_id_in(raw, fmt)
    if found is None:
        raise VerificationError(
            f"{path.name} names no report id: it is not a calm-ledger report, or it was altered",
            step="report id",
        )
    try:
        return raw, fmt, UUID(found)
    except ValueError:
        raise VerificationError(
            f"{path.name}: malformed report id {found!r}", step="report id"
        ) from None


def verify_with(
    raw: bytes,
    fmt: ReportFormat,
    event: IssuedReport.Issued,
    origin: str,
    state: State,
    root: str,
) -> Verified:
    """Steps 2-4 of verification, given the issued event and the state at its checkpoint."""
    lines = [
        f"1. issued: report {event.originator_id} ({event.kind.value}, {event.parameters.label},"
        f" service {event.service_id or 'all'}), signed into the ledger"
    ]
    if root != event.checkpoint_root:
        raise VerificationError(
            f"the log's root at size {event.checkpoint_size} is {root}, the report states"
            f" {event.checkpoint_root}: the log was rewritten",
            step="checkpoint",
        )
    lines.append(f"2. checkpoint: the log at size {event.checkpoint_size} has root {root}")
    anchor = Anchor(origin, event.checkpoint_size, root)
    content = governance_report(
        state, report_id=str(event.originator_id), parameters=event.parameters, anchor=anchor
    )
    digest = content_digest(content)
    if digest != event.content_digest:
        detail = ""
        if fmt is ReportFormat.JSON:
            detail = "; " + "; ".join(json_differences(raw, content)[:5])
        raise VerificationError(
            f"recomputed content digest {digest} differs from the issued {event.content_digest}"
            f"{detail}",
            step="content",
        )
    lines.append(f"3. content: recomputed from the log, digest {digest} matches")
    issued = next((f for f in event.files if f.format is fmt), None)
    if issued is None:
        raise VerificationError(
            f"report {event.originator_id} was not issued as {fmt.value}", step="file"
        )
    actual = hashlib.sha256(raw).hexdigest()
    if actual != issued.sha256:
        raise VerificationError(
            f"this file is not the issued {issued.name} (sha256 {actual}, issued"
            f" {issued.sha256}): {'; '.join(_file_differences(raw, fmt, content, digest))}",
            step="file",
        )
    lines.append(f"4. file: identical to the issued {issued.name} (sha256 {actual})")
    return Verified(event, fmt, lines)


def _file_differences(
    raw: bytes, fmt: ReportFormat, content: dict[str, Any], digest: str
) -> list[str]:
    if fmt is ReportFormat.JSON:
        found = json_differences(raw, content)
    else:
        found = lines_differing(raw, render(content, digest, fmt))
    return found or ["the bytes differ (layout only, or rendered by another version)"]


def json_differences(raw: bytes, content: dict[str, Any], limit: int = 10) -> list[str]:
    """Paths where a JSON report file and the recomputed content differ."""
    try:
        stated = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return [f"the file is not valid JSON ({e})"]
    found: list[str] = []
    _diff(stated, content, "", found, limit)
    return found


def _diff(a: Any, b: Any, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else str(key)
            if key not in a:
                found.append(f"{where}: missing from the file")
            elif key not in b:
                found.append(f"{where}: not in the recomputed report")
            else:
                _diff(a[key], b[key], where, found, limit)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            found.append(f"{path}: the file lists {len(a)} items, the ledger gives {len(b)}")
            return
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{n}]", found, limit)
        return
    if a != b or type(a) is not type(b):
        found.append(f"{path}: the file says {a!r}, the ledger gives {b!r}")


def issued_event_in(events: Sequence[tuple[Header, bytes | None]], report_id: UUID) -> int:
    """The position of a report's `report.issued` entry among a bundle's events."""
    stream = str(report_stream(report_id))
    for n, (header, data) in enumerate(events):
        if header.stream == stream and header.type == IssuedReport.Issued.TYPE:
            if data is None:
                raise VerificationError(
                    f"the bundle shows report {report_id} at header level only: export it with"
                    " --disclose data",
                    step="issued",
                )
            return n
    raise VerificationError(
        f"report {report_id} is not in the bundle (export a range that includes it)",
        step="issued",
    )


def root_of_headers(headers: Iterable[Header], size: int) -> str:
    """The Merkle root of the first `size` leaves, from their signed headers."""
    hashes = [merkle.leaf_hash(h.raw) for _, h in zip(range(size), headers, strict=False)]
    if len(hashes) != size:
        raise VerificationError(f"the bundle has fewer than {size} leaves", step="checkpoint")
    border, _ = merkle.append_leaves(0, [], hashes)
    return str(merkle.root_from_border(size, border))


def root_at(app: LedgerApp, size: int) -> str:
    with storage_errors(app.store_url):
        head = app.store.head().size
        if size > head:
            raise VerificationError(
                f"the report's checkpoint (size {size}) is beyond the log's end ({head}):"
                " this is not the ledger it was issued from, or it was truncated",
                step="checkpoint",
            )
        return str(merkle.tree_hash(size, app.store))


# --- scheduled reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedByRun:
    schedule: str
    label: str
    report_id: UUID
    paths: list[Path]


@dataclass
class RunSummary:
    issued: list[IssuedByRun]
    taken: list[tuple[str, str]]  # (schedule, period) issued meanwhile by another run
    failed: list[tuple[str, str, LedgerError]]
    checkpoint: int | None = None


def run_due(
    issuer: ReportingService,
    origin: str,
    now: datetime,
    base_dir: Path,
    *,
    log_key: SigningKey | None = None,
    on_issued: Callable[[IssuedByRun], None] = lambda _r: None,
) -> RunSummary:
    """Issue every scheduled report that is due by `now` and not issued yet, oldest first.

    Each (schedule, period) has one report id, so a period is issued once however often this
    runs and however many runs overlap: the loser of a race gets Conflict and moves on. All
    reports of one run are computed as of one checkpoint (the latest, or a new one with
    `log_key`), folded once.
    """
    from ledger.reporting import scheduled_report_id
    from projections.schedules import due_periods

    app = issuer.app
    summary = RunSummary([], [], [])
    work = []
    for schedule in issuer.schedules():
        if schedule.parameters is None or schedule.since is None:
            raise AssertionError("a schedule's added event sets its parameters")
        for due in due_periods(schedule.cron, schedule.parameters.period, schedule.since, now):
            report_id = scheduled_report_id(schedule.name, due.period.label)
            if not issuer.is_issued(report_id):
                work.append((schedule, due.period, report_id))
    if not work:
        return summary
    issuer.authorise(IssuedReport.Issued.TYPE)
    checkpoint = choose_checkpoint(app, origin, issuer.log_public_key, log_key=log_key)
    summary.checkpoint = checkpoint.size
    state = state_at(app, checkpoint.size)
    anchor = anchor_of(checkpoint)
    for schedule, period, report_id in work:
        p = schedule.parameters
        if p is None:
            raise AssertionError("checked above")
        options = ReportOptions(
            p.service_id, schedule.formats, p.target_reduction_percent, p.publish
        )
        out_dir = Path(schedule.out_dir)
        if not out_dir.is_absolute():
            out_dir = base_dir / out_dir
        try:
            parameters = report_parameters(state, options, period)
            rendered = render_report(state, report_id, parameters, anchor, options.formats)
            paths = issue_report(
                issuer, report_id, parameters, anchor, rendered, out_dir, schedule=schedule.name
            )
        except Conflict:
            summary.taken.append((schedule.name, period.label))
            continue
        except LedgerError as e:
            summary.failed.append((schedule.name, period.label, e))
            continue
        issued = IssuedByRun(schedule.name, period.label, report_id, paths)
        summary.issued.append(issued)
        on_issued(issued)
    return summary
