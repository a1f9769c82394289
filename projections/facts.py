"""One row of figures per incident: what `incidents list` shows and filters on, and what the
metrics count, so queries answer from indexed columns instead of decoding whole views.

The row is a pure function of an `IncidentView`; the read tables store it beside the view in
the same transaction (`rm_incidents`), and `projections.runtime.verify_read_model` checks it
against the log like every other read-table row.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

import orjson

from domain.vocabulary import DebriefType
from projections.model import IncidentView

FACT_COLUMNS = (
    "ref",
    "stream",  # the incident's stream: a catch-up finds follow-up events' incident by it
    "service_id",
    "person_id",
    "start",
    "day",
    "minutes",
    "interventions",
    "types",
    "techniques",
    "staff",
    "planned",
    "injuries",
    "prone",
    "prone_minutes",
    "debriefs",
    "signed_off",
    "immediate_debrief_us",
    "person_debrief_us",
    "review_us",
)

TIMED_DEBRIEFS = (
    DebriefType.IMMEDIATE,
    DebriefType.PERSON,
    DebriefType.POST_INCIDENT_REVIEW,
)
"""The debriefs whose timeliness the metrics report, in the order of the *_us columns."""


def incident_facts(i: IncidentView) -> tuple[Any, ...]:
    """The `rm_incidents` row of an incident, in FACT_COLUMNS order (one pass over its
    interventions: a catch-up computes a row for every incident it writes)."""
    start = i.start.isoformat()
    # Starts are stored in UTC, so the date is the text's; any other offset is converted.
    day = start[:10] if start.endswith("+00:00") else incident_date(i).isoformat()
    types: list[str] = []
    techniques: list[str] = []
    staff: set[str] = set()
    prone, prone_minutes = 0, 0.0
    for iv in i.interventions:
        types.append(iv.type.value)
        if iv.technique_id:
            techniques.append(iv.technique_id)
        staff.update(iv.staff)
        if iv.is_prone:
            prone, prone_minutes = 1, prone_minutes + iv.minutes
    timely = (
        [first_debrief_after_end(i, kind) for kind in TIMED_DEBRIEFS]
        if i.debriefs
        else [None] * len(TIMED_DEBRIEFS)
    )
    return (
        i.ref,
        i.stream,
        i.service_id,
        i.person_id,
        start,
        day,
        float(i.minutes),
        len(i.interventions),
        _list(types),
        _list(techniques),
        _list(sorted(staff)),
        int(i.planned),
        len(i.injuries),
        prone,
        prone_minutes,
        len(i.debriefs),
        int(i.signed_off_at is not None),
        *timely,
    )


def incident_date(incident: IncidentView) -> date:
    """The date an incident belongs to: the UTC calendar date of its start."""
    return incident.start.astimezone(UTC).date()


def first_debrief_after_end(incident: IncidentView, kind: DebriefType) -> int | None:
    """Microseconds from the end of the incident to its first *held* debrief of `kind`
    (negative if held before the end); None if none was held."""
    held = [d.at for d in incident.debriefs if d.debrief_type is kind and d.held]
    return None if not held else (min(held) - incident.end) // timedelta(microseconds=1)


def _list(values: list[str]) -> str:
    return orjson.dumps(values).decode()
