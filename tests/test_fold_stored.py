"""What a catch-up folds from the stored events (`projections.fold.apply_stored`) and the
register row it writes for each incident (`projections.facts.incident_facts`)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.vocabulary import DebriefType
from ledger.envelope import Header
from ledger.mapper import build_event
from projections.facts import FACT_COLUMNS, incident_facts
from projections.fold import apply_stored
from projections.model import DebriefView, State

STREAM = "5f0c2d43-9a53-5a5e-8a5b-2f1d0e6c4b11"


def _header(event_type: str, recorded_at: str = "2026-02-01T10:00:00.000000Z") -> Header:
    return Header(
        raw=b"",
        origin="example.org",
        stream=STREAM,
        version=1,
        type=event_type,
        schema=1,
        recorded_at=recorded_at,
        actor="lee",
        key_id="k",
        prev=None,
        service="ward-3",
        subject="P-1",
        data_digest="",
    )


def _recorded() -> dict[str, Any]:
    """incident.recorded data as the writer stores it, with every kind of fact present."""
    return {
        "incident_ref": "INC-1",
        "service_id": "ward-3",
        "person_id": "P-1",
        "coverage": "valid",
        "facts": {
            "place": "Garden",
            "occurred_start": "2026-01-31T23:30:00.000000Z",
            "occurred_end": "2026-02-01T00:10:00.000000Z",
            "reason": "10",
            "interventions": [
                {
                    "type": "01",
                    "technique_id": None,
                    "position": None,
                    "start": "2026-01-31T23:30:00.000000Z",
                    "end": "2026-02-01T00:05:00.000000Z",
                    "staff_count": 3,
                    "staff": [{"staff_id": "S-1", "role_in_hold": "lead"}, {"staff_id": "S-2"}],
                    "chemical": None,
                },
                {
                    "type": "07",
                    "technique_id": "one-person-hold",
                    "position": "standing",
                    "start": "2026-02-01T00:05:00.000000Z",
                    "end": "2026-02-01T00:10:00.000000Z",
                    "staff_count": 1,
                    "staff": [],
                    "chemical": None,
                },
            ],
            "de_escalation": ["talked", "space"],
            "non_staff": [{"agency": "police", "reason": "called"}],
            "injuries": [
                {"person": "staff", "description": "bruise", "severity": "minor"},
                {"person": "subject", "description": "cut", "severity": "serious"},
            ],
            "part_of_care_plan": True,
            "authorisation_id": "AUTH-1",
        },
        "antecedents": None,
        "reason_detail": None,
        "force_description": None,
        "outcome": None,
        "de_escalation_notes": None,
    }


def _stored(header: Header, data: dict[str, Any]) -> State:
    state = State()
    apply_stored(state, header, copy.deepcopy(data))
    return state


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["facts"]["interventions"][0].pop("staff_count"),
        lambda d: d["facts"].update(occurred_start="2026-02-01T10:00:00"),  # no offset
        lambda d: d["facts"].update(reason="not-a-reason"),
        lambda d: d.update(coverage="perhaps"),
        # Well-formed JSON that only the model's own rules refuse:
        lambda d: d["facts"]["interventions"][0].update(staff_count=21),
        lambda d: d["facts"]["interventions"][0].update(staff_count=1),  # two staff named
        lambda d: d.update(unexpected="field"),
    ],
)
def test_stored_data_validation_refuses_is_refused_and_changes_nothing(spoil: Any) -> None:
    """A catch-up validates every event a view handles, as the writer did: signed data the
    domain model refuses stops the catch-up, it is never projected."""
    data = _recorded()
    spoil(data)
    header = _header("incident.recorded")
    with pytest.raises(ValidationError):
        build_event(header, copy.deepcopy(data))
    state = State()
    with pytest.raises(ValidationError):
        apply_stored(state, header, data)
    assert state.size == 0 and not state.incidents and not state.incident_streams


def test_the_register_row_says_what_the_view_says() -> None:
    """`incident_facts` (one pass over the interventions) against the view's own
    properties, column by column, for an incident with a prone and a standing hold, a
    technique left out, staff named twice, and held and declined debriefs."""
    (view,) = _stored(_header("incident.recorded"), _recorded()).incidents.values()
    end = view.end
    view = replace(
        view,
        debriefs=(
            DebriefView(DebriefType.PERSON, end + timedelta(hours=5), True),
            DebriefView(DebriefType.IMMEDIATE, end + timedelta(hours=1), False),
            DebriefView(DebriefType.IMMEDIATE, end + timedelta(hours=2), True),
        ),
        signed_off_at=end,
    )
    row = dict(zip(FACT_COLUMNS, incident_facts(view), strict=True))
    hour_us = 3_600_000_000
    assert row == {
        "ref": "INC-1",
        "stream": STREAM,
        "service_id": "ward-3",
        "person_id": "P-1",
        "start": "2026-01-31T23:30:00+00:00",
        "day": "2026-01-31",
        "minutes": view.minutes,
        "interventions": 2,
        "types": '["01","07"]',
        "techniques": '["one-person-hold"]',
        "staff": '["S-1","S-2"]',
        "planned": 1,
        "injuries": 2,
        "prone": 1,
        "prone_minutes": view.prone_minutes,
        "debriefs": 3,
        "signed_off": 1,
        "immediate_debrief_us": 2 * hour_us,
        "person_debrief_us": 5 * hour_us,
        "review_us": None,
    }
    assert view.prone_minutes == 35.0
    unprone = replace(view, interventions=view.interventions[1:], debriefs=())
    row = dict(zip(FACT_COLUMNS, incident_facts(unprone), strict=True))
    assert (row["prone"], row["prone_minutes"], row["immediate_debrief_us"]) == (0, 0.0, None)
