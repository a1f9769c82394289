"""The eventsourcing `Mapper` that turns domain events into signed envelopes and back.

Domain code never sees signatures: the application sets who is signing (`signing_as`) and
saves aggregates as usual; this mapper seals personal fields, signs the header and chains it
to the previous envelope of the stream. Reading back, it opens the disclosures it has keys for
and validates the event with pydantic (the library's own mapper bypasses validation).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib
import operator
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from uuid import UUID

from eventsourcing.domain import CanInitAggregate
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.events import DomainEvent, aggregate_class, event_class
from ledger.canonical import canonical_bytes, format_datetime
from ledger.envelope import (
    SEALED_KEY,
    Envelope,
    Header,
    RandomBytes,
    build_header,
    decode_envelope,
    encode_envelope,
    open_disclosure,
    seal,
    signing_input,
)
from ledger.errors import ValidationError

if TYPE_CHECKING:  # the signing libraries cost a reader ~13 ms to import, and it signs nothing
    from ledger.keys import SigningKey

_TECHNICAL = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


class SubjectKeys(Protocol):
    """Where the per-subject data keys live (a table beside the events)."""

    def data_key(self, subject: str, *, create: bool) -> bytes | None:
        """The subject's key; created if asked and absent; None once erased."""

    def prefetch_keys(self, subjects: Iterable[str]) -> None:
        """Load many subjects' keys at once, before a batch is sealed."""


class StreamHeads(Protocol):
    def header_digest(self, stream: UUID, version: int) -> bytes:
        """SHA-256 of the header of the envelope at (stream, version)."""


@dataclass(frozen=True)
class Signer:
    actor: str
    key: SigningKey


class NoSigner(ValidationError):
    """Something tried to save without saying who signs."""


@dataclass(frozen=True, slots=True)
class _Unsigned:
    """An envelope's parts before its signature."""

    stream: UUID
    version: int
    topic: str
    header: bytes
    data: bytes
    disclosures: bytes

    def signed(self, signature: bytes) -> StoredEvent:
        state = encode_envelope(self.header, signature, self.data, self.disclosures)
        return StoredEvent(
            originator_id=self.stream,
            originator_version=self.version,
            topic=self.topic,
            state=state,
        )


