"""The demo's seeded model of a year of restrictive practice in three services.

Everything random comes from one `random.Random(seed)`: keys, salts, references, who is
restrained when, so a seed always gives the same events, the same metrics and the same tree
root. The model (documented in docs/demo.md):

- three services: an English mental-health ward, a Scottish special school and an English
  children's home, each with its own profile, staff and occupancy;
- use is concentrated: each person's weekly rate follows a Zipf-like weight, so a few people
  account for most interventions;
- time of day follows each setting's peaks (ward and home: evenings; school: mornings and
  after lunch);
- one person's plan is revised after a run of incidents, and their rate then falls by 70 %;
- occasional prone restraint on the ward, late or missing debriefs, an injury, a correction,
  lapsing training, and an authorisation that expires mid-year.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from domain.authorisations import Scope
from domain.events import clock
from domain.incidents import Injury, Intervention
from domain.plans import PlanContent, RevisionReason, Tertiary
from domain.staff import Training
from domain.techniques import default_catalogue
from domain.vocabulary import AuthorisationKind, DebriefType, Profile, Recipient, Setting
from ledger.recording import NewIncident, RecordingService

START = datetime(2025, 11, 1, tzinfo=UTC)
MONTHS = 12
END = datetime(2026, 11, 1, tzinfo=UTC)
SIZES = {"small": 1.0, "medium": 10.0, "large": 100.0}


@dataclass(frozen=True)
class ServicePlan:
    service_id: str
    name: str
    setting: Setting
    profile: Profile
    people: int
    staff: int
    places: tuple[str, ...]
    peak_hours: tuple[int, ...]
    weekly_rate: float  # interventions per week for the most restrained person
    reason: str
    types: tuple[tuple[str, str | None, str | None], ...]  # (type, technique, position)


SERVICES = (
    ServicePlan(
        "ward-3",
        "Ward 3 (adult acute)",
        Setting.MENTAL_HEALTH_UNIT,
        Profile.UK_ENG_MH_UNIT,
        14,
        8,
        ("Lounge", "Corridor", "Bedroom", "Dining room"),
        (18, 19, 20, 21, 9),
        1.6,
        "10",
        (
            ("07", "one-person-hold", "standing"),
            ("08", "two-person-escort", "restrictive-escort"),
            ("11", "two-person-seated", "seated"),
            ("09", "three-person-supine", "supine"),
            ("05", "seclusion-room", None),
        ),
    ),
    ServicePlan(
        "oak-school",
        "Oak School (special, Scotland)",
        Setting.SPECIAL_SCHOOL,
        Profile.UK_SCO_SCHOOL,
        20,
        10,
        ("Classroom 2", "Playground", "Hall", "Corridor"),
        (9, 10, 13, 14),
        1.1,
        "SCH-INJURY",
        (
            ("SCH-RESTRAINT", "one-person-hold", "standing"),
            ("SCH-RESTRAINT", "two-person-escort", "restrictive-escort"),
            ("SCH-RESTRAINT", "two-person-seated", "seated"),
        ),
    ),
    ServicePlan(
        "elm-house",
        "Elm House (children's home)",
        Setting.CHILDRENS_HOME,
        Profile.UK_ENG_CHILDRENS_HOME,
        5,
        6,
        ("Kitchen", "Lounge", "Garden"),
        (17, 18, 19, 20, 21),
        1.3,
        "CH-INJURY",
        (
            ("CH-RESTRAINT", "one-person-hold", "standing"),
            ("CH-RESTRAINT", "two-person-escort", "restrictive-escort"),
        ),
    ),
)


@dataclass
class Outcome:
    incidents: int = 0
    per_person: dict[str, int] = field(default_factory=dict)
    revised_person: str = ""
    revised_at: datetime | None = None


@dataclass(frozen=True)
class Signers:
    """Who signs what in the demo: each writes only what its role allows."""

    lead: RecordingService  # services, people, staff, plans, erasure
    recorder: RecordingService  # incidents and their follow-up
    manager: RecordingService  # sign-off
    authoriser: RecordingService  # authorisations


class DemoHistory:
    def __init__(
        self,
        signers: Signers,
        seed: int,
        size: str,
        progress: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.signers = signers
        self.s = signers.lead
        self.rng = random.Random(seed)
        self.scale = SIZES[size]
        self.progress = progress
        self.outcome = Outcome()
        for service in (signers.lead, signers.recorder, signers.manager, signers.authoriser):
            service.new_ref = self._ref
            service.new_id = self._id

    def _ref(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(48):012X}"

    def _id(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, when: datetime) -> None:
        """Sign what follows as if recorded at `when`."""
        clock.fixed = when

    def build(self) -> Outcome:
        try:
            self.at(START - timedelta(days=30))
            self.s.publish_catalogue(default_catalogue(), None)
            for setting in SERVICES:
                self._service(setting)
            for week in range(MONTHS * 52 // 12 + 1):
                for setting in SERVICES:
                    self._week(setting, START + timedelta(weeks=week))
        finally:
            clock.fixed = None
        return self.outcome

    # --- set-up ----------------------------------------------------------------------------

    def _service(self, st: ServicePlan) -> None:
        s = self.s
        s.register_service(st.service_id, st.name, st.setting, [st.profile])
        for n in range(self._people(st)):
            s.register_person(
                self._person(st, n),
                st.service_id,
                full_name=f"{self.rng.choice(NAMES)} Example-{n}",
                learning_disability_or_autism=self.rng.random() < 0.4,
            )
        for n in range(st.staff):
            staff_id = f"{st.service_id[:3].upper()}-S{n:02d}"
            s.register_staff(
                staff_id,
                st.service_id,
                self.rng.choice(TITLES),
                f"{self.rng.choice(NAMES)} Staff-{n}",
            )
            lapses = date(2026, 1 + n % 12, 1) if n % 4 == 0 else date(2027, 3, 1)
            s.record_training(
                staff_id,
                Training(
                    course="CALM Physical Skills",
                    curriculum="CALM",
                    techniques=tuple(t for _, t, _ in st.types if t),
                    completed_on=date(2025, 3, 1),
                    valid_until=lapses,
                    provider="CALM Training",
                ),
            )
        first = self._person(st, 0)
        s.publish_plan(first, self._plan(st), START - timedelta(days=20))
        month = START
        while month < END:
            following = (month + timedelta(days=32)).replace(day=1)
            days = (following - month).days
            s.record_occupancy(
                st.service_id,
                month.date(),
                (following - timedelta(days=1)).date(),
                self._people(st) * days,
            )
            month = following
        if st.service_id == "ward-3":
            self.signers.authoriser.grant_authorisation(
                AuthorisationKind.PLANNED,
                st.service_id,
                Scope(person_id=first, techniques=("two-person-seated", "one-person-hold")),
                f"{st.service_id[:3].upper()}-S00",
                "responsible clinician",
                START,
                START + timedelta(days=180),
            )

    def _people(self, st: ServicePlan) -> int:
        people: float = st.people * min(self.scale, 10.0) ** 0.5
        return round(people)

    @staticmethod
    def _person(st: ServicePlan, n: int) -> str:
        return f"{st.service_id[:3].upper()}-P{n:03d}"

    def _plan(self, st: ServicePlan) -> PlanContent:
        return PlanContent(
            primary=("predictable routine", "sensory breaks"),
            secondary=("notice pacing and raised voice", "offer quiet space"),
            tertiary=Tertiary(
                approved_techniques=tuple(t for _, t, _ in st.types[:3] if t),
                excluded_positions=("prone",),
                max_minutes=10,
            ),
            recovery=("debrief with a trusted adult", "restore relationships"),
            co_produced_with=("person", "family"),
            review_due=(START + timedelta(days=180)).date(),
        )

    # --- a week of incidents -----------------------------------------------------------------

    def _week(self, st: ServicePlan, monday: datetime) -> None:
        for n in range(self._people(st)):
            person = self._person(st, n)
            rate = st.weekly_rate * self.scale**0.5 / (n + 1) ** 1.3
            if self._revised(person, monday):
                rate *= 0.3
            for _ in range(self._poisson(rate)):
                self._incident(st, person, monday)

    def _revised(self, person: str, when: datetime) -> bool:
        o = self.outcome
        return o.revised_person == person and o.revised_at is not None and when > o.revised_at

    def _poisson(self, rate: float) -> int:
        count, threshold, product = 0, pow(2.718281828, -rate), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        return count

    def _incident(self, st: ServicePlan, person: str, monday: datetime) -> None:
        rng, s = self.rng, self.signers.recorder
        day = monday + timedelta(days=rng.randrange(5 if "school" in st.service_id else 7))
        start = day.replace(hour=rng.choice(st.peak_hours), minute=rng.randrange(60))
        if start >= END:
            return
        kind, technique, position = rng.choice(st.types)
        if st.service_id == "ward-3" and rng.random() < 0.02:
            kind, technique, position = "01", "three-person-prone", "prone"
        minutes = max(1, min(45, int(rng.lognormvariate(1.8, 0.6))))
        end = start + timedelta(minutes=minutes)
        staff_ids = self._staff(st, technique)
        injuries: tuple[Injury, ...] = ()
        if rng.random() < 0.01:
            injuries = (Injury(person="staff", description="bruised forearm", severity="minor"),)
        if self.outcome.incidents == 40:
            injuries = (
                Injury(
                    person="subject",
                    description="carpet burn to the cheek",
                    severity="serious",
                    treatment="seen by the duty doctor",
                ),
            )
        self.at(end + timedelta(hours=rng.choice((1, 2, 3, 5, 30))))  # sometimes late
        ref = s.record_incident(
            NewIncident(
                service=st.service_id,
                person=person,
                place=rng.choice(st.places),
                start=start,
                end=end,
                reason=st.reason,
                de_escalation=("calm voice", "offered space"),
                antecedents="became distressed when plans changed",
                force_description="held as trained, released as soon as safe",
                outcome="settled; reconnected with staff",
                injuries=injuries,
                authorisation=None,
                part_of_care_plan=False,
                interventions=(
                    Intervention.by_staff(
                        staff_ids,
                        type=kind,
                        technique_id=technique,
                        position=position,
                        start=start,
                        end=end,
                    ),
                ),
            )
        )
        self.outcome.incidents += 1
        self.outcome.per_person[person] = self.outcome.per_person.get(person, 0) + 1
        self.progress(1)
        self._follow_up(st, ref, person, start, end, staff_ids)

    def _staff(self, st: ServicePlan, technique: str | None) -> list[str]:
        needed = {
            "two-person-escort": 2,
            "two-person-seated": 2,
            "three-person-supine": 3,
            "three-person-prone": 3,
        }.get(technique or "", 1)
        pool = [f"{st.service_id[:3].upper()}-S{n:02d}" for n in range(st.staff)]
        return self.rng.sample(pool, needed)

    def _follow_up(
        self,
        st: ServicePlan,
        ref: str,
        person: str,
        start: datetime,
        end: datetime,
        staff: list[str],
    ) -> None:
        rng, s = self.rng, self.signers.recorder
        if rng.random() < 0.85:
            held = end + timedelta(hours=rng.choice((1, 2, 4, 30)))  # sometimes late
            self.at(held + timedelta(minutes=30))
            s.record_debrief(ref, DebriefType.IMMEDIATE, held, staff[0])
        if rng.random() < 0.7:
            held = end + timedelta(hours=rng.choice((20, 48, 70, 100)))
            self.at(held + timedelta(hours=1))
            s.record_debrief(
                ref, DebriefType.PERSON, held, staff[0], persons_account="I felt cornered"
            )
        if st.profile in (Profile.UK_SCO_SCHOOL, Profile.UK_ENG_CHILDRENS_HOME):
            sent = end + timedelta(hours=rng.choice((2, 5, 20, 30)))
            self.at(sent)
            s.notify(ref, Recipient.PARENT_CARER, sent, "phone", staff[0])
        if st.profile is Profile.UK_ENG_CHILDRENS_HOME and rng.random() < 0.9:
            signed = end + timedelta(hours=rng.choice((20, 40, 60)))
            self.at(signed)
            self.signers.manager.sign_off(ref, signed, signed - timedelta(hours=2), signed)
        if self.outcome.incidents == 25:  # a recorded type corrected after review
            self.at(end + timedelta(days=2))
            s.correct_incident(
                ref,
                1,
                "reviewed on CCTV: the hold was seated",
                {
                    "interventions": [
                        {
                            "type": st.types[2][0],
                            "technique_id": st.types[2][1],
                            "position": st.types[2][2],
                            "start": start,
                            "end": end,
                            "staff_count": 2,
                            "staff": [
                                {"staff_id": x} for x in self._staff(st, "two-person-seated")
                            ],
                        }
                    ]
                },
            )
        self._learning_loop(st, ref, person, end)

    def _learning_loop(self, st: ServicePlan, ref: str, person: str, end: datetime) -> None:
        """After the first person's 12th incident their plan is revised; use then falls."""
        o = self.outcome
        if o.revised_person or person != self._person(st, 0) or st.service_id != "ward-3":
            return
        if o.per_person.get(person, 0) < 12:
            return
        at = end + timedelta(days=5)
        self.at(at)
        incident = self.s.incident(ref)
        self.s.revise_plan(
            person,
            self._plan(st),
            RevisionReason(
                incidents=(incident.id,),
                note="triggers identified: changes to routine at shift"
                " handover; added a visual schedule and a named keyworker at handover",
            ),
            at,
        )
        o.revised_person, o.revised_at = person, at


NAMES = (
    "Alex",
    "Sam",
    "Jo",
    "Riley",
    "Morgan",
    "Casey",
    "Jamie",
    "Robin",
    "Ash",
    "Kit",
    "Noor",
    "Priya",
    "Tomas",
    "Ewan",
    "Isla",
    "Maya",
    "Leo",
    "Zara",
)
TITLES = (
    "Healthcare assistant",
    "Staff nurse",
    "Teaching assistant",
    "Residential worker",
    "Senior support worker",
)
