"""Read-table bodies are decoded without pydantic: the views must be those pydantic reads."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from domain.vocabulary import (
    AgeBand,
    AuthorisationKind,
    DebriefType,
    InterventionType,
    Position,
    Profile,
    Reason,
    Recipient,
    SeclusionReview,
    Setting,
    Severity,
)
from projections import readstore
from projections.model import (
    AuthorisationView,
    DebriefView,
    IncidentView,
    InjuryView,
    InterventionView,
    NotificationView,
    OccupancyView,
    PersonView,
    PlanChangeView,
    PlanView,
    SeclusionReviewView,
    ServiceView,
    StaffView,
    TrainingView,
)
from projections.readstore import KINDS, ReadStore
from projections.runtime import catch_up
from projections.viewcodec import decode_json, decoder
from tests.conftest import Ledger
from tests.history import add_incidents, setup_ward

T = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _same_values(a: Any, b: Any) -> None:
    """Equal, and of the same types all the way down (a str is not an enum, a list not a
    tuple), so the rules and the JSON written from them cannot tell them apart."""
    assert type(a) is type(b), (a, b)
    assert a == b
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same_values(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            _same_values(x, y)
    elif isinstance(a, datetime):
        assert a.utcoffset() == b.utcoffset()
        assert a.isoformat() == b.isoformat()


def _incident(**changes: Any) -> IncidentView:
    base = IncidentView(
        ref="INC-1",
        stream="5f0c1c9e-1d7e-5b7a-9c55-0e1f7d3a8b21",
        service_id="ward-3",
        person_id="P-1",
        place="Lounge",
        start=T,
        end=T + timedelta(minutes=7),
        reason=Reason("10"),
        interventions=(
            InterventionView(
                type=InterventionType("01"),
                technique_id="three-person-prone",
                position=Position.PRONE,
                start=T,
                end=T + timedelta(minutes=3),
                staff_count=3,
                staff=("S-1", "S-2", "S-3"),
            ),
            InterventionView(
                type=InterventionType("07"),
                technique_id=None,
                position=None,
                start=T,
                end=T + timedelta(minutes=7),
                staff_count=1,
                staff=(),
            ),
        ),
        injuries=(InjuryView(person="subject", severity=Severity.DEATH),),
        non_staff=("police",),
        de_escalation=("talked", "space"),
        part_of_care_plan=True,
        authorisation_id="AUTH-1",
        coverage="valid",
        recorded_at=T + timedelta(hours=1),
        recorded_by="lee",
        debriefs=(DebriefView(DebriefType.IMMEDIATE, T + timedelta(hours=2), True, True),),
        notifications=(NotificationView(Recipient.PARENT_CARER, T + timedelta(hours=3), False),),
        seclusion_reviews=(
            SeclusionReviewView(SeclusionReview.MEDICAL_1H, T + timedelta(hours=4), False),
        ),
        observations=(T + timedelta(minutes=15), T + timedelta(minutes=30)),
        signed_off_at=T + timedelta(days=1),
        spoke_to_staff_at=T + timedelta(hours=5),
        spoke_to_person_at=None,
        corrections=2,
    )
    return dataclasses.replace(base, **changes)


VIEWS: list[Any] = [
    ServiceView("ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, (Profile.UK_ENG_MH_UNIT,)),
    OccupancyView("ward-3", date(2026, 1, 1), date(2026, 1, 31), 310),
    PersonView("P-1", "ward-3", AgeBand.UNDER_9, True),
    PersonView("P-2", "ward-3", None, False),
    StaffView(
        "S-1",
        "ward-3",
        "HCA",
        (TrainingView("S-1", "CALM", ("hold",), date(2025, 6, 1), date(2026, 6, 1)),),
    ),
    StaffView("S-2", "ward-3", "Nurse"),
    _incident(),
    _incident(
        debriefs=(),
        notifications=(),
        seclusion_reviews=(),
        observations=(),
        signed_off_at=None,
        authorisation_id=None,
        start=datetime(2026, 3, 1, 9, tzinfo=UTC),
    ),
    PlanView(
        "P-1",
        3,
        T,
        date(2026, 9, 1),
        ("hold",),
        ("prone-hold",),
        (Position.PRONE,),
        20,
        (PlanChangeView(T, None, ("s-1",)), PlanChangeView(T, 4, ())),
    ),
    PlanView("P-2", 1, T, date(2026, 9, 1), (), (), (), None),
    AuthorisationView("AUTH-1", AuthorisationKind.PLANNED, "ward-3", "P-1", T, T, T),
    AuthorisationView("AUTH-2", AuthorisationKind.ORDER, "ward-3", "P-2", T, T),
]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: type(v).__name__)
def test_a_body_decodes_to_the_view_pydantic_reads(view: Any) -> None:
    body = orjson.dumps(view)
    decoded = decode_json(type(view), body)
    _same_values(decoded, TypeAdapter(type(view)).validate_json(body))
    _same_values(decoded, view)
    assert orjson.dumps(decoded) == body  # written back unchanged by a catch-up


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: type(v).__name__)
def test_a_body_with_its_keys_in_another_order_decodes_to_the_same_view(view: Any) -> None:
    fields = orjson.loads(orjson.dumps(view))
    shuffled = orjson.dumps(dict(reversed(fields.items())))
    _same_values(decode_json(type(view), shuffled), view)


def test_missing_fields_take_their_defaults_and_unknown_keys_are_ignored() -> None:
    body = orjson.loads(orjson.dumps(VIEWS[4]))
    del body["training"]
    body["retired"] = True
    expected = TypeAdapter(StaffView).validate_python(body)
    _same_values(decoder(StaffView)(body), expected)


def test_a_view_field_of_an_unknown_type_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd:
        amounts: list[int]

    with pytest.raises(TypeError, match="no decoder"):
        decoder(Odd)


def test_a_query_decoding_many_views_finds_the_same_state(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 12, seed=7)
    read = ReadStore(ledger.store_url)
    catch_up(service.app, read)
    few = read.load_state()
    monkeypatch.setattr(readstore, "BULK_DECODE", 0)  # every query decodes through pydantic
    assert KINDS["incidents"].bulk_decoder(1) != KINDS["incidents"].decode
    many = read.load_state()
    for name in KINDS:
        for key, view in getattr(few, name).items():
            _same_values(getattr(many, name)[key], view)
    assert read.views("incidents") == read.load_state(kinds=["incidents"]).incidents_of()
    read.close()
    service.app.close()


def test_every_stored_view_decodes_as_pydantic_decodes_it(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 20, seed=5)
    read = ReadStore(ledger.store_url)
    catch_up(service.app, read)
    rows = read.query("SELECT kind, body FROM {p}rm_views ORDER BY kind, key")
    assert {kind for kind, _ in rows} >= {"services", "people", "staff", "incidents"}
    for kind, body in rows:
        view = KINDS[kind].view
        decoded = KINDS[kind].decode(body)
        _same_values(decoded, TypeAdapter(view).validate_json(body))
        assert orjson.dumps(decoded).decode() == body
    read.close()
    service.app.close()
