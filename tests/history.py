"""A generated, realistic history for projection tests (seeded, so reproducible)."""

from __future__ import annotations

import calendar
import random
from datetime import UTC, date, datetime, timedelta

from domain.incidents import Intervention
from domain.roles import Role
from domain.staff import Training
from domain.techniques import default_catalogue
from domain.vocabulary import DebriefType, Profile, Recipient, Setting
from ledger.recording import NewIncident, RecordingService
from tests.conftest import Ledger

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TYPES = [
    ("07", "one-person-hold", "standing"),
    ("08", "two-person-escort", "restrictive-escort"),
    ("11", "two-person-seated", "seated"),
    ("01", "three-person-prone", "prone"),
]


def setup_ward(ledger: Ledger) -> RecordingService:
    app = ledger.open()
    ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    service = ledger.service(app, "lee")
    service.register_service(
        "ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, [Profile.UK_ENG_MH_UNIT]
    )
    service.publish_catalogue(default_catalogue(), None)
    for n in range(6):
        service.register_person(f"P-{n}", "ward-3", full_name=f"Person {n}")
    service.register_staff("S-1", "ward-3", "HCA", "Staff One")
    service.record_training(
        "S-1",
        Training(
            course="CALM PS",
            curriculum="CALM",
            techniques=("one-person-hold",),
            completed_on=date(2025, 6, 1),
            valid_until=date(2026, 6, 1),
            provider="CALM",
        ),
    )
    for month in range(1, 7):
        last = calendar.monthrange(2026, month)[1]
        service.record_occupancy("ward-3", date(2026, month, 1), date(2026, month, last), 300)
    return service


def held_incident(
    person: str, start: datetime, end: datetime, hold: tuple[str, str, str]
) -> NewIncident:
    """One hold by S-1 on ward 3, from `start` to `end`: (type, technique, position)."""
    kind, technique, position = hold
    return NewIncident(
        service="ward-3",
        person=person,
        place="Lounge",
        start=start,
        end=end,
        reason="10",
        de_escalation=("talked",),
        force_description="held",
        outcome="calm",
        interventions=(
            Intervention.by_staff(
                ["S-1"], type=kind, technique_id=technique, position=position, start=start, end=end
            ),
        ),
    )


def add_incidents(
    service: RecordingService, count: int, seed: int = 1, offset: int = 0
) -> list[str]:
    rng = random.Random(seed)
    refs = []
    for n in range(count):
        start = T0 + timedelta(days=(offset + n) * 3, hours=rng.randrange(10))
        end = start + timedelta(minutes=rng.randrange(2, 25))
        kind, technique, position = rng.choice(TYPES)
        person = f"P-{rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 5])}"
        ref = service.record_incident(
            held_incident(person, start, end, (kind, technique, position))
        )
        refs.append(ref)
        if rng.random() < 0.6:
            service.record_debrief(ref, DebriefType.IMMEDIATE, end + timedelta(hours=2), "S-1")
        if rng.random() < 0.3:
            service.notify(ref, Recipient.PARENT_CARER, end + timedelta(hours=5), "phone", "S-1")
        if kind == "01" and rng.random() < 0.5:
            service.correct_incident(
                ref,
                1,
                "it was a seated hold",
                {
                    "interventions": [
                        {
                            "type": "11",
                            "technique_id": "two-person-seated",
                            "position": "seated",
                            "start": start,
                            "end": end,
                            "staff_count": 1,
                            "staff": [{"staff_id": "S-1"}],
                        }
                    ]
                },
            )
    return refs
