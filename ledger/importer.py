"""Bulk import of incidents from another system's CSV export, through a TOML column mapping.

Every row is validated (shape, codes, and against the ledger's state) before anything is
written; then all valid rows are saved in one transaction, so an import is all or nothing
(or, with skip_invalid, all valid rows and a reject list).
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import DomainError
from domain.incidents import Incident
from ledger.collection import no_cycle_collection
from ledger.errors import ValidationError
from ledger.recording import NewIncident, RecordingService, parse_command

SCALAR_FIELDS = (
    "service",
    "person",
    "place",
    "start",
    "end",
    "reason",
    "type",
    "technique",
    "position",
    "staff_count",
    "antecedents",
    "reason_detail",
    "force_description",
    "outcome",
    "de_escalation_notes",
    "authorisation",
    "part_of_care_plan",
)
LIST_FIELDS = ("staff", "de_escalation")
REQUIRED_COLUMNS = ("service", "person", "place", "start", "end", "reason", "type")
TRUE = {"yes", "y", "true", "1", "planned"}
FALSE = {"no", "n", "false", "0", "", "unplanned", "emergency"}
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]  # ledger field → CSV column
    values: dict[str, dict[str, str]]  # ledger field → {CSV value: ledger value}
    separator: str = ";"
    time_format: str | None = None  # strptime pattern; None = ISO 8601
    timezone: ZoneInfo | None = None  # for times without an offset


def parse_mapping(text: str) -> Mapping:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValidationError(f"mapping is not valid TOML: {e}") from None
    columns = raw.get("columns")
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ValidationError('mapping needs a [columns] table of field = "CSV column"')
    unknown = set(columns) - set(SCALAR_FIELDS) - set(LIST_FIELDS)
    if unknown:
        raise ValidationError(
            f"mapping names unknown fields {sorted(unknown)}; known: "
            + ", ".join(SCALAR_FIELDS + LIST_FIELDS)
        )
    missing = [f for f in REQUIRED_COLUMNS if f not in columns]
    if missing:
        raise ValidationError(f"mapping has no column for {', '.join(missing)}")
    options = raw.get("options", {})
    return Mapping(
        columns=dict(columns),
        values={
            k: {str(a): str(b) for a, b in v.items()} for k, v in raw.get("values", {}).items()
        },
        separator=str(options.get("list_separator", ";")),
        time_format=options.get("time_format"),
        timezone=_zone(options.get("timezone")),
    )


def _zone(name: object) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"mapping: unknown timezone {name!r}") from None


@dataclass
class RowError:
    line: int
    message: str
    row: dict[str, str]


@dataclass
class ImportResult:
    valid: list[tuple[int, Incident, str]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    header: list[str] = field(default_factory=list)


def read_rows(
    text: str, mapping: Mapping
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    absent = sorted({c for c in mapping.columns.values() if c not in header})
    if absent:
        raise ValidationError(f"the CSV has no column(s) {absent} named in the mapping")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for count, row in enumerate(reader, 1):
            if count > MAX_ROWS:
                raise ValidationError(f"more than {MAX_ROWS} rows: split the file")
            if None in row:
                raise ValidationError(f"line {reader.line_num}: more cells than columns")
            yield reader.line_num, row

    return header, rows()


def row_record(row: dict[str, str], mapping: Mapping) -> dict[str, Any]:
    """One CSV row as a NewIncident input (one intervention spanning the incident)."""
    get = _getter(row, mapping)
    start, end = _time(get("start"), mapping, "start"), _time(get("end"), mapping, "end")
    staff = _list(get("staff"), mapping)
    intervention = {
        "type": get("type"),
        "technique_id": get("technique") or None,
        "position": get("position") or None,
        "start": start,
        "end": end,
        "staff_count": int(get("staff_count") or len(staff)),
        "staff": [{"staff_id": s} for s in staff],
    }
    record: dict[str, Any] = {
        "service": get("service"),
        "person": get("person"),
        "place": get("place"),
        "start": start,
        "end": end,
        "reason": get("reason"),
        "interventions": [{k: v for k, v in intervention.items() if v is not None}],
        "de_escalation": _list(get("de_escalation"), mapping),
        "part_of_care_plan": _flag(get("part_of_care_plan")),
        "authorisation": get("authorisation") or None,
    }
    for name in (
        "antecedents",
        "reason_detail",
        "force_description",
        "outcome",
        "de_escalation_notes",
    ):
        record[name] = get(name) or None
    return record


def _getter(row: dict[str, str], mapping: Mapping) -> Callable[[str], str]:
    def get(name: str) -> str:
        column = mapping.columns.get(name)
        value = (row.get(column) or "").strip() if column else ""
        return mapping.values.get(name, {}).get(value, value)

    return get


def _list(value: str, mapping: Mapping) -> list[str]:
    return [part.strip() for part in value.split(mapping.separator) if part.strip()]


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValidationError(f"part_of_care_plan: {value!r} is not yes/no")


def _time(value: str, mapping: Mapping, what: str) -> datetime:
    try:
        if mapping.time_format:
            parsed = datetime.strptime(value, mapping.time_format)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{what}: {value!r} is not a time in the expected format") from None
    if parsed.tzinfo is None:
        if mapping.timezone is None:
            raise ValidationError(
                f"{what}: {value!r} has no UTC offset; set [options] timezone in the mapping"
            )
        parsed = parsed.replace(tzinfo=mapping.timezone)
    return parsed.astimezone(UTC)


def validate_rows(
    service: RecordingService,
    rows: Iterable[tuple[int, dict[str, str]]],
    mapping: Mapping,
    progress: Callable[[int], None] = lambda _n: None,
) -> ImportResult:
    """Check every row, building (unsaved) incidents for the valid ones."""
    result = ImportResult()
    with no_cycle_collection():
        for line, row in rows:
            try:
                command = parse_command(NewIncident, row_record(row, mapping))
                incident, ref = service.prepare_incident(command)
                result.valid.append((line, incident, ref))
            except DomainError as e:
                message = e.diagnostics().replace("interventions.0.", "")
                result.errors.append(RowError(line, message, row))
            progress(1)
    return result


def save_valid(service: RecordingService, result: ImportResult) -> list[str]:
    """Save every valid incident in one transaction; return their references."""
    if result.valid:
        with no_cycle_collection():
            service.save_batch(incident for _, incident, _ in result.valid)
    return [ref for _, _, ref in result.valid]


def reject_csv(header: Sequence[str], errors: Sequence[RowError]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["line", "error", *header], extrasaction="ignore")
    writer.writeheader()
    for error in errors:
        writer.writerow({"line": error.line, "error": error.message, **error.row})
    return out.getvalue()
