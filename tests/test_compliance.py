"""Compliance rules over states folded from real domain events, at explicit `as_of` times."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import pytest

from domain.authorisations import Authorisation, Coverage, Scope
from domain.errors import InvalidValue
from domain.events import Aggregate, DomainEvent, stream_id
from domain.incidents import Incident, IncidentFacts, Injury, Intervention, StaffInvolved
from domain.people import Person
from domain.plans import BehaviourSupportPlan, PlanContent, RevisionReason, Tertiary
from domain.services import Service
from domain.staff import StaffMember, Training
from domain.vocabulary import (
    AgeBand,
    AuthorisationKind,
    DebriefType,
    InjuredPerson,
    InterventionType,
    Position,
    Profile,
    Reason,
    Recipient,
    SeclusionReview,
    Setting,
    Severity,
)
from projections.compliance import (
    RULES,
    Finding,
    ProfileError,
    RuleSpec,
    Status,
    evaluate,
    load_profiles,
    parse_profile,
)
from projections.fold import fold
from projections.model import State

T0 = datetime(2026, 10, 5, 14, 30, tzinfo=UTC)  # a Monday
END = T0 + timedelta(minutes=10)  # the default incident's end
SERVICE = "svc"
PERSON = "P-0001"
ACTOR = "tester"
ONE_HOUR = timedelta(hours=1)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules.md"

MH = Profile.UK_ENG_MH_UNIT
ENG_SCHOOL = Profile.UK_ENG_SCHOOL
SCO_SCHOOL = Profile.UK_SCO_SCHOOL
WAL_SCHOOL = Profile.UK_WAL_SCHOOL
HOME = Profile.UK_ENG_CHILDRENS_HOME
CQC = Profile.UK_ENG_CQC
CMS = Profile.US_CMS_HOSPITAL

SETTING = {
    MH: Setting.MENTAL_HEALTH_UNIT,
    ENG_SCHOOL: Setting.SCHOOL,
    SCO_SCHOOL: Setting.SCHOOL,
    WAL_SCHOOL: Setting.SCHOOL,
    HOME: Setting.CHILDRENS_HOME,
    CQC: Setting.CARE_HOME,
    CMS: Setting.ACUTE_HOSPITAL,
}
APPROVED = ("verbal-deescalation", "one-person-hold", "two-person-seated", "seclusion-room")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    return timedelta(days=n)


# --- building states from domain events -----------------------------------------------------


@dataclass
class World:
    """The events of one service, folded on demand."""

    profiles: tuple[Profile, ...]
    events: list[tuple[DomainEvent, str]] = field(default_factory=list)
    plan: BehaviourSupportPlan | None = None

    def add(self, aggregate: Aggregate) -> None:
        for event in aggregate.collect_events():
            assert isinstance(event, DomainEvent)
            self.events.append((event, ACTOR))

    def state(self) -> State:
        return fold(self.events)


def plan_content(**tertiary: Any) -> PlanContent:
    fields: dict[str, Any] = {
        "approved_techniques": APPROVED,
        "excluded_positions": (Position.PRONE,),
        **tertiary,
    }
    return PlanContent(
        primary=("predictable routine",),
        secondary=("offer the quiet room",),
        tertiary=Tertiary.model_validate(fields),
        recovery=("debrief with key worker",),
        review_due=date(2027, 1, 1),
    )


def setting(
    *profiles: Profile,
    age: AgeBand | None = AgeBand.ADULT,
    plan: bool = True,
    trained: tuple[str, ...] = APPROVED,
) -> World:
    world = World(profiles)
    service = Service.register(SERVICE, "Test service", SETTING[profiles[0]], profiles)
    world.add(service)
    world.add(Person.register(PERSON, SERVICE, age_band=age))
    nurse = StaffMember.register("nurse-a", SERVICE, "Staff nurse", None)
    nurse.record_training(
        Training(
            course="CALM Physical Skills",
            curriculum="CALM",
            techniques=trained,
            completed_on=date(2026, 1, 10),
            valid_until=date(2027, 1, 9),
            provider="CALM Training",
        )
    )
    world.add(nurse)
    if plan:
        world.plan = BehaviourSupportPlan.publish(PERSON, plan_content(), T0 - days(30))
        world.add(world.plan)
    return world


def hold(**changes: Any) -> Intervention:
    fields: dict[str, Any] = {
        "type": InterventionType.STANDING,
        "technique_id": "one-person-hold",
        "position": Position.STANDING,
        "start": T0 + minutes(2),
        "end": T0 + minutes(8),
        "staff_count": 1,
        "staff": (StaffInvolved(staff_id="nurse-a"),),
    }
    return Intervention.model_validate({**fields, **changes})


def seclusion(start: timedelta, length: timedelta) -> Intervention:
    return Intervention(
        type=InterventionType.SECLUSION,
        technique_id="seclusion-room",
        start=T0 + start,
        end=T0 + start + length,
        staff_count=0,
    )


def record(
    world: World,
    ref: str = "INC-0001",
    *,
    start: datetime = T0,
    end: datetime | None = None,
    interventions: tuple[Intervention, ...] | None = None,
    coverage: Coverage = Coverage.NONE,
    part_of_care_plan: bool = False,
    authorisation_id: str | None = None,
    injuries: tuple[Injury, ...] = (),
    recorded_after: timedelta = ONE_HOUR,
) -> Incident:
    """Record an incident; its record is signed `recorded_after` its end."""
    end = end or start + minutes(10)
    facts = IncidentFacts(
        place="Lounge",
        occurred_start=start,
        occurred_end=end,
        reason=Reason.VIOLENCE_TO_OTHERS,
        interventions=interventions or (hold(start=start + minutes(2), end=start + minutes(8)),),
        de_escalation=("verbal de-escalation",),
        injuries=injuries,
        part_of_care_plan=part_of_care_plan,
        authorisation_id=authorisation_id,
    )
    incident = Incident.record(
        stream_id("incident", ref),
        ref,
        SERVICE,
        PERSON,
        facts,
        coverage,
        world.profiles,
        antecedents="Raised voices in the lounge.",
        force_description="A one-person standing hold.",
        outcome="Calm within ten minutes.",
    )
    (recorded,) = incident.collect_events()
    assert isinstance(recorded, Incident.Recorded)
    world.events.append((recorded.model_copy(update={"timestamp": end + recorded_after}), ACTOR))
    return incident


DUTIES = frozenset(
    {
        "immediate",
        "person",
        "review",
        "parent",
        "observation",
        "sign-off",
        "spoke-to-child",
        "plan-review",
    }
)


def follow_up(world: World, incident: Incident, *, skip: frozenset[str] = frozenset()) -> None:
    """Do every post-incident duty on time, except those named in `skip`."""
    assert skip <= DUTIES, f"unknown duties {skip - DUTIES}"
    assert incident.facts is not None
    start, end = incident.facts.occurred_start, incident.facts.occurred_end
    for name, kind, after in (
        ("immediate", DebriefType.IMMEDIATE, hours(1)),
        ("person", DebriefType.PERSON, hours(24)),
        ("review", DebriefType.POST_INCIDENT_REVIEW, hours(48)),
    ):
        if name not in skip:
            debrief(incident, kind, end + after)
    if "parent" not in skip:
        incident.notify(Recipient.PARENT_CARER, end + hours(2), "phone", "head")
    if "observation" not in skip:
        incident.record_observation(start + minutes(30), "nurse-a", pulse=80)
    if "sign-off" not in skip:
        spoke_to_child = None if "spoke-to-child" in skip else end + hours(48)
        incident.sign_off(end + hours(24), end + hours(20), spoke_to_child)
    world.add(incident)
    if "plan-review" not in skip:
        review_plan(world, incident, end + days(2))


def debrief(incident: Incident, kind: DebriefType, at: datetime) -> None:
    ident = uuid5(NAMESPACE_URL, f"{incident.incident_ref}:{kind.value}:{at.isoformat()}")
    incident.hold_debrief(ident, kind, at, "ward-manager")


def review_plan(world: World, incident: Incident, at: datetime) -> None:
    assert world.plan is not None
    reason = RevisionReason(incidents=(incident.id,), note="reviewed after the incident")
    world.plan.review_unchanged(reason, at, date(2027, 1, 1))
    world.add(world.plan)


def grant_order(world: World, ref: str, length: timedelta, start: datetime = T0) -> None:
    order = Authorisation.grant(
        stream_id("authorisation", ref),
        ref,
        AuthorisationKind.ORDER,
        SERVICE,
        Scope(person_id=PERSON),
        "dr-a",
        "attending physician",
        start - minutes(5),
        start - minutes(5) + length,
    )
    world.add(order)


def compliant(profile: Profile) -> tuple[World, Incident]:
    """An incident with every duty of the profile met on time."""
    world = setting(profile)
    if profile is CMS:
        grant_order(world, "ORD-1", hours(1))
        incident = record(world, coverage=Coverage.VALID, authorisation_id="ORD-1")
    else:
        incident = record(world)
    follow_up(world, incident)
    return world, incident


def found(state: State, as_of: datetime, rule_id: str) -> list[Finding]:
    return [f for f in evaluate(state, as_of) if f.rule_id == rule_id]


def statuses(state: State, as_of: datetime, rule_id: str) -> list[Status]:
    return [f.status for f in found(state, as_of, rule_id)]


LATER = END + days(30)  # after every default deadline


# --- baseline, determinism and time ---------------------------------------------------------


@pytest.mark.parametrize("profile", list(Profile))
def test_a_fully_compliant_incident_has_no_findings_in_any_profile(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert evaluate(world.state(), LATER) == []


def test_same_events_and_same_as_of_give_the_same_findings() -> None:
    world = setting(MH)
    for n in range(3):
        incident = record(world, f"INC-{n}", start=T0 + days(n), interventions=None)
        follow_up(world, incident, skip=frozenset({"person", "review"}))
    as_of = T0 + days(2) + hours(30)

    first = evaluate(fold(world.events), as_of)
    second = evaluate(fold(list(world.events)), as_of)

    assert first == second
    assert first == evaluate(world.state(), as_of)
    keys = [(f.service_id, f.rule_id, f.subject) for f in first]
    assert keys == sorted(keys)
    assert {f.rule_id for f in first} >= {"debrief.person", "debrief.post-incident-review"}


def test_an_open_finding_becomes_overdue_when_as_of_passes_its_due_time() -> None:
    world = setting(MH)
    follow_up(world, record(world), skip=frozenset({"review"}))
    state = world.state()

    (before,) = found(state, END + hours(71), "debrief.post-incident-review")
    (after,) = found(state, END + hours(73), "debrief.post-incident-review")

    assert before.status is Status.OPEN
    assert after.status is Status.OVERDUE
    assert before.due_at == after.due_at == END + hours(72)
    assert "is due by 2026-10-08 14:40 UTC" in before.message
    assert "is 1 h overdue" in after.message


def test_a_duty_done_after_as_of_has_not_happened_yet_as_of_then() -> None:
    world = setting(MH)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"person"}))
    debrief(incident, DebriefType.PERSON, END + hours(50))
    world.add(incident)
    state = world.state()

    assert statuses(state, END + hours(49), "debrief.person") == [Status.OPEN]
    assert statuses(state, END + hours(51), "debrief.person") == []


def test_an_incident_that_starts_after_as_of_is_not_evaluated() -> None:
    world, _ = compliant(MH)
    record(world, "INC-LATER", start=T0 + days(10), interventions=None)
    assert evaluate(world.state(), T0 + days(9)) == []


def test_findings_are_limited_to_one_service_when_asked() -> None:
    world = setting(MH)
    record(world)
    state = world.state()
    assert evaluate(state, LATER, service_id=SERVICE) == evaluate(state, LATER)
    with pytest.raises(InvalidValue, match="unknown service 'nowhere'"):
        evaluate(state, LATER, service_id="nowhere")


def test_as_of_must_carry_a_utc_offset() -> None:
    with pytest.raises(InvalidValue, match="as_of must carry its UTC offset"):
        evaluate(State(), datetime(2026, 10, 5, 12, 0))


def test_a_rule_shared_by_two_profiles_of_one_service_is_checked_once() -> None:
    world = setting(MH, CQC)
    serious = Injury(
        person=InjuredPerson.SUBJECT, description="fracture", severity=Severity.SERIOUS
    )
    follow_up(world, record(world, injuries=(serious,)))
    assert statuses(world.state(), LATER, "regulator.serious-injury") == [Status.OVERDUE]


# --- restraint.max-duration -----------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL])
def test_restraint_over_ten_minutes_is_a_breach(profile: Profile) -> None:
    world = setting(profile)
    long_hold = hold(start=T0 + minutes(1), end=T0 + minutes(12))
    follow_up(world, record(world, end=T0 + minutes(15), interventions=(long_hold,)))

    (finding,) = found(world.state(), LATER, "restraint.max-duration")

    assert finding.status is Status.BREACH
    assert finding.subject == "INC-0001"
    assert finding.due_at is None
    assert "lasted 11 minutes, over the 10-minute review threshold" in finding.message
    assert "NICE NG10" in finding.source


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL])
def test_restraint_of_exactly_ten_minutes_is_not_a_breach(profile: Profile) -> None:
    world = setting(profile)
    ten = hold(start=T0, end=T0 + minutes(10))
    follow_up(world, record(world, interventions=(ten,)))
    assert found(world.state(), LATER, "restraint.max-duration") == []


def test_a_long_seclusion_is_not_a_long_manual_restraint() -> None:
    world = setting(MH)
    record(world, end=T0 + minutes(50), interventions=(seclusion(minutes(0), minutes(50)),))
    assert found(world.state(), LATER, "restraint.max-duration") == []


# --- restraint.prone ------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, HOME])
def test_any_prone_restraint_is_a_breach(profile: Profile) -> None:
    world = setting(profile)
    prone = hold(type=InterventionType.PRONE, technique_id="three-person-prone", position=None)
    follow_up(world, record(world, interventions=(prone,)))

    (finding,) = found(world.state(), LATER, "restraint.prone")

    assert finding.status is Status.BREACH
    assert "Prone (face-down) restraint was used in INC-0001 for 6 minutes" in finding.message


def test_prone_over_the_alert_mark_says_so() -> None:
    world = setting(MH)
    prone = hold(position=Position.PRONE, start=T0, end=T0 + minutes(12))
    record(world, end=T0 + minutes(12), interventions=(prone,))
    (finding,) = found(world.state(), LATER, "restraint.prone")
    assert "over the 10-minute high-alert mark" in finding.message


@pytest.mark.parametrize("profile", [MH, HOME])
def test_a_standing_hold_is_not_prone(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert found(world.state(), LATER, "restraint.prone") == []


# --- debriefs -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, SCO_SCHOOL])
def test_a_missing_immediate_debrief_is_open_then_overdue(profile: Profile) -> None:
    world = setting(profile)
    follow_up(world, record(world), skip=frozenset({"immediate"}))
    state = world.state()
    assert statuses(state, END + hours(2), "debrief.immediate") == [Status.OPEN]
    assert statuses(state, END + hours(4), "debrief.immediate") == [Status.OVERDUE]


@pytest.mark.parametrize("profile", [MH, SCO_SCHOOL])
def test_an_immediate_debrief_within_three_hours_is_met(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert found(world.state(), LATER, "debrief.immediate") == []


@pytest.mark.parametrize("profile", [MH, SCO_SCHOOL])
def test_a_person_debrief_held_late_is_met_late(profile: Profile) -> None:
    world = setting(profile)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"person"}))
    debrief(incident, DebriefType.PERSON, END + hours(80))
    world.add(incident)

    (finding,) = found(world.state(), LATER, "debrief.person")

    assert finding.status is Status.MET_LATE
    assert finding.due_at == END + hours(72)
    assert "was done 8 h late" in finding.message


@pytest.mark.parametrize("profile", [MH, SCO_SCHOOL])
def test_a_declined_person_debrief_with_a_reason_counts_as_met(profile: Profile) -> None:
    world = setting(profile)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"person"}))
    incident.decline_debrief(DebriefType.PERSON, END + hours(5), "nurse-a", "did not want to talk")
    world.add(incident)
    assert found(world.state(), LATER, "debrief.person") == []


def test_a_missing_post_incident_review_is_overdue_after_72_hours() -> None:
    world = setting(MH)
    follow_up(world, record(world), skip=frozenset({"review"}))
    assert statuses(world.state(), END + hours(73), "debrief.post-incident-review") == [
        Status.OVERDUE
    ]


def test_a_formal_debrief_in_scotland_has_seven_days() -> None:
    world = setting(SCO_SCHOOL)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"review"}))
    debrief(incident, DebriefType.AFTER_ACTION_REVIEW, END + days(6))
    world.add(incident)
    assert found(world.state(), LATER, "debrief.post-incident-review") == []


def test_debrief_rules_do_not_apply_to_an_english_school() -> None:
    world = setting(ENG_SCHOOL)
    follow_up(world, record(world), skip=frozenset({"immediate", "person", "review"}))
    assert [f for f in evaluate(world.state(), LATER) if f.rule_id.startswith("debrief.")] == []


# --- plan.review-after-incident -------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL])
def test_a_plan_not_reviewed_after_an_incident_is_open_then_overdue(profile: Profile) -> None:
    world = setting(profile)
    follow_up(world, record(world), skip=frozenset({"plan-review"}))
    state = world.state()
    (open_,) = found(state, END + days(6), "plan.review-after-incident")
    assert open_.status is Status.OPEN
    assert open_.due_at == END + days(7)
    assert statuses(state, END + days(8), "plan.review-after-incident") == [Status.OVERDUE]


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL])
def test_a_plan_revision_naming_the_incident_within_seven_days_is_met(profile: Profile) -> None:
    world = setting(profile)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"plan-review"}))
    assert world.plan is not None
    reason = RevisionReason(incidents=(incident.id,), note="add a sensory break before lunch")
    world.plan.revise(plan_content(), reason, END + days(3))
    world.add(world.plan)
    assert found(world.state(), LATER, "plan.review-after-incident") == []


def test_a_plan_review_naming_another_incident_does_not_count() -> None:
    world = setting(MH)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"plan-review"}))
    other = record(world, "INC-0002", start=T0 + hours(1))
    review_plan(world, other, END + days(2))
    (finding,) = found(world.state(), END + days(8), "plan.review-after-incident")
    assert (finding.subject, finding.status) == ("INC-0001", Status.OVERDUE)


def test_a_plan_review_after_seven_days_is_met_late() -> None:
    world = setting(ENG_SCHOOL)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"plan-review"}))
    review_plan(world, incident, END + days(9))
    assert statuses(world.state(), LATER, "plan.review-after-incident") == [Status.MET_LATE]


def test_without_a_plan_the_review_finding_says_so() -> None:
    world = setting(ENG_SCHOOL, plan=False)
    follow_up(world, record(world), skip=frozenset({"plan-review"}))
    (finding,) = found(world.state(), LATER, "plan.review-after-incident")
    assert "no behaviour support plan on record" in finding.message


# --- plan.technique-within-plan -------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, HOME])
def test_an_excluded_position_is_outside_the_plan(profile: Profile) -> None:
    world = setting(profile)
    prone = hold(type=InterventionType.PRONE, technique_id="three-person-prone", position=None)
    follow_up(world, record(world, interventions=(prone,)))

    (finding,) = found(world.state(), LATER, "plan.technique-within-plan")

    assert finding.status is Status.BREACH
    assert "technique three-person-prone is not among the plan's approved techniques" in (
        finding.message
    )
    assert "the prone position is excluded by the plan" in finding.message


def test_an_excluded_technique_is_outside_the_plan() -> None:
    world = World((MH,))
    world.add(Service.register(SERVICE, "Ward", Setting.MENTAL_HEALTH_UNIT, (MH,)))
    content = plan_content(
        approved_techniques=("two-person-seated",), excluded_techniques=("one-person-hold",)
    )
    world.add(BehaviourSupportPlan.publish(PERSON, content, T0 - days(1)))
    record(world)
    (finding,) = found(world.state(), LATER, "plan.technique-within-plan")
    assert "technique one-person-hold is excluded by the plan" in finding.message


def test_a_hold_longer_than_the_plans_maximum_is_outside_the_plan() -> None:
    world = World((ENG_SCHOOL,))
    world.add(Service.register(SERVICE, "School", Setting.SCHOOL, (ENG_SCHOOL,)))
    world.add(BehaviourSupportPlan.publish(PERSON, plan_content(max_minutes=5), T0 - days(1)))
    record(world)
    (finding,) = found(world.state(), LATER, "plan.technique-within-plan")
    assert "standing lasted 6 minutes, over the plan's 5-minute maximum" in finding.message


@pytest.mark.parametrize("profile", [MH, HOME])
def test_an_approved_technique_is_within_the_plan(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert found(world.state(), LATER, "plan.technique-within-plan") == []


def test_planned_use_without_a_plan_in_force_is_a_breach() -> None:
    world = setting(MH, plan=False)
    record(world, part_of_care_plan=True, coverage=Coverage.VALID, authorisation_id="A-1")
    (finding,) = found(world.state(), LATER, "plan.technique-within-plan")
    assert "no plan was in force when it started" in finding.message


def test_a_plan_revised_after_the_incident_is_named_as_such() -> None:
    world = setting(MH)
    incident = record(world)
    follow_up(world, incident)
    assert world.plan is not None
    stricter = plan_content(approved_techniques=("two-person-seated",))
    world.plan.revise(stricter, RevisionReason(note="no standing holds"), END + days(3))
    world.add(world.plan)
    (finding,) = found(world.state(), LATER, "plan.technique-within-plan")
    assert "checked against revision 2, made after the incident" in finding.message


# --- authorisation.valid --------------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, HOME])
@pytest.mark.parametrize("coverage", [Coverage.EXPIRED, Coverage.OUT_OF_SCOPE, Coverage.REVOKED])
def test_use_outside_its_authorisation_is_a_breach(profile: Profile, coverage: Coverage) -> None:
    world = setting(profile)
    follow_up(world, record(world, coverage=coverage, authorisation_id="A-1"))
    (finding,) = found(world.state(), LATER, "authorisation.valid")
    assert finding.status is Status.BREACH
    assert f"authorisation A-1 did not cover it ({coverage.value})" in finding.message


def test_planned_use_without_an_authorisation_is_a_breach() -> None:
    world = setting(ENG_SCHOOL)
    follow_up(world, record(world, part_of_care_plan=True))
    (finding,) = found(world.state(), LATER, "authorisation.valid")
    assert "recorded as part of the care plan but has no valid authorisation (none)" in (
        finding.message
    )


@pytest.mark.parametrize("profile", [MH, HOME])
def test_emergency_use_needs_no_authorisation_in_the_uk(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert found(world.state(), LATER, "authorisation.valid") == []


def test_every_use_needs_an_order_under_cms() -> None:
    world = setting(CMS)
    follow_up(world, record(world))
    (finding,) = found(world.state(), LATER, "authorisation.valid")
    assert "every use needs a valid order or authorisation" in finding.message


# --- training.current -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", [MH, CMS, ENG_SCHOOL])
def test_a_technique_the_staff_member_is_not_trained_in_is_a_breach(profile: Profile) -> None:
    world = setting(profile, trained=("verbal-deescalation",))
    follow_up(world, record(world))
    (finding,) = found(world.state(), LATER, "training.current")
    assert finding.status is Status.BREACH
    assert finding.subject == "nurse-a"
    assert "nurse-a used one-person-hold in INC-0001 without current training" in finding.message


def test_training_that_expired_before_the_intervention_is_not_current() -> None:
    world = setting(MH)
    later = T0 + days(400)  # the training is valid until 2027-01-09
    follow_up(world, record(world, "INC-LATE", start=later))
    assert [f.subject for f in found(world.state(), later + days(30), "training.current")] == [
        "nurse-a"
    ]


def test_a_staff_member_with_no_record_is_not_trained() -> None:
    world = setting(MH)
    stranger = hold(staff=(StaffInvolved(staff_id="agency-1"),))
    record(world, interventions=(stranger,))
    (finding,) = found(world.state(), LATER, "training.current")
    assert "agency-1 (no staff record) used one-person-hold" in finding.message


@pytest.mark.parametrize("profile", [MH, CMS, ENG_SCHOOL])
def test_staff_trained_in_date_for_the_technique_raise_nothing(profile: Profile) -> None:
    world, _ = compliant(profile)
    assert found(world.state(), LATER, "training.current") == []


# --- notification.parent-carer --------------------------------------------------------------


@pytest.mark.parametrize("profile", [ENG_SCHOOL, SCO_SCHOOL, HOME])
def test_parents_not_told_within_24_hours_is_overdue(profile: Profile) -> None:
    world = setting(profile, age=AgeBand.AGE_9_TO_17)
    follow_up(world, record(world), skip=frozenset({"parent"}))
    state = world.state()
    assert statuses(state, END + hours(23), "notification.parent-carer") == [Status.OPEN]
    (overdue,) = found(state, END + hours(25), "notification.parent-carer")
    assert overdue.status is Status.OVERDUE
    assert "Notifying the parent-carer of INC-0001" in overdue.message


@pytest.mark.parametrize("profile", [ENG_SCHOOL, SCO_SCHOOL, HOME])
def test_a_notification_withheld_with_a_reason_counts_as_met(profile: Profile) -> None:
    world = setting(profile, age=AgeBand.AGE_9_TO_17)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"parent"}))
    incident.withhold_notification(
        Recipient.PARENT_CARER, END + hours(3), "head", "risk of significant harm at home"
    )
    world.add(incident)
    assert found(world.state(), LATER, "notification.parent-carer") == []


def test_a_late_parent_notification_is_met_late() -> None:
    world = setting(ENG_SCHOOL)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"parent"}))
    incident.notify(Recipient.PARENT_CARER, END + hours(30), "letter", "head")
    world.add(incident)
    assert statuses(world.state(), LATER, "notification.parent-carer") == [Status.MET_LATE]


def test_cms_guardian_notification_applies_to_minors_only() -> None:
    adult = setting(CMS, age=AgeBand.ADULT)
    minor = setting(CMS, age=AgeBand.UNDER_9)
    unknown = setting(CMS, age=None)
    for world in (adult, minor, unknown):
        follow_up(world, record(world), skip=frozenset({"parent"}))

    assert found(adult.state(), LATER, "notification.parent-carer") == []
    assert statuses(minor.state(), LATER, "notification.parent-carer") == [Status.OVERDUE]
    (finding,) = found(unknown.state(), LATER, "notification.parent-carer")
    assert "age band is not recorded" in finding.message


# --- Ofsted reg 35 --------------------------------------------------------------------------


def test_a_childrens_home_record_made_after_24_hours_is_met_late() -> None:
    world = setting(HOME)
    follow_up(world, record(world, recorded_after=hours(30)))
    (finding,) = found(world.state(), LATER, "ofsted.reg35-record")
    assert finding.status is Status.MET_LATE
    assert "The written record of INC-0001 was done 6 h late" in finding.message


def test_a_childrens_home_record_within_24_hours_is_met() -> None:
    world, _ = compliant(HOME)
    assert found(world.state(), LATER, "ofsted.reg35-record") == []


def test_a_record_not_yet_signed_at_as_of_is_open_in_a_replay() -> None:
    world = setting(HOME)
    follow_up(world, record(world, recorded_after=hours(30)))
    assert statuses(world.state(), END + hours(20), "ofsted.reg35-record") == [Status.OPEN]


def test_no_sign_off_within_48_hours_is_overdue() -> None:
    world = setting(HOME)
    follow_up(world, record(world), skip=frozenset({"sign-off"}))
    state = world.state()
    assert statuses(state, END + hours(47), "ofsted.reg35-sign-off") == [Status.OPEN]
    assert statuses(state, END + hours(49), "ofsted.reg35-sign-off") == [Status.OVERDUE]


def test_a_sign_off_without_speaking_to_the_staff_is_not_met() -> None:
    world = setting(HOME)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"sign-off"}))
    incident.sign_off(END + hours(10), None, END + hours(20))
    world.add(incident)
    (finding,) = found(world.state(), LATER, "ofsted.reg35-sign-off")
    assert finding.status is Status.OVERDUE
    assert "without a record of speaking to the staff involved" in finding.message


def test_a_sign_off_within_48_hours_is_met() -> None:
    world, _ = compliant(HOME)
    assert found(world.state(), LATER, "ofsted.reg35-sign-off") == []


def test_not_speaking_to_the_child_within_five_days_is_overdue() -> None:
    world = setting(HOME)
    follow_up(world, record(world), skip=frozenset({"spoke-to-child"}))
    state = world.state()
    assert statuses(state, END + days(4), "ofsted.reg35-spoke-to-child") == [Status.OPEN]
    assert statuses(state, END + days(6), "ofsted.reg35-spoke-to-child") == [Status.OVERDUE]


def test_speaking_to_the_child_within_five_days_is_met() -> None:
    world, _ = compliant(HOME)
    assert found(world.state(), LATER, "ofsted.reg35-spoke-to-child") == []


def test_reg35_rules_do_not_apply_outside_childrens_homes() -> None:
    world = setting(MH)
    follow_up(world, record(world, recorded_after=days(3)), skip=frozenset({"sign-off"}))
    assert [f for f in evaluate(world.state(), LATER) if f.rule_id.startswith("ofsted.")] == []


# --- regulator.serious-injury ---------------------------------------------------------------

SERIOUS = Injury(
    person=InjuredPerson.SUBJECT, description="fractured wrist", severity=Severity.SERIOUS
)
DEATH = Injury(person=InjuredPerson.SUBJECT, description="died", severity=Severity.DEATH)


@pytest.mark.parametrize("profile", [MH, CQC])
def test_a_serious_injury_not_notified_to_cqc_is_overdue(profile: Profile) -> None:
    world = setting(profile)
    follow_up(world, record(world, injuries=(SERIOUS,)))
    (finding,) = found(world.state(), END + hours(25), "regulator.serious-injury")
    assert finding.status is Status.OVERDUE
    assert "Notifying CQC of a serious injury in INC-0001" in finding.message


@pytest.mark.parametrize("profile", [MH, CQC])
def test_a_serious_injury_notified_to_cqc_the_same_day_is_met(profile: Profile) -> None:
    world = setting(profile)
    incident = record(world, injuries=(SERIOUS,))
    incident.notify(Recipient.CQC, END + hours(5), "portal", "ward-manager")
    follow_up(world, incident)
    assert found(world.state(), LATER, "regulator.serious-injury") == []


def test_a_minor_injury_needs_no_regulator_notification() -> None:
    world = setting(MH)
    minor = Injury(person=InjuredPerson.STAFF, description="graze", severity=Severity.MINOR)
    follow_up(world, record(world, injuries=(minor,)))
    assert found(world.state(), LATER, "regulator.serious-injury") == []


def test_a_death_is_due_to_cms_by_close_of_the_next_business_day() -> None:
    friday = datetime(2026, 10, 9, 14, 30, tzinfo=UTC)
    world = setting(CMS)
    grant_order(world, "ORD-1", hours(1), start=friday)
    incident = record(
        world, start=friday, coverage=Coverage.VALID, authorisation_id="ORD-1", injuries=(DEATH,)
    )
    follow_up(world, incident)
    monday_close = datetime(2026, 10, 12, 17, 0, tzinfo=UTC)

    (open_,) = found(world.state(), monday_close - hours(1), "regulator.serious-injury")
    assert open_.status is Status.OPEN
    assert open_.due_at == monday_close
    assert "Notifying CMS of a death" in open_.message

    incident.notify(Recipient.CMS, monday_close + hours(1), "CMS-10455", "risk-manager")
    world.add(incident)
    assert statuses(world.state(), LATER, "regulator.serious-injury") == [Status.MET_LATE]


def test_a_serious_injury_alone_is_not_reported_to_cms() -> None:
    world = setting(CMS)
    grant_order(world, "ORD-1", hours(1))
    follow_up(
        world,
        record(world, coverage=Coverage.VALID, authorisation_id="ORD-1", injuries=(SERIOUS,)),
    )
    assert found(world.state(), LATER, "regulator.serious-injury") == []


# --- CMS orders and face-to-face ------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "length", "limit"),
    [(AgeBand.ADULT, hours(5), "4 h"), (AgeBand.AGE_9_TO_17, hours(3), "2 h")],
)
def test_an_order_longer_than_the_age_limit_is_a_breach(
    age: AgeBand, length: timedelta, limit: str
) -> None:
    world = setting(CMS, age=age)
    grant_order(world, "ORD-9", length)
    (finding,) = found(world.state(), LATER, "cms.order-length")
    assert finding.status is Status.BREACH
    assert finding.subject == "ORD-9"
    assert f"over the {limit} limit (age band {age.value})" in finding.message


@pytest.mark.parametrize(
    ("age", "length"),
    [(AgeBand.ADULT, hours(4)), (AgeBand.AGE_9_TO_17, hours(2)), (AgeBand.UNDER_9, hours(1))],
)
def test_an_order_within_the_age_limit_is_fine(age: AgeBand, length: timedelta) -> None:
    world = setting(CMS, age=age)
    grant_order(world, "ORD-9", length)
    assert found(world.state(), LATER, "cms.order-length") == []


def test_an_order_for_a_person_of_unknown_age_gets_the_strictest_limit() -> None:
    world = setting(CMS, age=None)
    grant_order(world, "ORD-9", hours(2))
    (finding,) = found(world.state(), LATER, "cms.order-length")
    assert "over the 1 h limit (age band not recorded" in finding.message


def test_order_length_is_not_checked_outside_cms() -> None:
    world = setting(MH)
    grant_order(world, "ORD-9", hours(12))
    assert found(world.state(), LATER, "cms.order-length") == []


def test_no_face_to_face_within_an_hour_is_open_then_overdue() -> None:
    world = setting(CMS)
    grant_order(world, "ORD-1", hours(1))
    incident = record(world, coverage=Coverage.VALID, authorisation_id="ORD-1")
    follow_up(world, incident, skip=frozenset({"observation"}))
    state = world.state()
    (open_,) = found(state, T0 + minutes(30), "cms.face-to-face")
    assert open_.status is Status.OPEN
    assert open_.due_at == T0 + hours(1)
    assert statuses(state, T0 + hours(2), "cms.face-to-face") == [Status.OVERDUE]

    incident.record_observation(T0 + minutes(90), "nurse-a", pulse=90)
    world.add(incident)
    assert statuses(world.state(), LATER, "cms.face-to-face") == [Status.MET_LATE]


def test_a_face_to_face_within_the_hour_is_met() -> None:
    world, _ = compliant(CMS)
    assert found(world.state(), LATER, "cms.face-to-face") == []


def test_face_to_face_is_not_required_outside_cms() -> None:
    world = setting(MH)
    follow_up(world, record(world), skip=frozenset({"observation"}))
    assert found(world.state(), LATER, "cms.face-to-face") == []


# --- seclusion reviews ----------------------------------------------------------------------


def secluded(world: World, length: timedelta, reviews: dict[SeclusionReview, list[float]]) -> None:
    """A seclusion from T0 lasting `length`, reviewed at the given hours after T0."""
    incident = record(world, end=T0 + length, interventions=(seclusion(minutes(0), length),))
    for review, at in reviews.items():
        for h in at:
            incident.review_seclusion(review, T0 + hours(h), ("dr-a", "nurse-a"), True, None)
    follow_up(world, incident)


GOOD_REVIEWS = {
    SeclusionReview.MEDICAL_1H: [40 / 60],
    SeclusionReview.NURSING_2H: [1.8, 3.6],
    SeclusionReview.MEDICAL_4H: [4.5],
}


def test_a_seclusion_reviewed_on_time_raises_nothing() -> None:
    world = setting(MH)
    secluded(world, hours(5), GOOD_REVIEWS)
    assert [f for f in evaluate(world.state(), LATER) if f.rule_id.startswith("seclusion.")] == []


def test_a_missing_first_medical_review_is_overdue() -> None:
    world = setting(MH)
    secluded(world, hours(5), {SeclusionReview.NURSING_2H: [1.8, 3.6]})
    state = world.state()
    assert statuses(state, T0 + minutes(50), "seclusion.medical-1h") == [Status.OPEN]
    (first,) = found(state, LATER, "seclusion.medical-1h")
    assert first.status is Status.OVERDUE
    assert first.due_at == T0 + hours(1)
    (four_hourly,) = found(state, LATER, "seclusion.medical-4h")
    assert four_hourly.due_at == T0 + hours(4)


def test_a_first_medical_review_after_the_hour_is_met_late() -> None:
    world = setting(MH)
    secluded(world, hours(5), {**GOOD_REVIEWS, SeclusionReview.MEDICAL_1H: [1.5]})
    (finding,) = found(world.state(), LATER, "seclusion.medical-1h")
    assert finding.status is Status.MET_LATE
    assert "was done 30 min late" in finding.message


def test_a_seclusion_ended_within_the_hour_needs_no_medical_review() -> None:
    world = setting(MH)
    secluded(world, minutes(50), {})
    assert [f for f in evaluate(world.state(), LATER) if f.rule_id.startswith("seclusion.")] == []


def test_a_late_nursing_review_is_met_late_and_a_missing_one_overdue() -> None:
    late = setting(MH)
    secluded(late, hours(5), {**GOOD_REVIEWS, SeclusionReview.NURSING_2H: [2.5, 4.0]})
    (finding,) = found(late.state(), LATER, "seclusion.nursing-2h")
    assert finding.status is Status.MET_LATE
    assert finding.due_at == T0 + hours(2)

    missing = setting(MH)
    secluded(missing, hours(5), {**GOOD_REVIEWS, SeclusionReview.NURSING_2H: [2.5]})
    (finding,) = found(missing.state(), LATER, "seclusion.nursing-2h")
    assert finding.status is Status.OVERDUE
    assert finding.due_at == T0 + hours(4.5)


def test_medical_reviews_every_four_hours_while_secluded() -> None:
    world = setting(MH)
    secluded(
        world, hours(10), {**GOOD_REVIEWS, SeclusionReview.NURSING_2H: [1.8, 3.6, 5.5, 7.4, 9.3]}
    )
    (finding,) = found(world.state(), LATER, "seclusion.medical-4h")
    assert finding.status is Status.OVERDUE
    assert finding.due_at == T0 + hours(8.5)


def test_seclusion_reviews_are_not_mh_code_rules_in_a_scottish_school() -> None:
    world = setting(SCO_SCHOOL)
    secluded(world, hours(5), {})
    assert [f for f in evaluate(world.state(), LATER) if f.rule_id.startswith("seclusion.")] == []


# --- plan.repeat-use-review -----------------------------------------------------------------


def repeated(world: World, at_days: list[float]) -> list[Incident]:
    made = []
    for n, d in enumerate(at_days):
        incident = record(world, f"INC-{n:04d}", start=T0 + days(d))
        follow_up(world, incident)  # each is reviewed on its own, naming only itself
        made.append(incident)
    return made


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL, HOME])
def test_three_interventions_in_28_days_call_for_a_plan_review(profile: Profile) -> None:
    world = setting(profile)
    repeated(world, [0, 10, 20])
    third = T0 + days(20) + minutes(2)

    (finding,) = found(world.state(), third + days(1), "plan.repeat-use-review")

    assert finding.status is Status.OPEN
    assert finding.subject == PERSON
    assert finding.due_at == third + days(7)
    assert "3 or more restrictive interventions within 28 days" in finding.message
    assert statuses(world.state(), third + days(8), "plan.repeat-use-review") == [Status.OVERDUE]


@pytest.mark.parametrize("profile", [MH, ENG_SCHOOL, HOME])
def test_three_interventions_spread_over_more_than_28_days_do_not(profile: Profile) -> None:
    world = setting(profile)
    repeated(world, [0, 15, 29])
    assert found(world.state(), LATER + days(60), "plan.repeat-use-review") == []


def test_a_plan_revision_after_the_third_closes_the_repeat_use_finding() -> None:
    world = setting(MH)
    repeated(world, [0, 10, 20])
    assert world.plan is not None
    world.plan.revise(plan_content(), RevisionReason(note="pattern of incidents"), T0 + days(22))
    world.add(world.plan)
    assert found(world.state(), T0 + days(60), "plan.repeat-use-review") == []


def test_a_plan_change_after_the_deadline_is_met_late_and_restarts_the_count() -> None:
    world = setting(MH)
    repeated(world, [0, 10, 20, 35])  # the 4th follows the late revision
    assert world.plan is not None
    world.plan.revise(plan_content(), RevisionReason(note="pattern of incidents"), T0 + days(30))
    world.add(world.plan)
    assert statuses(world.state(), T0 + days(40), "plan.repeat-use-review") == [Status.MET_LATE]


def test_a_plan_review_without_change_does_not_close_the_repeat_use_finding() -> None:
    world = setting(MH)
    incidents = repeated(world, [0, 10, 20])  # each reviewed without change within 2 days
    assert [i.incident_ref for i in incidents] == ["INC-0000", "INC-0001", "INC-0002"]
    assert statuses(world.state(), T0 + days(60), "plan.repeat-use-review") == [Status.OVERDUE]


def test_repeat_use_is_not_a_cms_rule() -> None:
    world = setting(CMS)
    for n in range(3):
        grant_order(world, f"ORD-{n}", hours(1), start=T0 + days(n))
        incident = record(
            world,
            f"INC-{n}",
            start=T0 + days(n),
            coverage=Coverage.VALID,
            authorisation_id=f"ORD-{n}",
        )
        follow_up(world, incident)
    assert evaluate(world.state(), LATER) == []


# --- profiles -------------------------------------------------------------------------------


def test_every_profile_has_a_file_that_loads() -> None:
    profiles = load_profiles()
    assert set(profiles) == set(Profile)
    assert all(profiles[p] for p in Profile)


def test_every_rule_in_a_profile_exists_and_every_rule_is_used() -> None:
    used = {spec.rule_id for specs in load_profiles().values() for spec in specs}
    assert used <= set(RULES)
    assert set(RULES) <= used


def test_every_configured_rule_names_a_source() -> None:
    for specs in load_profiles().values():
        for spec in specs:
            assert spec.title.strip()
            assert spec.source.strip()


def test_a_profile_given_by_the_caller_replaces_the_packaged_thresholds() -> None:
    world = setting(MH)
    incident = record(world)
    follow_up(world, incident, skip=frozenset({"person"}))
    debrief(incident, DebriefType.PERSON, END + hours(30))
    world.add(incident)
    strict = RuleSpec(
        "debrief.person", "Person debrief in 24 h", "local policy", {"within_hours": 24}
    )

    (finding,) = evaluate(world.state(), LATER, profiles={MH: [strict]})

    assert finding.status is Status.MET_LATE
    assert finding.source == "local policy"
    assert found(world.state(), LATER, "debrief.person") == []  # packaged: 72 h


MINIMAL = 'profile = "uk-eng-school"\n'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("profile = [", "not valid TOML"),
        ('profile = "uk-mars"\n[[rule]]\n', "profile must be one of"),
        (MINIMAL, r"lists its rules as \[\[rule\]\] tables"),
        (MINIMAL + '[[rule]]\nid = "no.such"\ntitle = "t"\nsource = "s"\n', "unknown rule"),
        (MINIMAL + '[[rule]]\nid = "restraint.prone"\ntitle = "t"\n', "source is required"),
        (
            MINIMAL + '[[rule]]\nid = "restraint.max-duration"\ntitle = "t"\nsource = "s"\n',
            "missing max_minutes",
        ),
        (
            MINIMAL + '[[rule]]\nid = "debrief.person"\ntitle = "t"\nsource = "s"\n',
            "give exactly one of within_minutes",
        ),
        (
            MINIMAL
            + '[[rule]]\nid = "debrief.person"\ntitle = "t"\nsource = "s"\nwithin_hour = 72\n',
            "unknown parameters within_hour",
        ),
        (
            MINIMAL + '[[rule]]\nid = "debrief.person"\ntitle = "t"\nsource = "s"\n'
            'within_hours = "72"\n',
            "within_hours must be a number",
        ),
        (
            MINIMAL + '[[rule]]\nid = "debrief.person"\ntitle = "t"\nsource = "s"\n'
            "within_hours = -1\n",
            "within_hours must be positive",
        ),
        (
            MINIMAL + '[[rule]]\nid = "regulator.serious-injury"\ntitle = "t"\nsource = "s"\n'
            'recipient = "the-press"\nwithin_hours = 24\n',
            r"recipient: unknown \['the-press'\]",
        ),
        (
            MINIMAL + '[[rule]]\nid = "cms.order-length"\ntitle = "t"\nsource = "s"\n'
            'max_hours = { "18-plus" = 4 }\n',
            "max_hours needs a positive limit for each age band",
        ),
        (
            MINIMAL + '[[rule]]\nid = "restraint.prone"\ntitle = "t"\nsource = "s"\n' * 2,
            "rules listed twice: restraint.prone",
        ),
    ],
    ids=[
        "bad-toml",
        "unknown-profile",
        "no-rules",
        "unknown-rule",
        "no-source",
        "missing-threshold",
        "no-deadline",
        "misspelt-parameter",
        "threshold-not-a-number",
        "negative-threshold",
        "unknown-recipient",
        "incomplete-age-limits",
        "duplicate-rule",
    ],
)
def test_a_malformed_profile_is_refused_with_a_reason(text: str, error: str) -> None:
    with pytest.raises(ProfileError, match=error):
        parse_profile(text)


# --- the rules document ----------------------------------------------------------------------


def test_every_rule_is_documented_with_tests_that_exist() -> None:
    doc = DOCS.read_text(encoding="utf-8")
    for rule_id in RULES:
        assert f"`{rule_id}`" in doc, f"{rule_id} is not in docs/rules.md"
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", doc))
    assert named, "docs/rules.md names no tests"
    assert named <= set(globals()), f"unknown tests in docs/rules.md: {named - set(globals())}"


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 3, 1, 9, 5, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(999, 1, 2, 3, 4, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_times_in_messages_are_written_as_strftime_writes_them(when: datetime) -> None:
    from projections.compliance import _when

    assert _when(when) == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_no_coverage_is_never_among_the_default_invalid_coverages() -> None:
    """`authorisation.valid` skips importing the vocabulary for incidents with no
    authorisation named, knowing that value by its text."""
    from domain.authorisations import Coverage
    from projections.compliance import NO_COVERAGE, _invalid_coverage

    assert Coverage(NO_COVERAGE) is Coverage.NONE
    assert NO_COVERAGE not in _invalid_coverage()
