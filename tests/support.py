"""Test helpers: run the CLI, and tamper with a store as a database superuser would."""

from __future__ import annotations

import ast
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from cli.main import cli
from ledger.store import parse_store_url


def modules_loaded_by(code: str, modules: Sequence[str]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported once `code` has run: start-up
    tests, since whatever a command imports it pays for on every run."""
    probe = f"{code}\nimport sys\nprint([m for m in {list(modules)!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    return loaded


def modules_loaded_by_cli(args: Sequence[str], modules: Sequence[str]) -> list[str]:
    """`modules_loaded_by` for one `calm-ledger` command (its output discarded; it must
    succeed)."""
    code = (
        "import contextlib, io, sys\nfrom cli.main import main\n"
        f"sys.argv = ['calm-ledger', *{list(args)!r}]\n"
        "try:\n    with contextlib.redirect_stdout(io.StringIO()):\n        main()\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
    )
    return modules_loaded_by(code, modules)


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), env=env or {}, input=input, catch_exceptions=False)


class Superuser:
    """Raw SQL on a store with the append-only triggers bypassed."""

    def __init__(self, db_url: str) -> None:
        self.url = parse_store_url(db_url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.backend == "sqlite"

    def table(self, name: str) -> str:
        if self.is_sqlite:
            return "stored_events" if name == "events" else name
        table = "calm_ledger_events" if name == "events" else name
        return f'"{self.url.pg_schema}"."{table}"'

    @property
    def nid(self) -> str:
        return "rowid" if self.is_sqlite else "notification_id"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params, fetch=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._run(sql, params, fetch=False)

    def _run(self, sql: str, params: Sequence[Any], *, fetch: bool) -> list[tuple[Any, ...]]:
        if self.is_sqlite:
            return self._sqlite(sql, params, fetch)
        return self._postgres(sql, params, fetch)

    def _sqlite(self, sql: str, params: Sequence[Any], fetch: bool) -> list[tuple[Any, ...]]:
        path = self.url.sqlite_path
        assert isinstance(path, Path)
        conn = sqlite3.connect(path)
        try:
            triggers = conn.execute(
                "SELECT name, sql, tbl_name FROM sqlite_master WHERE type = 'trigger'"
            ).fetchall()
            for name, _, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall() if fetch else []
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            for _, create, table in triggers:
                if table in tables:  # not if the statement dropped it
                    conn.execute(create)
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def _postgres(self, sql: str, params: Sequence[Any], fetch: bool) -> list[tuple[Any, ...]]:
        import psycopg

        sql = sql.replace("?", "%s")
        conninfo = (
            f"host={self.url.pg_host} port={self.url.pg_port} "
            f"user={self.url.pg_user} dbname={self.url.pg_dbname}"
        )
        with psycopg.connect(conninfo) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off
            cur = conn.execute(sql, params)
            rows = cur.fetchall() if fetch else []
            conn.commit()
            return [tuple(r) for r in rows]
