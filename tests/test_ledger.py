"""The signed ledger on both stores: writing, reading back, permissions, erasure, verify."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import PermissionDenied
from domain.people import Person, person_stream
from domain.roles import Role
from ledger import merkle
from ledger.envelope import decode_envelope
from ledger.errors import ValidationError
from ledger.keys import SigningKey
from ledger.verify_store import verify_store
from tests.conftest import ORIGIN, Ledger


def verified(ledger: Ledger) -> bool:
    app = ledger.open()
    try:
        report = verify_store(
            app, origin=ORIGIN, log_name=ORIGIN, log_public_key=ledger.log_key.public_key
        )
    finally:
        app.close()
    return report.verified


def test_a_new_ledger_verifies(ledger: Ledger) -> None:
    app = ledger.open()
    assert app.store.head().size == 1
    app.close()
    assert verified(ledger)


def test_an_enrolled_actor_can_sign_what_its_role_allows(ledger: Ledger) -> None:
    app = ledger.open()
    lead = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.service(app, "lee", lead).register_person("P-001", "ward-1", full_name="Alex Doe")
    assert app.store.head().size == 3
    app.close()
    assert verified(ledger)


def test_a_recorder_may_not_enrol_actors(ledger: Ledger) -> None:
    app = ledger.open()
    key = ledger.enrol(app, "sam", Role.RECORDER)
    size = app.store.head().size
    with pytest.raises(PermissionDenied, match=r"may not sign 'actor\.enrolled'"):
        ledger.service(app, "sam", key).enrol_actor("eve", (Role.ADMIN,), key.public_key)
    assert app.store.head().size == size
    app.close()


def test_a_revoked_actor_cannot_write(ledger: Ledger) -> None:
    app = ledger.open()
    key = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    ledger.service(app).revoke_actor("lee", "left the organisation")
    size = app.store.head().size
    with pytest.raises(PermissionDenied, match="revoked"):
        ledger.service(app, "lee", key).register_person("P-002", "ward-1")
    assert app.store.head().size == size
    app.close()


def test_an_old_key_is_refused_after_rekey(ledger: Ledger) -> None:
    app = ledger.open()
    old = ledger.enrol(app, "lee", Role.SAFEGUARDING_LEAD)
    new = SigningKey.generate()
    ledger.service(app).rekey_actor("lee", new.public_key, "scheduled rotation")
    with pytest.raises(PermissionDenied, match="not the current key"):
        ledger.service(app, "lee", old).register_person("P-003", "ward-1")
    ledger.service(app, "lee", new).register_person("P-003", "ward-1")
    app.close()
    assert verified(ledger)


def test_personal_fields_are_sealed_in_storage(ledger: Ledger) -> None:
    app = ledger.open()
    ledger.service(app).register_person(
        "P-004", "ward-1", full_name="Zebedee Quartermain", date_of_birth=date(2011, 3, 14)
    )
    raw = b"".join(row.event.state for row in app.store.iter_leaves() if row.event is not None)
    assert b"Zebedee" not in raw and b"Quartermain" not in raw
    assert b"2011-03-14" not in raw
    person_event = app.repository.get(person_stream("P-004"))
    assert person_event.pseudonym == "P-004"
    app.close()


def test_sealed_fields_read_back_until_erased(ledger: Ledger) -> None:
    app = ledger.open()
    service = ledger.service(app)
    service.register_person(
        "P-005", "ward-1", full_name="Yusuf Example", date_of_birth=date(2010, 1, 2)
    )
    events = app.events.get(person_stream("P-005"))
    (registered,) = list(events)
    assert registered.full_name == "Yusuf Example"  # type: ignore[attr-defined]
    service.erase_subject("P-005", "retention period ended")
    fresh = ledger.open()
    (after,) = list(fresh.events.get(person_stream("P-005")))
    assert after.full_name is None and after.date_of_birth is None  # type: ignore[attr-defined]
    assert after.pseudonym == "P-005"  # type: ignore[attr-defined]
    fresh.close()
    app.close()
    assert verified(ledger)


def test_erasing_twice_is_refused(ledger: Ledger) -> None:
    app = ledger.open()
    service = ledger.service(app)
    service.register_person("P-006", "ward-1", full_name="Wren Example")
    service.erase_subject("P-006", "data subject request")
    with pytest.raises(ValidationError, match="already erased"):
        service.erase_subject("P-006", "again")
    app.close()


def test_tree_matches_recomputation_after_many_appends(ledger: Ledger) -> None:
    app = ledger.open()
    service = ledger.service(app)
    for i in range(40):
        service.register_person(f"P-{i:04d}", "ward-2")
    head = app.store.head()
    leaves = [
        merkle.leaf_hash(decode_envelope(r.event.state).header_bytes)
        for r in app.store.iter_leaves()
        if r.event is not None
    ]
    assert head.size == len(leaves) == 41
    assert merkle.root_from_border(head.size, head.border) == merkle.tree_hash(
        head.size, merkle.ListHashReader(leaves)
    )
    app.close()
    assert verified(ledger)


def test_a_long_lived_writer_keeps_a_bounded_key_cache(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.store import base

    monkeypatch.setattr(base, "KEY_CACHE_SUBJECTS", 8)
    app = ledger.open()
    service = ledger.service(app)
    for i in range(30):
        service.register_person(f"P-{i:04d}", "ward-2", full_name=f"Person {i}")
    store = app.store
    assert len(store._key_cache) + len(store._keyless) <= 8 + 1
    (first,) = list(app.events.get(person_stream("P-0000")))  # evicted, read again
    assert first.full_name == "Person 0"  # type: ignore[attr-defined]
    service.erase_subject("P-0001", "retention period ended")
    with pytest.raises(ValidationError):
        service.erase_subject("P-0001", "again")
    app.close()
    assert verified(ledger)


def test_a_long_lived_writer_is_stopped_by_a_revocation_made_elsewhere(ledger: Ledger) -> None:
    writer_app, admin_app = ledger.open(), ledger.open()
    key = ledger.enrol(admin_app, "lee", Role.SAFEGUARDING_LEAD)
    writer = ledger.service(writer_app, "lee", key)
    writer.register_person("P-010", "ward-1")  # loads and caches lee's actor state
    ledger.service(admin_app).revoke_actor("lee", "left the organisation")
    size = admin_app.store.head().size
    with pytest.raises(PermissionDenied, match="revoked"):
        writer.register_person("P-011", "ward-1")
    assert admin_app.store.head().size == size
    writer_app.close()
    admin_app.close()
    assert verified(ledger)


def test_a_long_lived_writer_is_stopped_by_a_rekey_made_elsewhere(ledger: Ledger) -> None:
    writer_app, admin_app = ledger.open(), ledger.open()
    key = ledger.enrol(admin_app, "lee", Role.SAFEGUARDING_LEAD)
    writer = ledger.service(writer_app, "lee", key)
    writer.register_person("P-012", "ward-1")
    ledger.service(admin_app).rekey_actor("lee", SigningKey.generate().public_key, "lost laptop")
    size = admin_app.store.head().size
    with pytest.raises(PermissionDenied, match="not the current key"):
        writer.register_person("P-013", "ward-1")
    assert admin_app.store.head().size == size
    writer_app.close()
    admin_app.close()


@pytest.mark.parametrize("earlier_appends", [1, 2])
def test_the_signer_check_runs_inside_the_write(ledger: Ledger, earlier_appends: int) -> None:
    """Revoked between the service's check and the write: the append itself refuses. With
    two earlier appends the writer's last commit checked its signer and nothing was appended
    since, so on SQLite it would skip reading the signer's actor again; the revocation by
    another process is an append, which must end that skip."""
    writer_app, admin_app = ledger.open(), ledger.open()
    key = ledger.enrol(admin_app, "lee", Role.SAFEGUARDING_LEAD)
    writer = ledger.service(writer_app, "lee", key)
    for n in range(earlier_appends):
        writer.register_person(f"P-01{n}", "ward-1")
    checks = iter([lambda *types: None])  # the service's first check passes…
    real_authorise = writer.authorise
    writer.authorise = lambda *types: next(checks, real_authorise)(*types)  # type: ignore[method-assign]
    ledger.service(admin_app).revoke_actor("lee", "left the organisation")  # …then this
    size = admin_app.store.head().size
    with pytest.raises(PermissionDenied, match="revoked"):
        writer.register_person("P-015", "ward-1")
    assert admin_app.store.head().size == size
    writer_app.close()
    admin_app.close()
    assert verified(ledger)


def test_a_writer_that_re_keyed_itself_cannot_sign_with_the_old_key(ledger: Ledger) -> None:
    """The writer's own commit changed its actor: nothing else has been appended since, yet
    the next append must read the actor again, and refuse the replaced key."""
    app = ledger.open()
    admin = ledger.service(app)
    admin.register_person("P-033", "ward-1")
    admin.rekey_actor("ada", SigningKey.generate().public_key, "rotation")
    size = app.store.head().size
    with pytest.raises(PermissionDenied, match="not the current key"):
        admin.register_person("P-034", "ward-1")
    assert app.store.head().size == size
    app.close()
    assert verified(ledger)


def test_a_writer_whose_actor_changed_but_is_still_valid_reloads_and_writes(
    ledger: Ledger,
) -> None:
    writer_app, admin_app = ledger.open(), ledger.open()
    key = ledger.enrol(admin_app, "lee", Role.SAFEGUARDING_LEAD)
    writer = ledger.service(writer_app, "lee", key)
    writer.register_person("P-016", "ward-1")
    admin = ledger.service(admin_app)
    admin.rekey_actor("lee", SigningKey.generate().public_key, "rotation")
    admin.rekey_actor("lee", key.public_key, "rotation undone")  # valid again, stream moved on
    size = admin_app.store.head().size
    writer.register_person("P-017", "ward-1")  # refused under the lock, reloaded, written
    assert admin_app.store.head().size == size + 1
    assert writer._signer_state is not None and writer._signer_state.version == 3
    writer_app.close()
    admin_app.close()
    assert verified(ledger)


def test_a_subject_keyed_meanwhile_is_sealed_again_under_the_stored_key(ledger: Ledger) -> None:
    """A writer that has not seen a subject guesses it is new and makes a key; if the subject
    has one by the time of the write, the append is refused and sealed again under it."""
    app = ledger.open()
    stored_key = bytes(range(32))
    with app.store.transaction(commit=True) as c:  # as if another writer had just stored it
        c.execute(
            app.store.sql("INSERT INTO {subject_keys} (subject, data_key) VALUES (?, ?)"),
            ("P-041", stored_key),
        )
    ledger.service(app).register_person("P-041", "ward-1", full_name="Sealed Twice")
    assert app.store._key_cache["P-041"] == stored_key
    fresh = ledger.open()
    (registered,) = list(fresh.events.get(person_stream("P-041")))
    assert registered.full_name == "Sealed Twice"  # type: ignore[attr-defined]
    fresh.close()
    app.close()
    assert verified(ledger)


def test_personal_data_of_an_erased_subject_is_refused_by_a_writer_that_never_saw_it(
    ledger: Ledger,
) -> None:
    other = ledger.open()
    other.store.destroy_data_key("P-042")  # a tombstone, as erasure leaves
    other.close()
    app = ledger.open()
    size = app.store.head().size
    with pytest.raises(ValidationError, match="erased"):
        ledger.service(app).register_person("P-042", "ward-1", full_name="Not Again")
    assert app.store.head().size == size
    ledger.service(app).register_person("P-042", "ward-1")  # nothing personal: allowed
    app.close()
    assert verified(ledger)


def test_a_writer_looks_up_existing_subjects_but_not_those_it_registers() -> None:
    """Sealing needs the subject's stored key; a batch that registers a subject cannot find
    one, so only the others are looked up before the append."""
    from ledger.service import _subjects_to_look_up
    from tests.test_domain_incidents import record

    incident = record()  # about P-0001, who was registered earlier
    newcomer = Person.register("P-0002", "ward-3", full_name="New Here")
    events = [*incident.collect_events(), *newcomer.collect_events()]
    assert _subjects_to_look_up(events) == {"P-0001"}  # type: ignore[arg-type]
