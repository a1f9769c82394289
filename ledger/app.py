"""The ledger as an eventsourcing Application: our mapper (signed envelopes) over our
recorders (events + Merkle tree in one transaction), opened from a store URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    InfrastructureFactoryError,
    IntegrityError,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    PersistenceError,
    Recording,
)

from ledger.errors import Conflict, StorageUnavailable
from ledger.mapper import EnvelopeMapper
from ledger.store import StoreURL
from ledger.store.base import LedgerTables
from ledger.store.reads import connect_postgres, first_line, require_ledger_database


class LedgerApp(Application[UUID]):
    name = "calm_ledger"

    def __init__(self, store_url: StoreURL, *, create: bool = False) -> None:
        self.store_url = store_url
        super().__init__(env=store_url.env(create_tables=create))
        self.envelope_mapper.bind(self.store, self.store)

    def construct_mapper(self) -> Mapper[UUID]:
        return EnvelopeMapper(origin="")

    def construct_event_store(self) -> EventStore[UUID]:
        return LedgerEventStore(self.envelope_mapper, self.recorder)

    @property
    def envelope_mapper(self) -> EnvelopeMapper:
        return cast(EnvelopeMapper, self.mapper)

    @property
    def store(self) -> LedgerTables:
        return cast(LedgerTables, self.recorder)


class LedgerEventStore(EventStore[UUID]):
    """The library's event store, mapping a save's events as one batch (the mapper signs
    a batch's envelopes together) instead of one by one."""

    mapper: EnvelopeMapper

    def __init__(self, mapper: EnvelopeMapper, recorder: AggregateRecorder) -> None:
        super().__init__(mapper, recorder)
        self.mapper = mapper

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        stored_events = self.mapper.to_stored_events(domain_events)
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        if not notification_ids:  # as the library's: a recorder without notification ids
            return []
        return [
            Recording(
                d,
                Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=n,
                ),
            )
            for d, s, n in zip(domain_events, stored_events, notification_ids, strict=True)
        ]


def open_app(store_url: StoreURL, *, create: bool = False) -> LedgerApp:
    """Open (or with `create`, set up) the ledger's store; environment errors become exit 3."""
    if not create:
        require_ledger_database(store_url)
    path = store_url.sqlite_path
    if path is not None and create:
        path.parent.mkdir(parents=True, exist_ok=True)
    if store_url.backend == "postgresql":
        _probe_postgres(store_url)
    with storage_errors(store_url):
        app = LedgerApp(store_url, create=create)
        try:
            origin = app.store.meta().get("origin", "")
        except BaseException:
            app.close()  # or its connection pool outlives it and closes from its own thread
            raise
    app.envelope_mapper.origin = origin
    return app


@contextmanager
def storage_errors(store_url: StoreURL) -> Iterator[None]:
    """Translate database failures into errors a person can act on."""
    where = store_url.describe()
    try:
        yield
    except IntegrityError as e:
        raise Conflict(
            "someone else wrote to the same record at the same time; nothing was written,"
            " run the command again"
        ) from e
    except (OperationalError, InterfaceError, InfrastructureFactoryError) as e:
        _check_layout(where, e)
        raise StorageUnavailable(f"cannot use the database {where}: {first_line(e)}") from e
    except (PersistenceError, sqlite3.Error) as e:
        _check_layout(where, e)
        raise StorageUnavailable(f"database error on {where}: {first_line(e)}") from e
    except OSError as e:
        raise StorageUnavailable(f"cannot open {where}: {e.strerror or e}") from e


def _check_layout(where: str, error: BaseException) -> None:
    """A ledger written before the single tree table fails on its first tree query."""
    text = str(error)
    if "merkle_tree" in text and ("no such table" in text or "does not exist" in text):
        raise StorageUnavailable(
            f"the database {where} holds a ledger in an earlier storage layout (separate"
            " merkle_leaves, merkle_nodes and log_heads tables): run 'calm-ledger db upgrade'"
            " once, as the database's owner"
        ) from error


def _probe_postgres(store_url: StoreURL) -> None:
    """Fail fast with the server's own reason; the library's pool would wait and say less."""
    connect_postgres(store_url).close()