class EnvelopeMapper(Mapper[UUID]):
    CHAIN_CACHE_SIZE = 10_000

    def __init__(self, origin: str) -> None:
        # The library's transcoder, compressor and cipher are not used: the envelope is ours.
        self.origin = origin
        self.signer: Signer | None = None
        self.subject_keys: SubjectKeys | None = None
        self.stream_heads: StreamHeads | None = None
        self.random_bytes: RandomBytes = os.urandom  # salts and nonces; fixed only in examples
        self._chain: OrderedDict[tuple[UUID, int], bytes] = OrderedDict()

    def bind(self, subject_keys: SubjectKeys, stream_heads: StreamHeads) -> None:
        self.subject_keys = subject_keys
        self.stream_heads = stream_heads

    @contextmanager
    def signing_as(self, signer: Signer) -> Iterator[None]:
        previous, self.signer = self.signer, signer
        try:
            yield
        finally:
            self.signer = previous

    # --- writing ---------------------------------------------------------------------------

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return self.to_stored_events([domain_event])[0]

    def to_stored_events(self, domain_events: Sequence[Any]) -> list[StoredEvent]:
        """Seal, chain and sign a batch. The headers are built first and then signed
        together, so a large batch's signatures are made on every CPU at once (the chain
        links header digests, not signatures, so no header waits for a signature)."""
        signer = self.signer
        if signer is None:
            raise NoSigner("no signer: every event must be signed by an enrolled actor")
        unsigned = [self._unsigned(event, signer) for event in domain_events]
        signatures = signer.key.sign_many([signing_input(u.header) for u in unsigned])
        return [u.signed(signature) for u, signature in zip(unsigned, signatures, strict=True)]

    def _unsigned(self, event: DomainEvent, signer: Signer) -> _Unsigned:
        stream, version = event.originator_id, event.originator_version
        stream_text = str(stream)
        fields = _json_fields(event)
        subject = event.scope_subject()
        key = None
        if _has_personal(event, fields):
            key = self._data_key(subject, create=True)
            if key is None:
                raise ValidationError(f"subject {subject!r} was erased: no new personal data")
        data, disclosures = seal(
            fields,
            event.PERSONAL,
            key,
            stream=stream_text,
            version=version,
            random_bytes=self.random_bytes,
        )
        data_bytes = canonical_bytes(data)
        header_bytes = build_header(
            origin=self.origin,
            stream=stream_text,
            version=version,
            type_name=event.TYPE,
            schema=event.SCHEMA,
            recorded_at=format_datetime(event.timestamp),
            actor=signer.actor,
            key_id=signer.key.key_id,
            prev=self._previous(stream, version),
            service=event.scope_service(),
            subject=subject,
            data_bytes=data_bytes,
        )
        self._remember(stream, version, hashlib.sha256(header_bytes).digest())
        return _Unsigned(
            stream,
            version,
            event.TYPE,
            header_bytes,
            data_bytes,
            canonical_bytes(disclosures) if disclosures else b"",
        )

    def _previous(self, stream: UUID, version: int) -> bytes | None:
        if version == 1:
            return None
        cached = self._chain.get((stream, version - 1))
        if cached is not None:
            return cached
        if self.stream_heads is None:
            raise AssertionError("mapper not bound to a store")
        return self.stream_heads.header_digest(stream, version - 1)

    def _remember(self, stream: UUID, version: int, digest: bytes) -> None:
        self._chain[(stream, version)] = digest
        self._chain.pop((stream, version - 1), None)
        while len(self._chain) > self.CHAIN_CACHE_SIZE:
            self._chain.popitem(last=False)

    def forget_chain(self, streams: Iterable[UUID]) -> None:
        """After a failed append: what we chained to may not be what is stored."""
        for key in [k for k in self._chain if k[0] in streams]:
            del self._chain[key]

    def _data_key(self, subject: str | None, *, create: bool) -> bytes | None:
        if subject is None:
            raise AssertionError("an event with personal fields must name its subject")
        if self.subject_keys is None:
            raise AssertionError("mapper not bound to a store")
        return self.subject_keys.data_key(subject, create=create)

    # --- reading ---------------------------------------------------------------------------

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        envelope = decode_envelope(stored_event.state)
        header = envelope.header()
        self._remember(UUID(str(stored_event.originator_id)), header.version, header.digest)
        return build_event(header, self.open_data(envelope))

    def open_data(self, envelope: Envelope) -> dict[str, Any]:
        """The event's fields with every sealed field disclosed, or None where erased."""
        header = envelope.header()
        data = envelope.data()
        sealed: Mapping[str, str] = data.pop(SEALED_KEY, {})
        if not sealed:
            return data
        key = self._data_key(header.subject, create=False)
        encrypted = envelope.disclosures()
        for name, digest in sealed.items():
            if key is None or name not in encrypted:
                data[name] = None
                continue
            data[name] = open_disclosure(
                encrypted[name],
                key,
                stream=header.stream,
                version=header.version,
                name=name,
                digest=digest,
            )
        return data


# The module that declares the events of each aggregate kind (a type name's prefix). Decoding
# imports only the modules of the types it meets: importing all of them costs a one-incident
# query ~90 ms. Only these fixed modules are ever imported, whatever a stored type says.
EVENT_MODULES: Mapping[str, str] = {
    "person": "domain.people",
    "service": "domain.services",
    "staff": "domain.staff",
    "catalogue": "domain.techniques",
    "plan": "domain.plans",
    "authorisation": "domain.authorisations",
    "incident": "domain.incidents",
    "report": "domain.reports",
    "schedule": "domain.reports",
    "actor": "ledger.actors",
    "subject": "ledger.erasure",
}


