"""`calm-ledger`: the command line. Errors cross this boundary once, in `main`."""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path
from typing import IO, Any

import click

from domain.errors import DomainError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LedgerFailure(click.ClickException):
    """A ledger or domain error on its way out: one line on stderr, its own exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        vars(self)["exit_code"] = code  # click declares exit_code as a class variable

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"calm-ledger: {self.message}", err=True)


COMMANDS = {
    "init": "cli.ledger_cmds:init",
    "log": "cli.ledger_cmds:log",
    "verify": "cli.ledger_cmds:verify",
    "erase": "cli.ledger_cmds:erase",
    "actors": "cli.actors:actors",
    "services": "cli.organisation:services",
    "techniques": "cli.organisation:techniques",
    "people": "cli.people:people",
    "staff": "cli.people:staff",
    "plans": "cli.plans:plans",
    "authorisations": "cli.plans:authorisations",
    "incidents": "cli.incidents:incidents",
    "import": "cli.import_cmds:import_group",
    "projections": "cli.projection_cmds:projections",
    "audit": "cli.projection_cmds:audit",
    "checkpoint": "cli.checkpoint_cmds:checkpoint",
    "proof": "cli.checkpoint_cmds:proof",
    "witness": "cli.witness:witness",
    "db": "cli.db_cmds:db",
    "demo": "cli.demo:demo",
    "export": "cli.bundle_cmds:export",
    "verify-bundle": "cli.bundle_cmds:verify_bundle_cmd",
    "bundle": "cli.bundle_cmds:bundle",
    "metrics": "cli.query_cmds:metrics",
    "spc": "cli.query_cmds:spc",
    "compliance": "cli.query_cmds:compliance",
    "report": "cli.report_cmds:report",
    "schedule": "cli.schedule_cmds:schedule",
}


class LedgerGroup(click.Group):
    """Maps the error tree to messages and exit codes, once, for every command.

    Commands are imported when used, so each command loads only what it needs (start-up
    time; and `verify-bundle` never imports a database driver).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):
            raise AssertionError(f"{target} is not a click command")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except DomainError as e:
            if debug:
                traceback.print_exc()
            raise LedgerFailure(e.diagnostics(), e.exit_code) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as e:  # the file system, not the user: disk full, permissions
            if debug:
                traceback.print_exc()
            where = f" ({e.filename})" if e.filename else ""
            raise LedgerFailure(f"file system error{where}: {e.strerror or e}", 3) from None
        except Exception as e:  # a bug, not a user mistake: one line unless --debug
            if debug:
                raise
            raise LedgerFailure(
                f"internal error: {type(e).__name__}: {e} (rerun with --debug for details)", 3
            ) from None


@click.group(cls=LedgerGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("CALM_LEDGER_DIR", "."),
    show_default="CALM_LEDGER_DIR or .",
    help="The ledger directory (config, default SQLite store, keys).",
)
@click.option(
    "--db",
    default=lambda: os.environ.get("CALM_LEDGER_DB"),
    help="Store URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (or CALM_LEDGER_DB).",
)
@click.option(
    "--as",
    "actor",
    default=lambda: os.environ.get("CALM_LEDGER_ACTOR"),
    help="The enrolled actor who signs what this command writes (or CALM_LEDGER_ACTOR).",
)
@click.option("--debug", is_flag=True, help="Show a traceback for unexpected errors.")
@click.pass_context
def cli(
    ctx: click.Context, directory: Path, db: str | None, actor: str | None, debug: bool
) -> None:
    """A tamper-evident, signed ledger of restrictive practices.

    Every fact is a signed, hash-chained event in a Merkle log; `verify` re-checks it all.
    """
    from cli.bootstrap import Context

    state = Context(directory=directory, db_override=db, actor_name=actor, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    cli(prog_name="calm-ledger")


if __name__ == "__main__":
    main()
