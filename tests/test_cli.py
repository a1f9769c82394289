"""The command line: the happy path on both stores, and every bad input refused with one line
on stderr, the right exit code, and nothing written."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, Ledger
from tests.support import modules_loaded_by_cli, run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE, "CALM_LEDGER_NEW_PASSPHRASE": "new pass"}


def cli(ledger: Ledger, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return run_cli(["--dir", str(ledger.directory), *args], env=env or ENV)


def log_size(ledger: Ledger) -> int:
    result = cli(ledger, "log", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return len(json.loads(result.stdout))


def assert_one_line_error(result, code: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("calm-ledger: ") and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_init_then_verify_from_the_command_line(tmp_path: Path, db_url: str) -> None:
    directory = str(tmp_path / "ward")
    init = run_cli(
        [
            "--dir",
            directory,
            "init",
            "--origin",
            "example.org/ward",
            "--admin",
            "ada",
            "--db",
            db_url,
        ],
        env=ENV,
    )
    assert init.exit_code == 0, init.stderr
    assert (tmp_path / "ward" / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
    enrol = run_cli(
        ["--dir", directory, "--as", "ada", "actors", "enrol", "sam", "--role", "recorder"], env=ENV
    )
    assert enrol.exit_code == 0, enrol.stderr
    listed = run_cli(["--dir", directory, "actors", "list", "--format", "json"], env=ENV)
    assert [a["name"] for a in json.loads(listed.stdout)] == ["ada", "sam"]
    assert [a["roles"] for a in json.loads(listed.stdout)] == [["admin"], ["recorder"]]
    as_csv = run_cli(["--dir", directory, "actors", "list", "--format", "csv"], env=ENV)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["name"], r["roles"]) for r in rows] == [("ada", "admin"), ("sam", "recorder")]
    verify = run_cli(["--dir", directory, "verify"], env=ENV)
    assert verify.exit_code == 0, verify.stderr
    assert verify.stdout.strip().endswith("verified")


def test_log_formats(ledger: Ledger) -> None:
    table = cli(ledger, "log", "--format", "table")
    assert table.stdout.splitlines()[0].split()[:3] == ["LEAF", "NOTIFICATION", "TYPE"]
    csv = cli(ledger, "log", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("leaf,notification,type")
    assert "actor.enrolled" in csv.stdout


def test_unknown_role_is_refused_and_nothing_written(ledger: Ledger) -> None:
    before = log_size(ledger)
    result = cli(ledger, "--as", "ada", "actors", "enrol", "sam", "--role", "wizard")
    assert_one_line_error(result, 2, "unknown role 'wizard'")
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "sam.key").exists()


def test_malformed_origin_is_refused_and_nothing_written(tmp_path: Path) -> None:
    result = run_cli(
        ["--dir", str(tmp_path / "x"), "init", "--origin", "Not An Origin", "--admin", "ada"],
        env=ENV,
    )
    assert_one_line_error(result, 2, "malformed origin")
    assert not (tmp_path / "x").exists()


def test_wrong_passphrase_is_refused_and_nothing_written(ledger: Ledger) -> None:
    before = log_size(ledger)
    env = {**ENV, "CALM_LEDGER_PASSPHRASE": "not the passphrase"}
    result = cli(ledger, "--as", "ada", "actors", "enrol", "sam", "--role", "recorder", env=env)
    assert_one_line_error(result, 3, "wrong passphrase")
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "sam.key").exists()


def test_recorder_cannot_enrol_and_nothing_written(ledger: Ledger) -> None:
    assert cli(ledger, "--as", "ada", "actors", "enrol", "sam", "--role", "recorder").exit_code == 0
    before = log_size(ledger)
    env = {**ENV, "CALM_LEDGER_PASSPHRASE": "new pass"}
    result = cli(ledger, "--as", "sam", "actors", "enrol", "eve", "--role", "admin", env=env)
    assert_one_line_error(result, 2, "may not sign 'actor.enrolled'")
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "eve.key").exists()


def test_revoked_actor_cannot_write(ledger: Ledger) -> None:
    assert cli(ledger, "--as", "ada", "actors", "enrol", "sam", "--role", "admin").exit_code == 0
    assert cli(ledger, "--as", "ada", "actors", "revoke", "sam", "--reason", "left").exit_code == 0
    before = log_size(ledger)
    env = {**ENV, "CALM_LEDGER_PASSPHRASE": "new pass"}
    result = cli(ledger, "--as", "sam", "actors", "enrol", "eve", "--role", "recorder", env=env)
    assert_one_line_error(result, 2, "revoked")
    assert log_size(ledger) == before


def test_unreachable_database_is_an_environment_error(ledger: Ledger) -> None:
    result = cli(ledger, "--db", "postgresql://postgres@127.0.0.1:1/test", "log")
    assert_one_line_error(result, 3, "cannot reach the database")


def test_missing_sqlite_file_is_reported(ledger: Ledger, tmp_path: Path) -> None:
    result = cli(ledger, "--db", f"sqlite:///{tmp_path / 'nope.db'}", "verify")
    assert_one_line_error(result, 2, "no ledger database")
    assert not (tmp_path / "nope.db").exists()


def test_unsupported_store_url_is_refused(ledger: Ledger) -> None:
    result = cli(ledger, "--db", "mysql://root@localhost/x", "log")
    assert_one_line_error(result, 2, "unsupported store URL")


def test_init_twice_is_refused(ledger: Ledger) -> None:
    result = cli(
        ledger, "init", "--origin", "example.org/again", "--admin", "bob", "--db", ledger.db
    )
    assert_one_line_error(result, 2, "already holds a ledger")


def test_writing_without_saying_who_signs_is_refused(ledger: Ledger) -> None:
    result = cli(ledger, "actors", "enrol", "sam", "--role", "recorder")
    assert_one_line_error(result, 2, "--as NAME")


def test_erase_through_the_cli_keeps_the_ledger_verifiable(ledger: Ledger) -> None:
    app = ledger.open()
    ledger.service(app).register_person("P-77", "ward-1", full_name="Erin Example")
    app.close()
    result = cli(ledger, "--as", "ada", "erase", "P-77", "--reason", "retention period ended")
    assert result.exit_code == 0, result.stderr
    verify = cli(ledger, "verify")
    assert verify.exit_code == 0, verify.stderr
    assert "1 erased subject(s) skipped" in verify.stdout


@pytest.mark.parametrize("args", [["--help"], ["actors", "--help"], ["verify", "--help"]])
def test_help_needs_no_ledger(args: list[str], tmp_path: Path) -> None:
    result = run_cli(["--dir", str(tmp_path / "none"), *args])
    assert result.exit_code == 0 and "Usage" in result.stdout


@pytest.mark.parametrize("limit", [20, 45, 80, 200])
def test_help_lists_each_command_as_its_own_help_would(limit: int) -> None:
    """`--help` lists commands from summaries kept in cli/main.py (so it imports none of
    them); each must shorten to what the command's own help gives."""
    import click

    from cli.main import COMMANDS, cli

    context = click.Context(cli)
    for name, (_target, summary) in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None
        listed = click.Command(name, help=summary).get_short_help_str(limit)
        assert listed == command.get_short_help_str(limit), name


