"""Vocabularies, statutory coverage, the event registry and the permission matrix.

The statutory tests read `tests/data/domain_excerpt.md`, a verbatim copy of the Use of Force Act
s.6(5) list and the MHSDS code tables, so a change to either side shows up here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

import domain
import ledger
from domain.errors import InvalidValue, PermissionDenied
from domain.events import (
    DomainEvent,
    aggregate_class,
    event_class,
    event_types,
    stream_id,
)
from domain.incidents import Incident
from domain.people import Person
from domain.roles import PERMISSIONS, Role, check_may_sign, may_sign, parse_role
from domain.statutory import REQUIRED, UOF_S6_5
from domain.vocabulary import (
    POSITION_OF_TYPE,
    Category,
    InterventionType,
    Profile,
    Reason,
)

EXCERPT = (Path(__file__).parent / "data" / "domain_excerpt.md").read_text(encoding="utf-8")


def _import_all(package: Any) -> list[Any]:
    """Every module of a package, imported (so every event class has registered itself)."""
    names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return [importlib.import_module(name) for name in names]


DOMAIN_MODULES = _import_all(domain)
LEDGER_MODULES = _import_all(ledger)


# --- the excerpt -------------------------------------------------------------------------


def s6_5_letters() -> list[str]:
    return re.findall(r"^\s+- \(([a-z])\) ", EXCERPT, flags=re.MULTILINE)


def table_codes(heading: str) -> set[str]:
    section = EXCERPT.split(heading, 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| (\d\d) \|", section, flags=re.MULTILINE))


def test_the_excerpt_holds_the_sixteen_items_of_s6_5() -> None:
    assert s6_5_letters() == list("abcdefghijklmnop")


def test_the_excerpt_holds_both_mhsds_tables() -> None:
    assert len(table_codes("### RESTRICTIVE INTERVENTION TYPE codes")) == 15
    assert len(table_codes("### RESTRICTIVE INTERVENTION REASON codes")) == 12


# --- statutory: UoF s.6(5) -------------------------------------------------------------------


def domain_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module in DOMAIN_MODULES:
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__.startswith("domain."):
                assert found.setdefault(name, value) is value, f"two domain classes named {name}"
    return found


def resolve(path: str) -> tuple[type[BaseModel], str]:
    """'Outer.Inner.field' → (the model class, the field name); KeyError/AttributeError if not."""
    *names, field = path.split(".")
    owner: Any = domain_classes()[names[0]]
    for name in names[1:]:
        owner = getattr(owner, name)
    return owner, field


def test_every_item_of_s6_5_is_mapped_to_the_model() -> None:
    assert sorted(UOF_S6_5) == s6_5_letters()
    assert all(UOF_S6_5[letter] for letter in UOF_S6_5)


@pytest.mark.parametrize("path", sorted({p for paths in UOF_S6_5.values() for p in paths}), ids=str)
def test_every_field_named_for_s6_5_exists_on_its_model(path: str) -> None:
    model, field = resolve(path)
    assert issubclass(model, BaseModel), f"{path}: {model!r} is not a model"
    assert field in model.model_fields, f"{path}: no field {field!r} on {model.__qualname__}"


def test_a_wrong_field_path_would_be_caught() -> None:
    model, field = resolve("Incident.Recorded.force_descriptin")
    assert field not in model.model_fields
    with pytest.raises(AttributeError):
        resolve("BehaviourSupportPlan.PlanContent.notify_after_force")


def test_every_profile_declares_what_its_records_require() -> None:
    assert set(REQUIRED) == set(Profile)


def test_the_mental_health_unit_profile_requires_the_s6_5_narrative() -> None:
    items = [description for description, _present in REQUIRED[Profile.UK_ENG_MH_UNIT]]
    assert items == [
        "a description of how force was used",
        "the outcome",
        "the efforts made to avoid force (de-escalation)",
        "the staff who used force",
    ]


# --- MHSDS codes -----------------------------------------------------------------------------


def two_digit(values: Any) -> set[str]:
    return {v.value for v in values if re.fullmatch(r"\d\d", v.value)}


def test_the_intervention_types_are_exactly_the_mhsds_type_codes() -> None:
    assert two_digit(InterventionType) == table_codes("### RESTRICTIVE INTERVENTION TYPE codes")


def test_the_reasons_are_exactly_the_mhsds_reason_codes() -> None:
    assert two_digit(Reason) == table_codes("### RESTRICTIVE INTERVENTION REASON codes")


def test_every_intervention_type_has_a_category() -> None:
    assert all(isinstance(t.category, Category) for t in InterventionType)


def test_the_chemical_types_are_the_four_mhsds_chemical_routes() -> None:
    chemical = {t.value for t in InterventionType if t.category is Category.CHEMICAL}
    assert chemical == {"14", "15", "16", "17"}


def test_only_type_01_is_prone() -> None:
    assert [t for t in InterventionType if t.is_prone] == [InterventionType.PRONE]
    assert POSITION_OF_TYPE[InterventionType.PRONE].value == "prone"


def test_each_positional_type_implies_the_position_of_its_name() -> None:
    for kind, position in POSITION_OF_TYPE.items():
        assert kind.is_physical
        assert kind.name.replace("_", "-").lower() == position.value


# --- the event registry ------------------------------------------------------------------------


def test_event_types_are_named_aggregate_dot_event_and_map_back_to_their_class() -> None:
    for type_name in event_types():
        kind, _, event = type_name.partition(".")
        assert kind and re.fullmatch(r"[a-z]+(-[a-z]+)*", event), type_name
        assert type_name == event_class(type_name).TYPE
    assert aggregate_class("incident.corrected") is Incident


def test_an_unknown_event_type_has_no_class() -> None:
    with pytest.raises(KeyError):
        event_class("incident.deleted")


def test_an_event_type_cannot_be_declared_twice() -> None:
    with pytest.raises(TypeError, match=r"'incident.recorded' is declared twice"):

        class Impostor(DomainEvent):
            TYPE: ClassVar[str] = "incident.recorded"


def test_an_event_type_names_its_aggregate() -> None:
    with pytest.raises(TypeError, match=r"must be 'aggregate.past-tense-name'"):

        class Undotted(DomainEvent):
            TYPE: ClassVar[str] = "recorded"


def test_personal_fields_must_exist() -> None:
    with pytest.raises(TypeError, match="PERSONAL names unknown fields \\['nhs_no'\\]"):

        class Misnamed(DomainEvent):
            TYPE: ClassVar[str] = "test.misnamed"
            PERSONAL: ClassVar[frozenset[str]] = frozenset({"nhs_no"})
            nhs_number: str | None = None


def test_personal_fields_must_read_back_as_none_once_erased() -> None:
    with pytest.raises(TypeError, match="must default to None"):

        class Required(DomainEvent):
            TYPE: ClassVar[str] = "test.required"
            PERSONAL: ClassVar[frozenset[str]] = frozenset({"full_name"})
            full_name: str


def test_events_are_immutable() -> None:
    (event,) = Person.register("P-0001", "ward-3").collect_events()
    with pytest.raises(ValidationError, match="frozen"):
        event.pseudonym = "P-9999"  # type: ignore[attr-defined]


def test_events_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Incident.SignedOff.model_validate(
            {
                "originator_id": stream_id("incident", "INC-1"),
                "originator_version": 2,
                "timestamp": "2026-10-05T14:30:00Z",
                "person_id": "P-0001",
                "signed_at": "2026-10-05T16:00:00Z",
                "signed_by": "someone",
            }
        )


def test_a_stream_id_is_stable_and_depends_on_kind_and_key() -> None:
    assert stream_id("incident", "INC-1") == stream_id("incident", "INC-1")
    assert stream_id("incident", "INC-1") != stream_id("plan", "INC-1")


# --- roles and the permission matrix --------------------------------------------------------


def test_every_registered_event_type_has_signers() -> None:
    unsignable = sorted(event_types() - set(PERMISSIONS))
    assert unsignable == []
    assert all(PERMISSIONS[t] for t in event_types())


def test_every_permission_names_a_registered_event_type() -> None:
    assert sorted(set(PERMISSIONS) - event_types()) == []


def test_the_registry_holds_domain_and_ledger_events() -> None:
    assert {"incident.recorded", "actor.enrolled", "subject.erased"} <= event_types()


@pytest.mark.parametrize("event_type", ["authorisation.granted", "incident.signed-off"])
def test_a_recorder_may_not_sign(event_type: str) -> None:
    assert not may_sign([Role.RECORDER], event_type)
    with pytest.raises(
        PermissionDenied, match=rf"'nurse-a' \(recorder\) may not sign '{event_type}'"
    ):
        check_may_sign("nurse-a", [Role.RECORDER], event_type)


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_only_a_manager_signs_off_an_incident(role: Role) -> None:
    assert may_sign([role], "incident.signed-off") is (role is Role.MANAGER)


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_only_an_authoriser_grants_an_authorisation(role: Role) -> None:
    assert may_sign([role], "authorisation.granted") is (role is Role.AUTHORISER)


@pytest.mark.parametrize("event_type", ["incident.deleted", "", "actor"])
def test_an_unknown_event_type_is_denied_to_every_role(event_type: str) -> None:
    assert not may_sign(list(Role), event_type)
    with pytest.raises(PermissionDenied):
        check_may_sign("ada", list(Role), event_type)


def test_the_log_key_only_enrols_the_first_admin() -> None:
    signable = sorted(t for t in PERMISSIONS if may_sign([Role.LOG], t))
    assert signable == ["actor.enrolled"]


def test_an_actor_without_roles_may_sign_nothing() -> None:
    assert not any(may_sign([], t) for t in PERMISSIONS)
    with pytest.raises(PermissionDenied, match="\\(no roles\\)"):
        check_may_sign("ghost", [], "incident.recorded")


def test_a_recorder_records_incidents_and_their_follow_up() -> None:
    check_may_sign("nurse-a", [Role.RECORDER], "incident.recorded")
    check_may_sign("nurse-a", [Role.RECORDER, Role.AUTHORISER], "authorisation.granted")


def test_a_role_is_parsed_from_its_name() -> None:
    assert parse_role("safeguarding-lead") is Role.SAFEGUARDING_LEAD


def test_an_unknown_role_is_refused_listing_the_roles_a_person_can_hold() -> None:
    with pytest.raises(InvalidValue, match="unknown role 'boss'") as refused:
        parse_role("boss")
    assert "manager" in str(refused.value)
    assert "log" not in str(refused.value).split("known roles:")[1]
