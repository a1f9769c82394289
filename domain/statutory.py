"""What each jurisdiction requires an incident record to contain.

`UOF_S6_5` maps every item of the Mental Health Units (Use of Force) Act 2018 s.6(5) to where
the model records it; `REQUIRED` lists, per profile, the items a record cannot be saved without.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from domain.errors import RuleViolated
from domain.vocabulary import Profile

if TYPE_CHECKING:
    from domain.incidents import IncidentFacts

# s.6(5) item → the field(s) that carry it ("Model.field", dotted into nested values).
UOF_S6_5: Mapping[str, tuple[str, ...]] = {
    "a": ("IncidentFacts.reason", "Incident.Recorded.reason_detail"),
    "b": ("IncidentFacts.place", "IncidentFacts.occurred_start", "IncidentFacts.occurred_end"),
    "c": ("Intervention.type",),
    "d": ("IncidentFacts.part_of_care_plan", "IncidentFacts.authorisation_id"),
    "e": ("Person.Registered.full_name",),
    "f": ("Incident.Recorded.force_description",),
    "g": ("Person.Registered.nhs_number",),
    "h": (
        "StaffInvolved.staff_id",
        "StaffMember.Registered.full_name",
        "StaffMember.Registered.job_title",
    ),
    "i": ("NonStaffInvolved.agency", "NonStaffInvolved.reason"),
    "j": ("Person.Registered.mental_disorder",),
    "k": ("Person.Registered.protected_characteristics",),
    "l": ("Person.Registered.learning_disability_or_autism",),
    "m": ("Incident.Recorded.outcome",),
    "n": ("Injury.severity",),
    "o": ("IncidentFacts.de_escalation", "Incident.Recorded.de_escalation_notes"),
    "p": (
        "Incident.NotificationSent.recipient",
        "PlanContent.notify_after_force",
    ),
}

Narrative = Mapping[str, Any]
Requirement = tuple[str, Callable[["IncidentFacts", Narrative], bool]]


def _text(name: str) -> Callable[[IncidentFacts, Narrative], bool]:
    return lambda _facts, narrative: bool((narrative.get(name) or "").strip())


def _de_escalation(facts: IncidentFacts, narrative: Narrative) -> bool:
    return bool(facts.de_escalation) or bool((narrative.get("de_escalation_notes") or "").strip())


def _staff_named(facts: IncidentFacts, _narrative: Narrative) -> bool:
    return all(i.staff or i.staff_count == 0 for i in facts.interventions)


DESCRIPTION: Requirement = ("a description of how force was used", _text("force_description"))
OUTCOME: Requirement = ("the outcome", _text("outcome"))
DE_ESCALATION: Requirement = ("the efforts made to avoid force (de-escalation)", _de_escalation)
STAFF: Requirement = ("the staff who used force", _staff_named)
BEFOREHAND: Requirement = ("what happened beforehand (antecedents)", _text("antecedents"))

REQUIRED: Mapping[Profile, tuple[Requirement, ...]] = {
    Profile.UK_ENG_MH_UNIT: (DESCRIPTION, OUTCOME, DE_ESCALATION, STAFF),  # UoF s.6(5)
    Profile.UK_ENG_SCHOOL: (BEFOREHAND, DE_ESCALATION, STAFF),  # DfE 2026 record content
    Profile.UK_SCO_SCHOOL: (BEFOREHAND, DE_ESCALATION, DESCRIPTION, STAFF),  # IEI Part 3
    Profile.UK_WAL_SCHOOL: (DE_ESCALATION, DESCRIPTION),
    Profile.UK_ENG_CHILDRENS_HOME: (BEFOREHAND, DESCRIPTION, DE_ESCALATION, STAFF, OUTCOME),
    Profile.UK_ENG_CQC: (),
    Profile.US_CMS_HOSPITAL: (DESCRIPTION, DE_ESCALATION),  # 42 CFR 482.13(e)(16)
}


def missing_items(
    profiles: tuple[Profile, ...], facts: IncidentFacts, narrative: Narrative
) -> list[str]:
    """Descriptions of the required items the record lacks, with the profile that needs each."""
    missing: dict[str, list[str]] = {}
    for profile in profiles:
        for description, present in REQUIRED.get(profile, ()):
            if not present(facts, narrative):
                missing.setdefault(description, []).append(profile.value)
    return [f"{item} (required by {', '.join(by)})" for item, by in missing.items()]


def check_statutory_items_present(
    profiles: tuple[Profile, ...], facts: IncidentFacts, narrative: Narrative
) -> None:
    missing = missing_items(profiles, facts, narrative)
    if missing:
        raise RuleViolated("missing required statutory fields: " + "; ".join(missing))
