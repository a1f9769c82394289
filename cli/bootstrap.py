"""Composition root: turns options and environment into config, store, signer and service.

Nothing connects or reads keys until a command asks, so `--help` needs no database; and the
store, the application and the read tables are imported only when first used, so commands
that need no database (a regulator's `verify-bundle`) never load a database driver.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ledger.config import LedgerConfig, load_config
from ledger.errors import KeyLocked, StorageUnavailable, ValidationError

if TYPE_CHECKING:
    from ledger.app import LedgerApp
    from ledger.keys import SigningKey
    from ledger.mapper import Signer
    from ledger.recording import RecordingService
    from ledger.store import StoreURL
    from projections.readstore import ReadStore

PASSPHRASE_ENV = "CALM_LEDGER_PASSPHRASE"
NEW_PASSPHRASE_ENV = "CALM_LEDGER_NEW_PASSPHRASE"


@dataclass
class Context:
    directory: Path
    db_override: str | None
    actor_name: str | None
    debug: bool = False
    _apps: list[LedgerApp] = field(default_factory=list)
    _read: ReadStore | None = None

    @cached_property
    def config(self) -> LedgerConfig:
        return load_config(self.directory)

    @cached_property
    def store_url(self) -> StoreURL:
        from ledger.store import parse_store_url

        return parse_store_url(self.db_override or self.config.db, base=self.directory)

    @cached_property
    def app(self) -> LedgerApp:
        from ledger.app import open_app

        app = open_app(self.store_url)
        self._apps.append(app)
        return app

    def signer(self, actor: str | None = None) -> Signer:
        from ledger.mapper import Signer

        name = actor or self.actor_name
        if not name:
            raise ValidationError("say who is signing: --as NAME (or set CALM_LEDGER_ACTOR)")
        return Signer(name, self.unlock(name))

    def unlock(self, name: str) -> SigningKey:
        from ledger.keys import read_keystore

        path = self.config.keystore(name)
        if not path.exists():
            raise KeyLocked(f"no keystore for {name!r} at {path}")
        return read_keystore(path, passphrase(f"Passphrase for {name}"))

    def service(self, actor: str | None = None) -> RecordingService:
        from ledger.recording import RecordingService

        return RecordingService(self.app, self.signer(actor), self.config.log_public_key)

    def read_model(self, *, current: bool = True) -> ReadStore:
        """The read tables, caught up with the log first unless `current` is False."""
        if self._read is None:
            from projections.readstore import ReadStore

            self._read = ReadStore(self.store_url)
            self._read.connect()
        lag = self._lag(self._read) if current else 0
        if lag > 0:
            from projections.runtime import catch_up

            if lag > 2000:
                click.echo(f"catching up the read tables ({lag} events)…", err=True)
            catch_up(self.app, self._read)
        return self._read

    def _lag(self, read: ReadStore) -> int:
        """Events not yet in the read tables. Read from the log's head table, so a query on
        current read tables never opens the ledger application (eventsourcing, the mapper,
        the keys); if that read fails, the application says why."""
        try:
            return read.log_size() - read.position()
        except StorageUnavailable:
            from projections.runtime import status

            return status(self.app, read).lag

    def service_reader(self) -> RecordingService:
        """For reads: the service's lookups without unlocking a key. Its signer is no enrolled
        actor, so any write through it is refused."""
        from ledger.keys import SigningKey
        from ledger.mapper import Signer
        from ledger.recording import RecordingService

        nobody = Signer("", SigningKey(bytes(32)))
        return RecordingService(self.app, nobody, self.config.log_public_key)

    def close(self) -> None:
        if self._read is not None:
            self._read.close()
        for app in self._apps:
            app.close()


def passphrase(prompt: str, *, env: str = PASSPHRASE_ENV, confirm: bool = False) -> str:
    """From the environment, or asked for on the terminal; never echoed or logged."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise KeyLocked(f"no passphrase: set {env} or run in a terminal")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
