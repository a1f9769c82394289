"""Shared fixtures. Every storage-touching test takes `store_url` and so runs on SQLite and on
PostgreSQL, each test in its own SQLite file or its own PostgreSQL schema.

PostgreSQL: CALM_LEDGER_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test). When it is
unreachable the PostgreSQL tests skip with a one-line reason, except under CI (CI=true), where
they fail: CI must never pass by skipping the production store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.roles import Role
from ledger.app import LedgerApp, open_app
from ledger.keys import Argon2Cost, SigningKey, read_keystore, write_keystore
from ledger.mapper import Signer
from ledger.recording import RecordingService
from ledger.setup import init_ledger
from ledger.store import StoreURL, parse_store_url

PG_URL = os.environ.get("CALM_LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FAST_KDF = Argon2Cost(memory_kib=64, iterations=1, lanes=1)  # tests only; production is 64 MiB
PASSPHRASE = "correct horse battery staple"
ORIGIN = "example.org/test-ledger"


def _pg_problem() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL.split("?")[0], connect_timeout=3):
            return None
    except Exception as e:  # any failure to connect means: no PostgreSQL here
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


_PG_PROBLEM: str | bool | None = False  # False: not probed yet


def require_postgres() -> None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_problem()
    if _PG_PROBLEM:
        message = f"PostgreSQL unreachable at {PG_URL}: {_PG_PROBLEM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    require_postgres()
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"  # an absolute path: sqlite:////tmp/...
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_URL}?schema={schema}"


@dataclass
class Ledger:
    """A ledger made for a test: its directory, URL and unlocked keys."""

    directory: Path
    db: str
    log_key: SigningKey
    admin_key: SigningKey

    @property
    def store_url(self) -> StoreURL:
        return parse_store_url(self.db, base=self.directory)

    def open(self) -> LedgerApp:
        return open_app(self.store_url)

    def service(
        self, app: LedgerApp, actor: str = "ada", key: SigningKey | None = None
    ) -> RecordingService:
        key = key or (self.admin_key if actor == "ada" else self.key(actor))
        return RecordingService(app, Signer(actor, key), self.log_key.public_key)

    def key(self, actor: str) -> SigningKey:
        return read_keystore(self.directory / "keys" / f"{actor}.key", PASSPHRASE)

    def enrol(self, app: LedgerApp, name: str, *roles: Role) -> SigningKey:
        """Enrol an actor (signed by ada) and write its keystore."""
        key = SigningKey.generate()
        write_keystore(
            self.directory / "keys" / f"{name}.key", name, key, PASSPHRASE, cost=FAST_KDF
        )
        self.service(app).enrol_actor(name, roles, key.public_key)
        return key


@pytest.fixture
def ledger(tmp_path: Path, db_url: str) -> Ledger:
    directory = tmp_path / "ledger"
    made = init_ledger(
        directory,
        origin=ORIGIN,
        db=db_url,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=FAST_KDF,
    )
    return Ledger(directory, db_url, made.log_key, made.admin_key)
