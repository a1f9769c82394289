"""`calm-ledger`: the command line. Errors cross this boundary once, in `main`."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import IO, Any

import click

from cli import (
    actors,
    checkpoint_cmds,
    db_cmds,
    demo,
    import_cmds,
    incidents,
    ledger_cmds,
    organisation,
    people,
    plans,
    projection_cmds,
    witness,
)
from cli.bootstrap import Context
from domain.errors import DomainError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LedgerFailure(click.ClickException):
    """A ledger or domain error on its way out: one line on stderr, its own exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        vars(self)["exit_code"] = code  # click declares exit_code as a class variable

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"calm-ledger: {self.message}", err=True)


class LedgerGroup(click.Group):
    """Maps the error tree to messages and exit codes, once, for every command."""

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
    state = Context(directory=directory, db_override=db, actor_name=actor, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)


cli.add_command(ledger_cmds.init)
cli.add_command(ledger_cmds.log)
cli.add_command(ledger_cmds.verify)
cli.add_command(ledger_cmds.erase)
cli.add_command(actors.actors)
cli.add_command(checkpoint_cmds.checkpoint)
cli.add_command(checkpoint_cmds.proof)
cli.add_command(witness.witness)
cli.add_command(demo.demo)
cli.add_command(db_cmds.db)
cli.add_command(organisation.services)
cli.add_command(organisation.techniques)
cli.add_command(people.people)
cli.add_command(people.staff)
cli.add_command(plans.plans)
cli.add_command(plans.authorisations)
cli.add_command(incidents.incidents)
cli.add_command(import_cmds.import_group)
cli.add_command(projection_cmds.projections)
cli.add_command(projection_cmds.audit)


def main() -> None:
    cli(prog_name="calm-ledger")


if __name__ == "__main__":
    main()
