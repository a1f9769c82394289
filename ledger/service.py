"""Application service: check permission → load → one aggregate call → save → return the id.

No SQL, no click, no formatting. Every write goes through `_save`, which checks that the signer
is enrolled, uses its current key, is not revoked, and holds a role that may sign every event
about to be written — before anything is stored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.errors import PermissionDenied
from domain.events import Aggregate, DomainEvent
from domain.roles import Role, check_may_sign
from ledger.actors import LOG_ACTOR, Actor, actor_id
from ledger.app import LedgerApp, storage_errors
from ledger.erasure import SubjectErasure, erasure_id
from ledger.errors import KeysOutdated, NotFound, SignerChanged, ValidationError
from ledger.keys import actor_key_id
from ledger.mapper import Signer

SAVE_ATTEMPTS = 3  # an append refused because the signer or a subject's key changed meanwhile


class LedgerService:
    def __init__(self, app: LedgerApp, signer: Signer, log_public_key: bytes) -> None:
        self.app = app
        self.signer = signer
        self.log_public_key = log_public_key
        self._signer_state: Actor | None = None

    # --- actors ----------------------------------------------------------------------------

    def enrol_actor(self, name: str, roles: Iterable[Role], public_key: bytes) -> UUID:
        if self._exists(actor_id(name)):
            raise ValidationError(f"actor {name!r} is already enrolled")
        actor = Actor.enrol(name, tuple(roles), _b64(public_key), actor_key_id(public_key))
        return self._save(actor)

    def rekey_actor(self, name: str, public_key: bytes, reason: str) -> UUID:
        actor = self.actor(name)
        actor.rekey(_b64(public_key), actor_key_id(public_key), reason)
        return self._save(actor)

    def revoke_actor(self, name: str, reason: str) -> UUID:
        if name == self.signer.actor:
            raise ValidationError("an actor cannot revoke itself; ask another admin")
        actor = self.actor(name)
        actor.revoke(reason)
        return self._save(actor)

    def actor(self, name: str) -> Actor:
        try:
            with storage_errors(self.app.store_url):
                return self.app.repository.get(actor_id(name))
        except AggregateNotFoundError:
            raise NotFound(f"no actor named {name!r} is enrolled") from None

    # --- erasure ---------------------------------------------------------------------------

    def erase_subject(self, subject: str, reason: str) -> UUID:
        """Record the signed erasure, then destroy the subject's data key.

        Idempotent: if a previous run recorded the event but died before destroying the key,
        running it again finishes the job.
        """
        store = self.app.store
        with storage_errors(self.app.store_url):
            if store.is_erased(subject):
                raise ValidationError(f"subject {subject!r} is already erased")
            if not self._exists(erasure_id(subject)):
                self._save(SubjectErasure.erase(subject, reason))
            store.destroy_data_key(subject)
        return erasure_id(subject)

    # --- the one way to write --------------------------------------------------------------

    def authorise(self, *event_types: str) -> None:
        """Raise PermissionDenied unless the signer may sign all these event types now.

        Callers that write anything else first (a new keystore) ask before they do.
        """
        loaded_before = self._signer_state is not None
        try:
            self._check_may_sign(event_types)
        except PermissionDenied:
            if not loaded_before:
                raise
            self._signer_state = None  # a role granted meanwhile by another process counts
            self._check_may_sign(event_types)

    def _check_may_sign(self, event_types: Iterable[str]) -> None:
        roles = self._signer_roles()
        for event_type in event_types:
            check_may_sign(self.signer.actor, roles, event_type)

    def _save(self, aggregate: Aggregate) -> UUID:
        self.save_batch([aggregate])
        return aggregate.id

    def save_batch(self, aggregates: Iterable[Aggregate]) -> None:
        """Save several aggregates' pending events in one transaction (all or nothing)."""
        events: list[DomainEvent] = [e for a in aggregates for e in a.collect_events()]  # type: ignore[misc]
        types = {event.TYPE for event in events}
        self.authorise(*types)
        with storage_errors(self.app.store_url):
            self.app.store.prefetch_keys(_subjects_to_look_up(events))
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                self._append(events)
                return
            except SignerChanged:
                self._signer_state = None  # reload: refused now if no longer allowed
                self.authorise(*types)
                if attempt == SAVE_ATTEMPTS:
                    raise
            except KeysOutdated as outdated:
                if attempt == SAVE_ATTEMPTS:
                    raise
                with storage_errors(self.app.store_url):  # seal again under the stored keys
                    self.app.store.prefetch_keys(outdated.subjects)

    def _append(self, events: list[DomainEvent]) -> None:
        state = self._signer_state
        as_of = (None, 0) if state is None else (actor_id(state.name), state.version)
        mapper = self.app.envelope_mapper
        try:
            with (
                storage_errors(self.app.store_url),
                mapper.signing_as(self.signer),
                self.app.store.signer_as_of(*as_of),
            ):
                self.app.events.put(events)  # what `save` does, minus its per-object checks
        except BaseException:
            mapper.forget_chain({e.originator_id for e in events})  # nothing of it was stored
            raise

    def _signer_roles(self) -> frozenset[Role]:
        """The signer's roles, after checking its key is current and not revoked.

        Checked against the actor as last loaded; the append itself then fails if the actor's
        stream has moved on since (`LedgerTables.signer_as_of`).
        """
        if self.signer.actor == LOG_ACTOR:
            if self.signer.key.public_key != self.log_public_key:
                raise PermissionDenied("this key is not the ledger's log key")
            return frozenset({Role.LOG})
        return self._roles_of(self._current_signer_state())

    def _roles_of(self, actor: Actor) -> frozenset[Role]:
        if actor.revoked:
            raise PermissionDenied(f"actor {actor.name!r} is revoked and may not sign")
        if actor.key_id != self.signer.key.key_id:
            raise PermissionDenied(
                f"key {self.signer.key.key_id} is not the current key of actor {actor.name!r}"
                f" (current: {actor.key_id})"
            )
        return frozenset(actor.roles)

    def _current_signer_state(self) -> Actor:
        """The signer's actor as last loaded (loaded once per service)."""
        if self._signer_state is None:
            try:
                self._signer_state = self.actor(self.signer.actor)
            except NotFound:
                raise PermissionDenied(f"actor {self.signer.actor!r} is not enrolled") from None
        return self._signer_state

    def _exists(self, aggregate_id: UUID) -> bool:
        with storage_errors(self.app.store_url):
            return bool(self.app.recorder.select_events(aggregate_id, limit=1))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _subjects_to_look_up(events: list[DomainEvent]) -> set[str]:
    """Subjects whose data keys sealing needs, except those the batch itself registers: they
    cannot have a key yet (if one was made meanwhile, the append says so and is sealed again)."""
    introduced: set[str | None] = set()
    personal: set[str | None] = set()
    for e in events:
        if e.INTRODUCES_SUBJECT:
            introduced.add(e.scope_subject())
        elif e.PERSONAL:
            personal.add(e.scope_subject())
    return {s for s in personal - introduced if s}
