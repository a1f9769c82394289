"""A batch's envelopes are signed together (on several CPUs when it is large): the bytes
must be exactly those the events would get one by one, chain links included."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.staff import StaffMember, Training
from ledger import keys
from ledger.envelope import decode_envelope, signing_input
from ledger.keys import SigningKey, verify_signature
from ledger.mapper import EnvelopeMapper, Signer
from tests.formats_example import SEED, _counter_bytes, _FixedKeys, _NoHeads


def _events() -> list[Any]:
    """40 events: 20 staff members, each registered and then trained (so half the batch
    chains to an earlier envelope of the same batch)."""
    training = Training(
        course="CALM Physical Skills",
        curriculum="CALM",
        completed_on=date(2026, 1, 5),
        valid_until=date(2027, 1, 5),
        provider="CALM Training",
    )
    events = []
    for i in range(20):
        member = StaffMember.register(f"staff-{i}", "ward-3", "nurse", full_name=f"Sam {i}")
        member.record_training(training)
        events += member.collect_events()
    return events


def _mapper() -> EnvelopeMapper:
    mapper = EnvelopeMapper(origin="example.org/restraint-ledger")
    mapper.bind(_FixedKeys(), _NoHeads())
    mapper.random_bytes = _counter_bytes()  # type: ignore[assignment]
    return mapper


@pytest.mark.parametrize("cpus", [1, 2, 3])
def test_a_batch_is_stored_exactly_as_its_events_one_by_one(
    cpus: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "_cpus", lambda: cpus)
    events, signer = _events(), Signer("lee", SigningKey(SEED))
    one_by_one, batched = _mapper(), _mapper()
    with one_by_one.signing_as(signer), batched.signing_as(signer):
        expected = [one_by_one.to_stored_event(e) for e in events]
        stored = batched.to_stored_events(events)
    assert [s.state for s in stored] == [s.state for s in expected]
    assert [(s.originator_id, s.originator_version, s.topic) for s in stored] == [
        (s.originator_id, s.originator_version, s.topic) for s in expected
    ]
    for s in stored:
        envelope = decode_envelope(s.state)
        verify_signature(
            signer.key.public_key, signing_input(envelope.header_bytes), envelope.signature
        )
