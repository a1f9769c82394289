"""A fixed, seeded history for report tests: one ward over 22 months (January 2025 to
October 2026), with falling use, a prone share, late records, debriefs on time and late,
plan revisions that name incidents, staff training in every state, and three months with
occupancy but no incidents (a data-quality warning).

The same steps can be folded in memory (byte-stable: the golden report) or saved to a real
ledger (`save_history`), so a report issued from a ledger can be compared with the golden one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5

from domain.authorisations import Coverage
from domain.events import Aggregate, DomainEvent, clock
from domain.incidents import Incident, IncidentFacts, Intervention
from domain.people import Person
from domain.plans import BehaviourSupportPlan, PlanContent, RevisionReason, Tertiary
from domain.services import Service
from domain.staff import StaffMember, Training
from domain.techniques import TechniqueCatalogue, default_catalogue
from domain.vocabulary import DebriefType, Profile, Setting
from projections.fold import fold
from projections.model import State
from projections.schedules import add_months

WARD = "ward-3"
PROFILES = (Profile.UK_ENG_MH_UNIT,)
FIRST_MONTH = date(2025, 1, 1)
LAST_MONTH = date(2026, 10, 1)
QUIET = {date(2025, 7, 1), date(2025, 8, 1), date(2025, 9, 1)}  # occupancy, no incidents
TYPES = (
    ("07", "one-person-hold", "standing"),
    ("08", "two-person-escort", "restrictive-escort"),
    ("11", "two-person-seated", "seated"),
    ("01", "three-person-prone", "prone"),
)
PEOPLE = ("P-001", "P-002", "P-003", "P-004", "P-005", "P-006", "P-007", "P-008")
WEIGHTS = (9, 5, 3, 2, 1, 1, 1, 1)
NARRATIVE = {"force_description": "Staff used a hold.", "outcome": "Calm; no injury."}
Batch = list[Aggregate]
NS = UUID("6f1d2c1e-3b7a-4c55-9a0e-2f6c1d7e8b90")  # the namespace of its ids


def at(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def content(review_due: date, note: str = "") -> PlanContent:
    return PlanContent(
        primary=("predictable routine", *((note,) if note else ())),
        secondary=("notice pacing early",),
        tertiary=Tertiary(approved_techniques=("one-person-hold", "two-person-seated")),
        recovery=("quiet space, then talk",),
        review_due=review_due,
    )


def steps(*, incidents_per_month: int = 12, seed: int = 2026) -> Iterator[Batch]:
    """The history in recording order. Sets `clock.fixed` before each step: each event is
    recorded (signed) at a stated time. The caller resets the clock."""
    rng = random.Random(seed)
    clock.fixed = at(2025, 1, 1)
    ward = Service.register(WARD, "Ward 3", Setting.MENTAL_HEALTH_UNIT, PROFILES)
    yield [ward]
    yield [TechniqueCatalogue.publish(default_catalogue())]
    yield [Person.register(p, WARD) for p in PEOPLE]
    staff = {
        "S-1": date(2026, 12, 31),  # current on 31 October 2026
        "S-2": date(2026, 11, 15),  # expiring within 60 days
        "S-3": date(2026, 6, 30),  # expired
    }
    members = []
    for staff_id in ("S-1", "S-2", "S-3", "S-4"):  # S-4: no training recorded
        member = StaffMember.register(staff_id, WARD, "Healthcare assistant", None)
        if staff_id in staff:
            member.record_training(
                Training(
                    course="CALM Physical Skills",
                    curriculum="CALM",
                    techniques=("one-person-hold", "two-person-seated"),
                    completed_on=staff[staff_id] - timedelta(days=365),
                    valid_until=staff[staff_id],
                    provider="CALM Training",
                )
            )
        members.append(member)
    yield members
    plans = {
        p: BehaviourSupportPlan.publish(p, content(date(2025, 12, 31)), at(2025, 1, 2))
        for p in PEOPLE[:3]
    }
    clock.fixed = at(2025, 1, 2)
    yield list(plans.values())
    last_change = dict.fromkeys(plans, at(2025, 1, 2))

    month = FIRST_MONTH
    n = 0
    while month <= LAST_MONTH:
        following = add_months(month, 1)
        days = (following - month).days
        if month not in QUIET:
            # Falling use: about `incidents_per_month` at first, a third of that at the end.
            index = (month.year - FIRST_MONTH.year) * 12 + month.month - 1
            expected = incidents_per_month * (1 - index / 33)
            count = max(1, round(expected + rng.uniform(-1.5, 1.5)))
            starts = sorted(
                datetime.combine(month, datetime.min.time(), tzinfo=UTC)
                + timedelta(
                    days=rng.randrange(days), hours=rng.randrange(24), minutes=5 * rng.randrange(12)
                )
                for _ in range(count)
            )
            for start in starts:
                n += 1
                yield from _incident(rng, n, start, plans, last_change)
        clock.fixed = datetime.combine(following, datetime.min.time(), tzinfo=UTC) + timedelta(
            hours=9
        )
        ward.record_occupancy(month, following - timedelta(days=1), 20 * days)
        yield [ward]
        month = following


def _incident(
    rng: random.Random,
    n: int,
    start: datetime,
    plans: dict[str, BehaviourSupportPlan],
    last_change: dict[str, datetime],
) -> Iterator[Batch]:
    minutes = rng.randrange(3, 31)
    end = start + timedelta(minutes=minutes)
    kind, technique, position = rng.choice(TYPES)
    person = rng.choices(PEOPLE, WEIGHTS)[0]
    late = rng.random() < 0.1
    clock.fixed = end + (timedelta(days=2) if late else timedelta(hours=1))
    ref = f"INC-{n:04d}"
    stream = uuid5(NS, ref)
    facts = IncidentFacts(
        place="Lounge",
        occurred_start=start,
        occurred_end=end,
        reason="10",
        interventions=(
            Intervention.by_staff(
                [rng.choice(("S-1", "S-2", "S-3"))],
                type=kind,
                technique_id=technique,
                position=position,
                start=start,
                end=end,
            ),
        ),
        de_escalation=("talked it through",),
    )
    incident = Incident.record(
        stream, ref, WARD, person, facts, Coverage.NONE, PROFILES, **NARRATIVE
    )
    yield [incident]
    if kind == "01" and rng.random() < 0.3:
        clock.fixed = clock.now() + timedelta(hours=3)
        seated = facts.interventions[0].model_dump()
        seated.update(type="11", technique_id="two-person-seated", position="seated")
        incident.correct(1, "it was a seated hold", {"interventions": [seated]})
        yield [incident]
    if rng.random() < 0.75:
        held = end + timedelta(hours=rng.choice((1, 2, 5, 20, 30)))
        clock.fixed = max(clock.now(), held)
        recommend = rng.random() < 0.3
        incident.hold_debrief(
            uuid5(NS, f"{ref}-immediate"),
            DebriefType.IMMEDIATE,
            held,
            "S-1",
            recommend_plan_revision=recommend,
        )
        yield [incident]
    if rng.random() < 0.1:
        clock.fixed = max(clock.now(), end + timedelta(hours=6))
        incident.decline_debrief(DebriefType.PERSON, end + timedelta(hours=6), "S-1", "declined")
        yield [incident]
    elif rng.random() < 0.35:
        held = end + timedelta(hours=rng.choice((24, 48, 100)))
        clock.fixed = max(clock.now(), held)
        incident.hold_debrief(uuid5(NS, f"{ref}-person"), DebriefType.PERSON, held, "S-1")
        yield [incident]
    if rng.random() < 0.4:
        held = end + timedelta(days=rng.choice((3, 5, 9)))
        clock.fixed = max(clock.now(), held)
        incident.hold_debrief(
            uuid5(NS, f"{ref}-review"), DebriefType.POST_INCIDENT_REVIEW, held, "S-2"
        )
        yield [incident]
    plan = plans.get(person)
    if plan is not None and rng.random() < 0.6:
        when = max(end + timedelta(days=rng.choice((2, 5, 9))), last_change[person])
        clock.fixed = max(clock.now(), when)
        reason = RevisionReason(incidents=(stream,), note=f"after {ref}")
        if rng.random() < 0.5:
            plan.revise(
                content(when.date() + timedelta(days=180), f"learning from {ref}"), reason, when
            )
        else:
            plan.review_unchanged(reason, when, when.date() + timedelta(days=90))
        last_change[person] = when
        yield [plan]


def fixed_state(**kwargs: int) -> State:
    """The history folded in memory, as signed by 'lee'."""
    events: list[tuple[DomainEvent, str]] = []
    try:
        for batch in steps(**kwargs):
            for aggregate in batch:
                for event in aggregate.collect_events():
                    if not isinstance(event, DomainEvent):
                        raise AssertionError("domain events only")
                    events.append((event, "lee"))
    finally:
        clock.fixed = None
    return fold(events)


def save_history(service: object, *, chunk: int = 40, **kwargs: int) -> None:
    """Save the history to a ledger through a `LedgerService`, `chunk` steps per transaction
    (each aggregate's events stay in order; the state folded is the same)."""
    save = service.save_batch  # type: ignore[attr-defined]
    pending: dict[int, Aggregate] = {}
    try:
        for n, batch in enumerate(steps(**kwargs), 1):
            for aggregate in batch:
                pending.setdefault(id(aggregate), aggregate)
            if n % chunk == 0:
                save(list(pending.values()))
                pending.clear()
        save(list(pending.values()))
    finally:
        clock.fixed = None


def incident_stream(ref: str) -> UUID:
    return uuid5(NS, ref)