def test_help_imports_no_command_module() -> None:
    """Start-up: `calm-ledger --help` loads click and the group, not the commands (whose
    imports reach pydantic, eventsourcing and the database drivers)."""
    heavy = (
        "pydantic",
        "eventsourcing",
        "psycopg",
        "cryptography",
        "cli.incidents",
        "projections.readstore",
    )
    assert modules_loaded_by_cli(["--help"], heavy) == []


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{}],
        [{"a": 1, "b": [], "c": {}, "d": None, "e": True, "f": 0.1, "g": -0.0, "h": 1e-5}],
        [{"text": 'r\u00e9\u2013\u2264 \U0001f600 \u2028 \x7f \x01\n\t"\\/', "n": 2**63}],
        [{"big": 2**64, "small": -(2**63) - 1}],
        [{"due": date(2026, 1, 1), "nan": float("nan"), "k": "\ud800"}],
        [{"types": ["07", "01"], "minutes": 12.5, "x": 1e16, "y": 12345678901234.5}] * 3,
    ],
)
def test_json_output_is_what_json_dumps_writes(rows: list[dict[str, object]]) -> None:
    """`--format json` uses orjson where it writes the same bytes as the standard library."""
    from cli.output import to_json

    assert to_json(rows) == json.dumps(rows, indent=2, default=str)
