"""Stored type names resolve to event classes by importing only the module of their kind,
and only registered types decode."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import domain
import ledger
from domain.events import aggregate_class, event_class, event_types
from ledger.errors import ValidationError
from ledger.mapper import EVENT_MODULES, known_event_class
from tests.support import modules_loaded_by


def _import_every_module() -> None:
    for package in (domain, ledger):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(found.name)


def test_every_event_type_is_declared_by_the_module_of_its_kind() -> None:
    _import_every_module()
    declared = {t for t in event_types() if not event_class(t).__module__.startswith("tests.")}
    assert {t.partition(".")[0] for t in declared} == set(EVENT_MODULES)
    for type_name in declared:
        module = EVENT_MODULES[type_name.partition(".")[0]]
        assert event_class(type_name).__module__ == module, type_name
        assert aggregate_class(type_name).__module__ == module, type_name


@pytest.mark.parametrize("type_name", ["incident.deleted", "widget.made", "recorded", ""])
def test_an_unregistered_type_is_refused_as_unknown(type_name: str) -> None:
    with pytest.raises(ValidationError, match=f"unknown event type {type_name!r}"):
        known_event_class(type_name)


def test_resolving_a_type_imports_only_the_module_of_its_kind() -> None:
    code = (
        "from ledger.mapper import known_event_class\n"
        "assert known_event_class('person.registered').TYPE == 'person.registered'"
    )
    modules = sorted(set(EVENT_MODULES.values()))
    assert modules_loaded_by(code, modules) == ["domain.people"]
