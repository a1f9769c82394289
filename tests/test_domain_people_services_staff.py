"""People, services, staff and the technique catalogue: their guards, without a database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.errors import RuleViolated
from domain.people import Person, person_stream
from domain.services import Service, service_stream
from domain.staff import StaffMember, Training, staff_stream
from domain.techniques import (
    Technique,
    TechniqueCatalogue,
    default_catalogue,
    parse_catalogue,
)
from domain.vocabulary import AgeBand, Profile, Setting

# --- people --------------------------------------------------------------------------------


@pytest.mark.parametrize("pseudonym", ["P-0001", "ab", "x" * 40, "a_b-9"])
def test_a_pseudonym_of_two_to_forty_safe_characters_is_accepted(pseudonym: str) -> None:
    person = Person.register(pseudonym, "ward-3")
    assert person.id == person_stream(pseudonym)
    assert person.pseudonym == pseudonym


@pytest.mark.parametrize(
    "pseudonym",
    ["", "a", "x" * 41, "-P0001", "Jane Smith", "jane.smith", "P/0001"],
    ids=["empty", "one-char", "41-chars", "leading-dash", "space", "dot", "slash"],
)
def test_a_pseudonym_that_could_be_a_name_or_path_is_refused(pseudonym: str) -> None:
    with pytest.raises(RuleViolated, match=r"invalid person id .*\(a pseudonym, never a name\)"):
        Person.register(pseudonym, "ward-3")


def test_a_blank_name_is_refused() -> None:
    with pytest.raises(RuleViolated, match="a name, if given, must not be blank"):
        Person.register("P-0001", "ward-3", full_name="  ")


def test_identifying_details_go_in_the_event_not_the_state() -> None:
    person = Person.register(
        "P-0001", "ward-3", full_name="Alex Doe", nhs_number="943 476 5919", age_band=AgeBand.ADULT
    )
    (registered,) = person.collect_events()
    assert isinstance(registered, Person.Registered)
    assert registered.full_name == "Alex Doe"
    assert "full_name" in Person.Registered.PERSONAL
    assert not hasattr(person, "full_name")
    assert person.age_band is AgeBand.ADULT


# --- services ------------------------------------------------------------------------------


def service() -> Service:
    return Service.register(
        "ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, (Profile.UK_ENG_MH_UNIT,)
    )


def test_a_service_has_a_slug_id() -> None:
    with pytest.raises(RuleViolated, match="invalid service id 'ward 3'"):
        Service.register("ward 3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, (Profile.UK_ENG_MH_UNIT,))


def test_a_service_has_a_name() -> None:
    with pytest.raises(RuleViolated, match="a service name is required"):
        Service.register("ward-3", "", Setting.MENTAL_HEALTH_UNIT, (Profile.UK_ENG_MH_UNIT,))


def test_a_service_needs_at_least_one_profile() -> None:
    with pytest.raises(RuleViolated, match="at least one jurisdiction profile"):
        Service.register("ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, ())


def test_a_services_profiles_are_kept_once_each_in_order() -> None:
    both = (Profile.UK_ENG_MH_UNIT, Profile.UK_ENG_CQC, Profile.UK_ENG_MH_UNIT)
    registered = Service.register("ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, both)
    assert registered.id == service_stream("ward-3")
    assert registered.profiles == (Profile.UK_ENG_MH_UNIT, Profile.UK_ENG_CQC)


def test_an_occupancy_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(RuleViolated, match=r"the occupancy period ends .* before it starts"):
        service().record_occupancy(date(2026, 2, 1), date(2026, 1, 31), 100)


def test_person_days_cannot_be_negative() -> None:
    with pytest.raises(RuleViolated, match="person-days cannot be negative"):
        service().record_occupancy(date(2026, 1, 1), date(2026, 1, 31), -1)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 1, 1), date(2026, 12, 31)),
        (date(2024, 1, 1), date(2024, 12, 31)),
    ],
    ids=["one-day", "a-year", "a-leap-year"],
)
def test_occupancy_for_a_day_up_to_a_year_is_recorded(start: date, end: date) -> None:
    ward = service()
    ward.record_occupancy(start, end, 0)
    assert ward.occupancy == {(start, end): 0}


def test_occupancy_for_more_than_a_year_is_refused() -> None:
    with pytest.raises(RuleViolated, match="per month or per year at most"):
        service().record_occupancy(date(2025, 1, 1), date(2026, 1, 2), 9000)


def test_a_later_occupancy_record_for_the_same_period_replaces_the_earlier() -> None:
    ward = service()
    ward.record_occupancy(date(2026, 1, 1), date(2026, 1, 31), 600)
    ward.record_occupancy(date(2026, 1, 1), date(2026, 1, 31), 612)
    assert ward.occupancy == {(date(2026, 1, 1), date(2026, 1, 31)): 612}


# --- staff ---------------------------------------------------------------------------------


def training(**changes: Any) -> Training:
    fields: dict[str, Any] = {
        "course": "CALM Physical Skills",
        "curriculum": "CALM Physical Skills",
        "techniques": ("two-person-seated",),
        "completed_on": date(2026, 1, 10),
        "valid_until": date(2027, 1, 9),
        "provider": "CALM Training",
    }
    return Training.model_validate({**fields, **changes})


def staff_member() -> StaffMember:
    return StaffMember.register("nurse-a", "ward-3", "Staff nurse", "Sam Lee")


def test_a_staff_member_has_a_slug_id() -> None:
    with pytest.raises(RuleViolated, match="invalid staff id"):
        StaffMember.register("nurse a", "ward-3", "Staff nurse", None)


def test_a_staff_member_has_a_job_title() -> None:
    with pytest.raises(RuleViolated, match="a job title is required"):
        StaffMember.register("nurse-a", "ward-3", " ", None)


def test_registering_staff_keeps_the_job_title_in_the_state() -> None:
    nurse = staff_member()
    assert nurse.id == staff_stream("nurse-a")
    assert nurse.job_title == "Staff nurse"


def test_training_names_its_course() -> None:
    with pytest.raises(RuleViolated, match="a course name is required"):
        staff_member().record_training(training(course=""))


def test_a_certification_cannot_expire_before_it_was_gained() -> None:
    with pytest.raises(RuleViolated, match=r"the certification ends .* before it starts"):
        staff_member().record_training(training(valid_until=date(2026, 1, 9)))


@pytest.mark.parametrize(
    ("technique", "on", "certified"),
    [
        ("two-person-seated", date(2026, 1, 9), False),
        ("two-person-seated", date(2026, 1, 10), True),
        ("two-person-seated", date(2026, 6, 1), True),
        ("two-person-seated", date(2027, 1, 9), True),
        ("two-person-seated", date(2027, 1, 10), False),
        ("three-person-prone", date(2026, 6, 1), False),
    ],
    ids=["day-before", "first-day", "midway", "last-day", "day-after", "unlisted-technique"],
)
def test_certified_only_within_the_dates_and_for_the_listed_techniques(
    technique: str, on: date, certified: bool
) -> None:
    nurse = staff_member()
    nurse.record_training(training())
    assert nurse.certified_for(technique, on) is certified


def test_untrained_staff_are_certified_for_nothing() -> None:
    assert staff_member().certified_for("two-person-seated", date(2026, 6, 1)) is False


# --- technique catalogue -------------------------------------------------------------------


def technique(technique_id: str = "one-person-hold", **changes: Any) -> Technique:
    fields: dict[str, Any] = {
        "technique_id": technique_id,
        "name": "One-person hold",
        "rank": 3,
        "staff_required": 1,
    }
    return Technique.model_validate({**fields, **changes})


def test_a_catalogue_needs_at_least_one_technique() -> None:
    with pytest.raises(RuleViolated, match="at least one technique"):
        TechniqueCatalogue.publish(())


def test_catalogue_ids_are_unique() -> None:
    with pytest.raises(RuleViolated, match="technique ids must be unique"):
        TechniqueCatalogue.publish((technique("hold"), technique("hold", rank=4)))


def test_a_technique_id_is_a_slug() -> None:
    with pytest.raises(RuleViolated, match="invalid technique id"):
        TechniqueCatalogue.publish((technique("one person hold"),))


@pytest.mark.parametrize("staff", [-1, 4])
def test_a_technique_needs_zero_to_three_staff(staff: int) -> None:
    with pytest.raises(RuleViolated, match="staff_required must be 0-3"):
        TechniqueCatalogue.publish((technique(staff_required=staff),))


@pytest.mark.parametrize("staff", [0, 3])
def test_non_physical_and_three_person_techniques_are_accepted(staff: int) -> None:
    catalogue = TechniqueCatalogue.publish((technique(staff_required=staff),))
    assert catalogue.technique("one-person-hold").staff_required == staff


def test_a_techniques_rank_cannot_be_negative() -> None:
    with pytest.raises(RuleViolated, match="rank cannot be negative"):
        TechniqueCatalogue.publish((technique(rank=-1),))


def test_revising_the_catalogue_needs_a_reason() -> None:
    catalogue = TechniqueCatalogue.publish((technique(),))
    with pytest.raises(RuleViolated, match="a reason for revising the catalogue is required"):
        catalogue.revise((technique(), technique("escort")), "")


def test_a_revised_catalogue_replaces_the_techniques() -> None:
    catalogue = TechniqueCatalogue.publish((technique(),))
    catalogue.revise((technique("escort"),), "hold withdrawn by the board")
    assert set(catalogue.techniques) == {"escort"}


def test_an_unknown_technique_is_refused_naming_the_known_ones() -> None:
    catalogue = TechniqueCatalogue.publish((technique(), technique("escort")))
    with pytest.raises(RuleViolated, match=r"unknown technique 'prone' .*escort, one-person-hold"):
        catalogue.technique("prone")


def test_the_default_catalogue_loads() -> None:
    techniques = default_catalogue()
    assert len(techniques) >= 5
    assert TechniqueCatalogue.publish(techniques).technique("verbal-deescalation").rank == 0


def test_the_default_catalogue_runs_from_non_physical_to_three_person_holds() -> None:
    ranked = sorted(default_catalogue(), key=lambda t: t.rank)
    holds = [t for t in ranked if t.positions]

    assert ranked[0].staff_required == 0 and not ranked[0].types  # non-physical first
    assert [t.staff_required for t in holds] == sorted(t.staff_required for t in holds)
    assert holds[0].staff_required == 1
    assert holds[-1].staff_required == 3
    assert holds[-1].rank == max(t.rank for t in ranked)


def test_a_catalogue_parses_from_toml() -> None:
    text = """
