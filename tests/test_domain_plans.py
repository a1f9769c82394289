"""Behaviour support plans: the four components, and revisions that record why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from domain.errors import RuleViolated
from domain.plans import BehaviourSupportPlan, PlanContent, RevisionReason, Tertiary, plan_stream
from domain.vocabulary import Position, Recipient

PUBLISHED = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


def content(**changes: Any) -> PlanContent:
    fields: dict[str, Any] = {
        "primary": ("predictable routine", "sensory breaks"),
        "secondary": ("watch for pacing", "offer the quiet room"),
        "tertiary": Tertiary(
            approved_techniques=("verbal-deescalation", "two-person-seated"),
            excluded_positions=(Position.PRONE,),
        ),
        "recovery": ("debrief with key worker",),
        "notify_after_force": (Recipient.PARENT_CARER,),
        "review_due": date(2026, 12, 1),
    }
    return PlanContent.model_validate({**fields, **changes})


def publish(plan_content: PlanContent | None = None) -> BehaviourSupportPlan:
    return BehaviourSupportPlan.publish("P-0001", plan_content or content(), PUBLISHED)


def reason(note: str = "after two incidents in a week", *incidents: Any) -> RevisionReason:
    return RevisionReason(incidents=tuple(incidents), note=note)


def test_publishing_a_plan_starts_at_revision_one() -> None:
    plan = publish()
    (published,) = plan.collect_events()
    assert isinstance(published, BehaviourSupportPlan.Published)
    assert plan.id == plan_stream("P-0001")
    assert plan.revision == 1
    assert plan.content == content()


def test_a_technique_cannot_be_both_approved_and_excluded() -> None:
    tertiary = Tertiary(
        approved_techniques=("two-person-seated", "three-person-prone"),
        excluded_techniques=("three-person-prone",),
    )
    with pytest.raises(RuleViolated, match=r"both approved and excluded: \['three-person-prone'\]"):
        publish(content(tertiary=tertiary))


@pytest.mark.parametrize("minutes", [0, -5])
def test_a_plans_maximum_duration_is_positive(minutes: int) -> None:
    tertiary = Tertiary(approved_techniques=("two-person-seated",), max_minutes=minutes)
    with pytest.raises(RuleViolated, match="positive number of minutes"):
        publish(content(tertiary=tertiary))


def test_a_one_minute_maximum_is_accepted() -> None:
    tertiary = Tertiary(approved_techniques=("two-person-seated",), max_minutes=1)
    assert publish(content(tertiary=tertiary)).content is not None


@pytest.mark.parametrize("component", ["primary", "secondary", "recovery"])
def test_a_plan_needs_every_prevention_component(component: str) -> None:
    with pytest.raises(RuleViolated, match=r"needs primary, secondary, tertiary .* and recovery"):
        publish(content(**{component: ()}))


def test_a_plan_needs_at_least_one_approved_response() -> None:
    with pytest.raises(RuleViolated, match="tertiary \\(at least one approved technique\\)"):
        publish(content(tertiary=Tertiary(approved_techniques=())))


def test_a_plan_without_a_tertiary_component_is_not_a_plan() -> None:
    fields = content().model_dump()
    del fields["tertiary"]
    with pytest.raises(ValidationError, match="tertiary"):
        PlanContent.model_validate(fields)


def test_a_revision_increments_the_revision_and_records_why() -> None:
    plan = publish()
    incident = uuid4()

    plan.revise(content(primary=("new routine",)), reason("after the fall", incident), PUBLISHED)

    revised = plan.collect_events()[-1]
    assert isinstance(revised, BehaviourSupportPlan.Revised)
    assert (revised.revision, plan.revision) == (2, 2)
    assert revised.reason.incidents == (incident,)
    assert plan.content is not None and plan.content.primary == ("new routine",)


def test_a_revision_cannot_predate_the_plans_last_change() -> None:
    plan = publish()
    plan.revise(content(), reason(), PUBLISHED + timedelta(days=3))
    with pytest.raises(RuleViolated, match="cannot predate the plan's last change"):
        plan.revise(content(), reason(), PUBLISHED + timedelta(days=2))


def test_a_revision_needs_a_reason() -> None:
    with pytest.raises(RuleViolated, match="the reason for the revision is required"):
        publish().revise(content(), reason(" "), PUBLISHED + timedelta(days=1))


def test_revised_content_is_checked_again() -> None:
    overlapping = Tertiary(approved_techniques=("a",), excluded_techniques=("a",))
    with pytest.raises(RuleViolated, match="both approved and excluded"):
        publish().revise(content(tertiary=overlapping), reason(), PUBLISHED + timedelta(days=1))


def test_a_review_without_change_needs_the_reviewers_rationale() -> None:
    with pytest.raises(RuleViolated, match="the reviewer's rationale is required"):
        publish().review_unchanged(reason(""), PUBLISHED, date(2027, 1, 1))


def test_a_review_without_change_keeps_the_revision() -> None:
    plan = publish()
    plan.review_unchanged(reason("still fits"), PUBLISHED + timedelta(days=7), date(2027, 1, 1))
    assert plan.revision == 1
    assert isinstance(plan.collect_events()[-1], BehaviourSupportPlan.Reviewed)


def test_the_incidents_behind_revisions_and_reviews_accumulate() -> None:
    plan = publish()
    first, second, third = uuid4(), uuid4(), uuid4()

    plan.revise(content(), reason("first", first), PUBLISHED + timedelta(days=1))
    plan.review_unchanged(reason("second", second), PUBLISHED + timedelta(days=2), date(2027, 1, 1))
    plan.revise(content(), reason("third", third, first), PUBLISHED + timedelta(days=3))

    assert plan.revision_incidents == {first, second, third}
    assert plan.revision == 3