def known_event_class(type_name: str) -> type[DomainEvent]:
    """The registered event class of a stored type name, importing the module that declares
    its kind on first use; ValidationError if no module declares it."""
    try:
        return event_class(type_name)
    except KeyError:
        pass
    module = EVENT_MODULES.get(type_name.partition(".")[0])
    if module is not None:
        importlib.import_module(module)
    try:
        return event_class(type_name)
    except KeyError:
        raise ValidationError(f"unknown event type {type_name!r}") from None


def build_event(header: Header, fields: dict[str, Any]) -> DomainEvent:
    """The domain event an envelope records, from its header and its (opened) data fields;
    sealed fields not disclosed are None. Validated by pydantic, never constructed raw."""
    cls = known_event_class(header.type)
    fields = {k: v for k, v in fields.items() if k != SEALED_KEY}
    fields.update(
        originator_id=header.stream,
        originator_version=header.version,
        timestamp=header.recorded_at,
    )
    if issubclass(cls, CanInitAggregate):
        fields["originator_topic"] = get_topic(aggregate_class(header.type))
    return cls.model_validate(fields)


def sealed_as_none(data: dict[str, Any]) -> dict[str, Any]:
    """Data fields with every sealed field read as None (what a reader without keys sees)."""
    if SEALED_KEY not in data:
        return data
    opened = dict(data)
    opened.update(dict.fromkeys(opened.pop(SEALED_KEY)))
    return opened


@functools.cache
def _data_field_names(cls: type[DomainEvent]) -> tuple[str, ...]:
    return tuple(k for k in cls.model_fields if k not in _TECHNICAL)


_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def _json_fields(event: DomainEvent) -> dict[str, object]:
    """The event's data fields as canonical-JSON values (`to_json_value` of each; the plain
    scalars most fields hold pass as they are, tested by exact type as `to_json_value`'s
    isinstance would let an enum through)."""
    values = event.__dict__  # a pydantic model's field values
    fields: dict[str, object] = {}
    for name in _data_field_names(type(event)):
        value = values[name]
        fields[name] = value if type(value) in _JSON_SCALARS else to_json_value(value)
    return fields


def _has_personal(event: DomainEvent, fields: Mapping[str, object]) -> bool:
    return any(fields.get(name) is not None for name in event.PERSONAL)


def to_json_value(value: object) -> object:
    """Python values of domain events → the canonical-JSON value space."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    convert = _CONVERTERS.get(kind)
    if convert is None:
        convert = _CONVERTERS[kind] = _converter(kind)
    return convert(value)


_CONVERTERS: dict[type, Callable[[Any], object]] = {}
"""The conversion of each type met, chosen once: the isinstance chain below per value cost
an incident's nested facts ~30 us an append."""


def _converter(kind: type) -> Callable[[Any], object]:
    """How `to_json_value` converts a value of exactly this type (tests in this order:
    an enum that is also a str converts to its value; a datetime is also a date)."""
    if issubclass(kind, enum.Enum):
        return operator.attrgetter("value")
    if issubclass(kind, bool | int | str):
        return _same
    if issubclass(kind, datetime):
        return format_datetime
    if issubclass(kind, date):
        return date.isoformat
    if issubclass(kind, UUID):
        return str
    if issubclass(kind, frozenset):
        return lambda value: [to_json_value(v) for v in sorted(value)]
    if issubclass(kind, list | tuple):
        return lambda value: [to_json_value(v) for v in value]
    if issubclass(kind, Mapping):
        return lambda value: {str(k): to_json_value(v) for k, v in value.items()}
    fields = getattr(kind, "model_fields", None)
    if isinstance(fields, Mapping):  # a pydantic model (no serializers, no extra fields)
        names = tuple(fields)
        return lambda value: {name: to_json_value(getattr(value, name)) for name in names}
    return _refuse


def _same(value: object) -> object:
    return value


def _refuse(value: object) -> NoReturn:
    raise TypeError(f"cannot put a {type(value).__name__} into an envelope")
