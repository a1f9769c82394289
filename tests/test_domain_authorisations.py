"""Authorisations: their guards, and what `coverage()` says about one intervention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.authorisations import Authorisation, Coverage, Scope
from domain.errors import RuleViolated
from domain.vocabulary import AuthorisationKind, InterventionType, Position

FROM = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
UNTIL = FROM + timedelta(hours=4)


def hours(n: float) -> datetime:
    return FROM + timedelta(hours=n)


def grant(
    valid_from: datetime = FROM, valid_until: datetime = UNTIL, **scope: Any
) -> Authorisation:
    fields: dict[str, Any] = {"person_id": "P-0001", **scope}
    return Authorisation.grant(
        uuid4(),
        "AUTH-0001",
        AuthorisationKind.PLANNED,
        "ward-3",
        Scope.model_validate(fields),
        "dr-rc",
        "responsible clinician",
        valid_from,
        valid_until,
    )


def cover(
    authorisation: Authorisation,
    *,
    person: str = "P-0001",
    technique: str | None = "two-person-seated",
    kind: InterventionType = InterventionType.SEATED,
    position: Position | None = Position.SEATED,
    start: datetime = FROM + timedelta(hours=1),
    minutes: float = 5,
) -> Coverage:
    return authorisation.coverage(person, technique, kind, position, start, minutes)


# --- granting, renewing, revoking ----------------------------------------------------------


def test_granting_emits_the_scope_and_names_the_person() -> None:
    authorisation = grant(types=(InterventionType.SEATED,))
    (granted,) = authorisation.collect_events()
    assert isinstance(granted, Authorisation.Granted)
    assert granted.person_id == "P-0001"
    assert granted.scope.types == (InterventionType.SEATED,)
    assert (authorisation.valid_from, authorisation.valid_until) == (FROM, UNTIL)


def test_an_authorisation_cannot_end_before_it_starts() -> None:
    with pytest.raises(RuleViolated, match=r"the authorisation ends .* before it starts"):
        grant(valid_until=hours(-1))


def test_an_authorisation_must_be_valid_for_some_time() -> None:
    with pytest.raises(RuleViolated, match="must be valid for some time"):
        grant(valid_until=FROM)


def test_an_authorisation_names_the_approvers_role() -> None:
    with pytest.raises(RuleViolated, match="the approver's role is required"):
        Authorisation.grant(
            uuid4(),
            "AUTH-1",
            AuthorisationKind.EMERGENCY,
            "ward-3",
            Scope(person_id="P-0001"),
            "dr-rc",
            " ",
            FROM,
            UNTIL,
        )


@pytest.mark.parametrize("minutes", [0, -10])
def test_an_authorisations_maximum_duration_is_positive(minutes: int) -> None:
    with pytest.raises(RuleViolated, match="positive number of minutes"):
        grant(max_minutes=minutes)


def test_a_renewal_extends_the_authorisation() -> None:
    authorisation = grant()
    authorisation.renew(hours(8), "face-to-face review by dr-rc")

    assert authorisation.valid_until == hours(8)
    assert cover(authorisation, start=hours(6)) is Coverage.VALID
    renewed = authorisation.collect_events()[-1]
    assert isinstance(renewed, Authorisation.Renewed)
    assert renewed.assessment == "face-to-face review by dr-rc"


@pytest.mark.parametrize("until", [UNTIL, hours(2)], ids=["same-end", "earlier-end"])
def test_a_renewal_that_does_not_extend_is_refused(until: datetime) -> None:
    with pytest.raises(RuleViolated, match="a renewal must extend the authorisation"):
        grant().renew(until, "review")


def test_a_renewal_rests_on_an_assessment() -> None:
    with pytest.raises(RuleViolated, match="the assessment the renewal rests on is required"):
        grant().renew(hours(8), "")


def test_a_revocation_needs_a_reason() -> None:
    with pytest.raises(RuleViolated, match="a reason for revoking is required"):
        grant().revoke(hours(1), "  ")


def test_a_revoked_authorisation_cannot_be_renewed() -> None:
    authorisation = grant()
    authorisation.revoke(hours(1), "plan changed")
    with pytest.raises(RuleViolated, match="AUTH-0001 was revoked"):
        authorisation.renew(hours(8), "review")


def test_a_revoked_authorisation_cannot_be_revoked_again() -> None:
    authorisation = grant()
    authorisation.revoke(hours(1), "plan changed")
    with pytest.raises(RuleViolated, match="was revoked"):
        authorisation.revoke(hours(2), "again")


# --- coverage -----------------------------------------------------------------------------


def test_an_intervention_inside_window_and_scope_is_covered() -> None:
    assert cover(grant()) is Coverage.VALID


@pytest.mark.parametrize("start", [FROM, UNTIL], ids=["first-instant", "last-instant"])
def test_the_window_includes_both_its_ends(start: datetime) -> None:
    assert cover(grant(), start=start) is Coverage.VALID


def test_an_intervention_before_the_window_is_not_yet_covered() -> None:
    assert cover(grant(), start=hours(-0.5)) is Coverage.NOT_YET_VALID


def test_an_intervention_after_the_window_is_expired() -> None:
    assert cover(grant(), start=hours(4.01)) is Coverage.EXPIRED


def test_an_intervention_after_revocation_is_revoked() -> None:
    authorisation = grant()
    authorisation.revoke(hours(1), "plan changed")
    assert cover(authorisation, start=hours(1)) is Coverage.REVOKED


def test_a_revocation_does_not_reach_back_to_earlier_interventions() -> None:
    authorisation = grant()
    authorisation.revoke(hours(1), "plan changed")
    assert cover(authorisation, start=hours(0.5)) is Coverage.VALID


def test_an_intervention_on_another_person_is_out_of_scope() -> None:
    assert cover(grant(), person="P-0002") is Coverage.OUT_OF_SCOPE


def test_a_technique_not_listed_is_out_of_scope() -> None:
    authorisation = grant(techniques=("two-person-seated",))
    assert cover(authorisation, technique="two-person-seated") is Coverage.VALID
    assert cover(authorisation, technique="three-person-supine") is Coverage.OUT_OF_SCOPE
    assert cover(authorisation, technique=None) is Coverage.OUT_OF_SCOPE


def test_a_type_not_listed_is_out_of_scope() -> None:
    authorisation = grant(types=(InterventionType.SEATED,))
    supine = cover(authorisation, kind=InterventionType.SUPINE, position=Position.SUPINE)
    assert supine is Coverage.OUT_OF_SCOPE


def test_an_excluded_position_is_out_of_scope() -> None:
    authorisation = grant(excluded_positions=(Position.PRONE,))
    assert cover(authorisation, position=Position.PRONE) is Coverage.OUT_OF_SCOPE
    assert cover(authorisation, position=Position.SEATED) is Coverage.VALID


def test_a_prone_restraint_recorded_without_a_position_is_still_prone() -> None:
    authorisation = grant(excluded_positions=(Position.PRONE,))
    prone = cover(authorisation, kind=InterventionType.PRONE, position=None)
    assert prone is Coverage.OUT_OF_SCOPE


def test_an_intervention_longer_than_the_maximum_is_out_of_scope() -> None:
    authorisation = grant(max_minutes=10)
    assert cover(authorisation, minutes=10) is Coverage.VALID
    assert cover(authorisation, minutes=10.5) is Coverage.OUT_OF_SCOPE