[[technique]]
technique_id = "two-person-seated"
name = "Two-person seated hold"
rank = 5
staff_required = 2
types = ["11"]
positions = ["seated"]
"""
    (seated,) = parse_catalogue(text)
    assert seated.staff_required == 2
    assert seated.positions == ("seated",)


def test_a_catalogue_that_is_not_toml_is_refused() -> None:
    with pytest.raises(RuleViolated, match="not valid TOML"):
        parse_catalogue("[[technique]\nname = ")


def test_a_catalogue_without_technique_tables_is_refused() -> None:
    with pytest.raises(RuleViolated, match=r"needs \[\[technique\]\] tables"):
        parse_catalogue('technique = "hold"\n')


def test_a_catalogue_entry_of_the_wrong_shape_is_refused_as_a_rule() -> None:
    text = (
        '[[technique]]\ntechnique_id = "hold"\nname = "Hold"\nrank = "high"\nstaff_required = 1\n'
    )
    with pytest.raises(RuleViolated, match="technique catalogue entry 1: rank"):
        parse_catalogue(text)


def test_a_parsed_catalogue_is_checked_like_a_published_one() -> None:
    text = '[[technique]]\ntechnique_id = "hold"\nname = "Hold"\nrank = 1\nstaff_required = 5\n'
    with pytest.raises(RuleViolated, match="staff_required must be 0-3"):
        parse_catalogue(text)
