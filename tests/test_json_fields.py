"""An event's data fields as canonical JSON: `to_json_value` picks each type's conversion
once. Its output must be exactly that of the plain isinstance chain it replaced (kept here
as the reference), for every event a generated history stores."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import pytest

from ledger.canonical import canonical_bytes, format_datetime
from ledger.mapper import _data_field_names, to_json_value
from tests.conftest import Ledger
from tests.history import add_incidents, setup_ward


def reference(value: Any) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple | frozenset):
        items = sorted(value) if isinstance(value, frozenset) else value
        return [reference(v) for v in items]
    if isinstance(value, Mapping):
        return {str(k): reference(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return reference(value.model_dump())
    raise TypeError(f"cannot put a {type(value).__name__} into an envelope")


def test_every_stored_event_converts_as_the_reference_does(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 24)
    app = service.app
    types, compared = set(), 0
    for row in app.store.iter_leaves():
        assert row.event is not None
        event = app.mapper.to_domain_event(row.event)
        for name in _data_field_names(type(event)):
            value = getattr(event, name)
            assert canonical_bytes(to_json_value(value)) == canonical_bytes(reference(value))
            compared += 1
        types.add(event.TYPE)
    assert {"incident.recorded", "person.registered", "staff.registered"} <= types
    assert compared > 500
    app.close()


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        Colour.RED,
        frozenset({"b", "a"}),
        (date(2026, 1, 2), UUID(int=7)),
        {"k": [True, None, 3]},
        [],
    ],
)
def test_values_outside_any_event_convert_as_the_reference_does(value: object) -> None:
    assert to_json_value(value) == reference(value)


def test_a_type_without_a_conversion_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot put a float"):
        to_json_value(1.5)
    with pytest.raises(TypeError, match="cannot put a set"):
        to_json_value({"a"})
