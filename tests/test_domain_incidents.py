"""The Incident aggregate's guards, without a database: build, command, inspect events and state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from domain.authorisations import Coverage
from domain.errors import RuleViolated
from domain.incidents import (
    Chemical,
    Incident,
    IncidentFacts,
    Intervention,
    StaffInvolved,
)
from domain.vocabulary import (
    DebriefType,
    InterventionType,
    Profile,
    Reason,
    Recipient,
    Route,
    SeclusionReview,
)

T0 = datetime(2026, 10, 5, 14, 30, tzinfo=UTC)
MH_UNIT = (Profile.UK_ENG_MH_UNIT,)
NARRATIVE = {
    "force_description": "Two staff used a standing hold for six minutes.",
    "outcome": "Calm within ten minutes; no injury.",
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def intervention(**changes: Any) -> Intervention:
    fields: dict[str, Any] = {
        "type": InterventionType.STANDING,
        "start": at(2),
        "end": at(8),
        "staff_count": 2,
        "staff": (StaffInvolved(staff_id="nurse-a"), StaffInvolved(staff_id="nurse-b")),
    }
    return Intervention.model_validate({**fields, **changes})


def facts(**changes: Any) -> IncidentFacts:
    fields: dict[str, Any] = {
        "place": "Ward 3 lounge",
        "occurred_start": T0,
        "occurred_end": at(10),
        "reason": Reason.VIOLENCE_TO_OTHERS,
        "interventions": (intervention(),),
        "de_escalation": ("verbal de-escalation", "offered a quiet space"),
    }
    return IncidentFacts.model_validate({**fields, **changes})


def record(
    incident_facts: IncidentFacts | None = None,
    profiles: tuple[Profile, ...] = MH_UNIT,
    **narrative: str | None,
) -> Incident:
    return Incident.record(
        uuid4(),
        "INC-0001",
        "ward-3",
        "P-0001",
        incident_facts or facts(),
        Coverage.NONE,
        profiles,
        **{**NARRATIVE, **narrative},
    )


def seclusion_incident() -> Incident:
    seclusion = intervention(type=InterventionType.SECLUSION, staff_count=0, staff=())
    return record(facts(interventions=(seclusion,)))


# --- recording ---------------------------------------------------------------------------


def test_recording_an_incident_emits_one_recorded_event_with_its_facts_and_narrative() -> None:
    incident = record()

    (event,) = incident.collect_events()
    assert isinstance(event, Incident.Recorded)
    assert event.TYPE == "incident.recorded"
    assert event.facts == facts()
    assert event.force_description == NARRATIVE["force_description"]
    assert incident.facts == facts()
    assert incident.fact_versions == {1}


def test_an_intervention_by_named_staff_counts_them() -> None:
    by_staff = Intervention.by_staff(
        ["nurse-a", "nurse-b"], type=InterventionType.STANDING, start=at(2), end=at(8)
    )
    assert by_staff == intervention()
    with pytest.raises(ValidationError):  # still validated: 21 staff is more than allowed
        Intervention.by_staff(
            [f"nurse-{n}" for n in range(21)],
            type=InterventionType.STANDING,
            start=at(2),
            end=at(8),
        )


def test_an_incident_cannot_end_before_it_starts() -> None:
    with pytest.raises(RuleViolated, match=r"the incident ends .* before it starts"):
        record(facts(occurred_end=T0 - timedelta(seconds=1)))


def test_an_incident_needs_a_place() -> None:
    with pytest.raises(RuleViolated, match="the place is required"):
        record(facts(place="   "))


def test_an_incident_records_at_least_one_intervention() -> None:
    with pytest.raises(RuleViolated, match="at least one intervention"):
        record(facts(interventions=()))


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1, 5), (2, 11)],
    ids=["starts-before-the-incident", "ends-after-the-incident"],
)
def test_an_intervention_must_fall_inside_the_incident_window(start: int, end: int) -> None:
    outside = intervention(start=at(start), end=at(end))
    with pytest.raises(RuleViolated, match="falls outside the incident's start and end"):
        record(facts(interventions=(outside,)))


def test_an_intervention_may_span_exactly_the_whole_incident() -> None:
    whole = intervention(start=T0, end=at(10))
    assert record(facts(interventions=(whole,))).facts == facts(interventions=(whole,))


def test_an_intervention_cannot_end_before_it_starts() -> None:
    with pytest.raises(RuleViolated, match=r"intervention 07 ends .* before it starts"):
        intervention(start=at(5), end=at(4))


def test_staff_count_cannot_be_smaller_than_the_staff_named() -> None:
    with pytest.raises(ValidationError, match="staff_count is smaller than the number of staff"):
        intervention(staff_count=1)


def test_staff_count_may_exceed_the_staff_named() -> None:
    assert intervention(staff_count=3).staff_count == 3


@pytest.mark.parametrize("count", [-1, 21])
def test_staff_count_is_between_zero_and_twenty(count: int) -> None:
    with pytest.raises(ValidationError, match="staff_count"):
        intervention(staff_count=count, staff=())


def test_chemical_restraint_needs_drug_dose_and_route() -> None:
    with pytest.raises(ValidationError, match="give drug, dose and route for chemical restraint"):
        intervention(type=InterventionType.RAPID_TRANQUILLISATION)


def test_chemical_details_are_refused_on_a_physical_restraint() -> None:
    with pytest.raises(ValidationError, match="and only then"):
        intervention(chemical=Chemical(drug="lorazepam", dose="1 mg", route=Route.INTRAMUSCULAR))


def test_chemical_restraint_with_its_details_is_accepted() -> None:
    chemical = Chemical(drug="lorazepam", dose="1 mg", route=Route.INTRAMUSCULAR)
    rt = intervention(type=InterventionType.RAPID_TRANQUILLISATION, chemical=chemical)
    assert rt.chemical == chemical


# --- times ------------------------------------------------------------------------------


def test_a_time_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match="must carry its UTC offset"):
        intervention(start=datetime(2026, 10, 5, 14, 32))


def test_a_time_with_an_offset_is_stored_in_utc() -> None:
    bst = timezone(timedelta(hours=1))
    local = datetime(2026, 10, 5, 15, 32, tzinfo=bst)

    stored = intervention(start=local).start

    assert stored.tzinfo is UTC
    assert stored == at(2)
    assert stored.hour == 14


def test_an_observation_time_with_an_offset_is_stored_in_utc() -> None:
    incident = record()
    incident.record_observation(
        datetime(2026, 10, 5, 16, 35, tzinfo=timezone(timedelta(hours=2))), "nurse-a", pulse=88
    )
    observation = incident.collect_events()[-1]
    assert isinstance(observation, Incident.ObservationRecorded)
    assert observation.observed_at == at(5)
    assert observation.observed_at.tzinfo is UTC


# --- statutory items per profile ----------------------------------------------------------


@pytest.mark.parametrize(
    ("narrative", "fact_changes", "item"),
    [
        ({"force_description": None}, {}, "a description of how force was used"),
        ({"force_description": "  "}, {}, "a description of how force was used"),
        ({"outcome": None}, {}, "the outcome"),
        ({}, {"de_escalation": ()}, "the efforts made to avoid force"),
        ({}, {"interventions": (intervention(staff=()),)}, "the staff who used force"),
    ],
    ids=["no-description", "blank-description", "no-outcome", "no-de-escalation", "no-staff"],
)
def test_a_mental_health_unit_refuses_a_record_without_a_statutory_item(
    narrative: dict[str, str | None], fact_changes: dict[str, Any], item: str
) -> None:
    with pytest.raises(RuleViolated) as refused:
        record(facts(**fact_changes), MH_UNIT, **narrative)
    assert f"{item}" in str(refused.value)
    assert "(required by uk-eng-mh-unit)" in str(refused.value)


def test_de_escalation_notes_alone_satisfy_the_efforts_to_avoid_force() -> None:
    incident = record(facts(de_escalation=()), de_escalation_notes="Talked for 20 minutes.")
    assert incident.facts is not None


def test_an_intervention_without_staff_needs_no_named_staff() -> None:
    alone = intervention(type=InterventionType.SECLUSION, staff_count=0, staff=())
    assert record(facts(interventions=(alone,))).facts is not None


def test_a_school_record_needs_the_antecedents() -> None:
    with pytest.raises(
        RuleViolated,
        match=r"what happened beforehand \(antecedents\) \(required by uk-eng-school\)",
    ):
        record(profiles=(Profile.UK_ENG_SCHOOL,))


def test_a_school_record_with_antecedents_is_accepted() -> None:
    incident = record(profiles=(Profile.UK_ENG_SCHOOL,), antecedents="Fire alarm at break.")
    assert incident.facts is not None


def test_a_missing_item_names_every_profile_that_requires_it() -> None:
    with pytest.raises(RuleViolated) as refused:
        record(profiles=(Profile.UK_ENG_SCHOOL, Profile.UK_SCO_SCHOOL))
    assert "(required by uk-eng-school, uk-sco-school)" in str(refused.value)


def test_a_cqc_only_service_requires_no_narrative() -> None:
    incident = record(
        profiles=(Profile.UK_ENG_CQC,), force_description=None, outcome=None, antecedents=None
    )
    assert incident.facts is not None


# --- follow-up: observations, seclusion reviews, notifications -----------------------------


def test_an_observation_cannot_precede_the_incident() -> None:
    incident = record()
    with pytest.raises(RuleViolated, match="an observation cannot be before the incident started"):
        incident.record_observation(at(-1), "nurse-a")


def test_an_observation_during_the_incident_is_recorded() -> None:
    incident = record()
    incident.record_observation(T0, "nurse-a", spo2=97)
    assert [type(e) for e in incident.collect_events()] == [
        Incident.Recorded,
        Incident.ObservationRecorded,
    ]


def test_a_seclusion_review_needs_a_seclusion() -> None:
    with pytest.raises(RuleViolated, match="no seclusion to review"):
        record().review_seclusion(SeclusionReview.MEDICAL_1H, at(30), ("dr-b",), True, None)


def test_a_school_seclusion_can_be_reviewed() -> None:
    seclusion = intervention(type=InterventionType.SCHOOL_SECLUSION, staff_count=0, staff=())
    incident = record(facts(interventions=(seclusion,)))
    incident.review_seclusion(SeclusionReview.NURSING_2H, at(30), ("nurse-a",), False, "calm")
    assert isinstance(incident.collect_events()[-1], Incident.SeclusionReviewed)


def test_a_seclusion_review_cannot_precede_the_incident() -> None:
    with pytest.raises(RuleViolated, match="a seclusion review cannot be before"):
        seclusion_incident().review_seclusion(
            SeclusionReview.MEDICAL_1H, at(-5), ("dr-b",), True, None
        )


def test_a_seclusion_review_names_its_reviewers() -> None:
    with pytest.raises(RuleViolated, match="name who carried out the review"):
        seclusion_incident().review_seclusion(SeclusionReview.MEDICAL_1H, at(30), (), True, None)


def test_a_notification_cannot_precede_the_incident() -> None:
    with pytest.raises(RuleViolated, match="a notification cannot be before the incident"):
        record().notify(Recipient.PARENT_CARER, at(-1), "phone", "nurse-a")


def test_a_notification_names_its_channel() -> None:
    with pytest.raises(RuleViolated, match="the channel"):
        record().notify(Recipient.PARENT_CARER, at(20), " ", "nurse-a")


def test_a_notification_sent_at_the_start_is_recorded() -> None:
    incident = record()
    incident.notify(Recipient.NEAREST_RELATIVE, T0, "phone", "nurse-a")
    sent = incident.collect_events()[-1]
    assert isinstance(sent, Incident.NotificationSent)
    assert sent.recipient is Recipient.NEAREST_RELATIVE


def test_withholding_a_notification_needs_a_reason() -> None:
    with pytest.raises(RuleViolated, match="the reason for withholding"):
        record().withhold_notification(Recipient.PARENT_CARER, at(30), "head-1", "")


def test_withholding_a_notification_needs_an_approver() -> None:
    with pytest.raises(RuleViolated, match="who approved withholding it"):
        record().withhold_notification(Recipient.PARENT_CARER, at(30), " ", "risk of harm")


def test_withholding_a_notification_cannot_precede_the_incident() -> None:
    with pytest.raises(RuleViolated, match="withhold a notification cannot be before"):
        record().withhold_notification(Recipient.PARENT_CARER, at(-1), "head-1", "risk of harm")


def test_a_withheld_notification_records_reason_and_approver() -> None:
    incident = record()
    incident.withhold_notification(Recipient.PARENT_CARER, at(30), "head-1", "risk of harm")
    withheld = incident.collect_events()[-1]
    assert isinstance(withheld, Incident.NotificationWithheld)
    assert (withheld.approver_staff_id, withheld.reason) == ("head-1", "risk of harm")


# --- debriefs and sign-off ----------------------------------------------------------------


def test_debrief_cannot_precede_the_end_of_the_incident() -> None:
    incident = record()
    with pytest.raises(RuleViolated, match="a debrief cannot precede the end of the incident"):
        incident.hold_debrief(uuid4(), DebriefType.IMMEDIATE, at(9), "nurse-c")


def test_debrief_at_the_end_of_the_incident_is_fine() -> None:
    incident = record()
    debrief_id = uuid4()
    incident.hold_debrief(debrief_id, DebriefType.IMMEDIATE, at(10), "nurse-c")
    assert incident.debriefs == {debrief_id: DebriefType.IMMEDIATE}


def test_debrief_names_its_facilitator() -> None:
    with pytest.raises(RuleViolated, match="the debrief's facilitator is required"):
        record().hold_debrief(uuid4(), DebriefType.STAFF, at(60), "")


def test_a_declined_debrief_cannot_precede_the_end_of_the_incident() -> None:
    with pytest.raises(RuleViolated, match="cannot precede the end"):
        record().decline_debrief(DebriefType.PERSON, at(5), "nurse-c", "asleep")


def test_a_declined_debrief_records_why() -> None:
    with pytest.raises(RuleViolated, match="the reason the debrief did not happen"):
        record().decline_debrief(DebriefType.PERSON, at(60), "nurse-c", "  ")


def test_a_declined_debrief_after_the_incident_is_recorded() -> None:
    incident = record()
    incident.decline_debrief(DebriefType.PERSON, at(60), "nurse-c", "declined, too upset")
    assert isinstance(incident.collect_events()[-1], Incident.DebriefDeclined)


def test_sign_off_cannot_precede_the_incident() -> None:
    with pytest.raises(RuleViolated, match="a sign-off cannot be before the incident started"):
        record().sign_off(at(-1), None, None)


def test_an_incident_is_signed_off_only_once() -> None:
    incident = record()
    incident.sign_off(at(120), at(100), None)
    assert incident.signed_off
    with pytest.raises(RuleViolated, match="already signed off"):
        incident.sign_off(at(180), None, None)


# --- corrections --------------------------------------------------------------------------


def test_a_correction_needs_a_reason() -> None:
    with pytest.raises(RuleViolated, match="the reason for the correction is required"):
        record().correct(1, " ", {"place": "Garden"})


def test_a_correction_changes_something() -> None:
    with pytest.raises(RuleViolated, match="must change at least one field"):
        record().correct(1, "typo", {})


@pytest.mark.parametrize("field", ["person_id", "coverage", "force_description"])
def test_only_the_facts_are_correctable(field: str) -> None:
    with pytest.raises(RuleViolated, match=f"cannot correct \\['{field}'\\]"):
        record().correct(1, "wrong", {field: "x"})


def test_a_correction_must_name_a_version_that_states_facts() -> None:
    incident = record()
    incident.record_observation(at(5), "nurse-a")  # version 2: an observation, not facts
    with pytest.raises(RuleViolated, match=r"\(version 1\), not version 2"):
        incident.correct(2, "wrong place", {"place": "Garden"})


@pytest.mark.parametrize("version", [0, 7])
def test_a_correction_cannot_name_a_version_that_does_not_exist(version: int) -> None:
    with pytest.raises(RuleViolated, match=f"not version {version}"):
        record().correct(version, "wrong place", {"place": "Garden"})


def test_a_correction_may_correct_an_earlier_correction() -> None:
    incident = record()
    incident.correct(1, "wrong place", {"place": "Garden"})
    incident.correct(2, "still wrong", {"place": "Courtyard"})

    last = incident.collect_events()[-1]
    assert isinstance(last, Incident.Corrected)
    assert last.corrects_version == 2
    assert incident.fact_versions == {1, 2, 3}
    assert incident.facts is not None and incident.facts.place == "Courtyard"


def test_corrected_facts_are_checked_again() -> None:
    with pytest.raises(RuleViolated, match=r"the incident ends .* before it starts"):
        record().correct(1, "wrong end", {"occurred_end": at(-30)})


def test_a_correction_cannot_move_an_intervention_outside_the_incident() -> None:
    with pytest.raises(RuleViolated, match="falls outside"):
        record().correct(1, "wrong end", {"occurred_end": at(5)})


def test_a_correction_that_changes_an_interventions_type_is_applied_to_the_state() -> None:
    incident = record()
    supine = intervention(type=InterventionType.SUPINE)

    incident.correct(1, "it was a supine hold", {"interventions": (supine,)})

    assert incident.facts is not None
    assert incident.facts.interventions[0].type is InterventionType.SUPINE
    corrected = incident.collect_events()[-1]
    assert isinstance(corrected, Incident.Corrected)
    assert corrected.changed == ("interventions",)
    assert corrected.facts.interventions == (supine,)


def test_a_correction_keeps_the_coverage_unless_given_a_new_one() -> None:
    incident = record()
    incident.correct(1, "wrong place", {"place": "Garden"})
    kept = incident.coverage
    incident.correct(2, "authorised after all", {"authorisation_id": "AUTH-1"}, Coverage.VALID)
    assert (kept, incident.coverage) == (Coverage.NONE, Coverage.VALID)


def test_replaying_the_events_rebuilds_the_corrected_incident() -> None:
    incident = record()
    incident.correct(1, "it was a supine hold", {"interventions": (intervention(type="09"),)})
    incident.sign_off(at(120), None, None)

    rebuilt: Any = None
    for event in incident.collect_events():
        rebuilt = event.mutate(rebuilt)

    assert rebuilt.facts == incident.facts
    assert rebuilt.fact_versions == {1, 2}
    assert rebuilt.signed_off
