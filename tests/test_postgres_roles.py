"""The documented least-privilege setup on PostgreSQL: the application role can append,
checkpoint and erase, but cannot rewrite or remove history, nor switch the triggers off."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from domain.people import Person
from ledger.app import open_app
from ledger.mapper import Signer
from ledger.recording import RecordingService
from ledger.store import parse_store_url
from tests.conftest import PASSPHRASE, PG_URL, Ledger, require_postgres
from tests.support import run_cli


@pytest.fixture
def app_role() -> Iterator[str]:
    require_postgres()
    name = "calm_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE "{name}"')


@pytest.mark.parametrize("backend", ["postgresql"])
def test_app_role_appends_but_cannot_rewrite(ledger: Ledger, app_role: str) -> None:
    printed = run_cli(
        ["--dir", str(ledger.directory), "db", "grants", "--app-role", app_role],
        env={"CALM_LEDGER_PASSPHRASE": PASSPHRASE},
    )
    assert printed.exit_code == 0, printed.stderr
    schema = parse_store_url(ledger.db).pg_schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for statement in printed.stdout.split(";\n"):
            if statement.strip():
                conn.execute(statement)

    as_app = ledger.db.replace("postgres@", f"{app_role}@", 1)
    app = open_app(parse_store_url(as_app))
    service = RecordingService(app, Signer("ada", ledger.admin_key), ledger.log_key.public_key)
    service.save_batch(
        [
            Person.register(
                "P-1",
                "ward-1",
                full_name="Pat Example",
                date_of_birth=None,
                learning_disability_or_autism=False,
            )
        ]
    )
    service.erase_subject("P-1", "request")
    assert app.store.head().size == 3
    app.close()

    conninfo = PG_URL.replace("postgres@", f"{app_role}@", 1)
    for attack in (
        f'UPDATE "{schema}".calm_ledger_events SET topic = topic',
        f'DELETE FROM "{schema}".calm_ledger_events',
        f'TRUNCATE "{schema}".calm_ledger_events',
        f'DELETE FROM "{schema}".merkle_tree',
        f'UPDATE "{schema}".merkle_tree SET hash = hash',
        f'ALTER TABLE "{schema}".calm_ledger_events DISABLE TRIGGER ALL',
        "SET session_replication_role = replica",
    ):
        with psycopg.connect(conninfo, autocommit=True) as conn, pytest.raises(psycopg.Error):
            conn.execute(attack)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_store_has_no_grants(ledger: Ledger) -> None:
    result = run_cli(["--dir", str(ledger.directory), "db", "grants", "--app-role", "x"])
    assert result.exit_code == 2 and "SQLite" in result.stderr
