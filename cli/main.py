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


# name: (module:attribute, the summary `--help` lists; its first sentence is what click
# would show, so `--help` imports no command module — tests/test_cli.py checks they agree)
COMMANDS = {
    "init": (
        "cli.ledger_cmds:init",
        "Create a ledger: its store, the organisation's log key and the first admin.",
    ),
    "log": (
        "cli.ledger_cmds:log",
        "List envelopes in log order: leaf, type, stream, version, actor, time.",
    ),
    "verify": (
        "cli.ledger_cmds:verify",
        (
            "Re-check every signature, signer, chain, digest, disclosure, leaf, the tree and "
            "every checkpoint. Exit 0 when all hold, 1 when anything fails (each failure named on"
            " stderr)."
        ),
    ),
    "erase": (
        "cli.ledger_cmds:erase",
        "Erase a subject's personal data: destroy their data key and record a signed erasure.",
    ),
    "actors": (
        "cli.actors:actors",
        "Enrol, list, re-key and revoke actors (signers).",
    ),
    "services": (
        "cli.organisation:services",
        "Register services (settings) and record their occupancy.",
    ),
    "techniques": (
        "cli.organisation:techniques",
        "The organisation's technique catalogue (ranked by restrictiveness).",
    ),
    "people": (
        "cli.people:people",
        "Register people supported (pseudonymous ids; personal details sealed).",
    ),
    "staff": (
        "cli.people:staff",
        "Register staff and record their training and certification.",
    ),
    "plans": (
        "cli.plans:plans",
        "Behaviour support plans: publish, revise after learning, review.",
    ),
    "authorisations": (
        "cli.plans:authorisations",
        "Grant, renew and revoke authorisations (authorisers only).",
    ),
    "incidents": (
        "cli.incidents:incidents",
        "Record incidents, debriefs, notifications, sign-off and corrections.",
    ),
    "import": (
        "cli.import_cmds:import_group",
        "Bulk import from another incident system.",
    ),
    "projections": (
        "cli.projection_cmds:projections",
        "The read tables: status, catch-up, rebuild, follow, verify.",
    ),
    "audit": (
        "cli.projection_cmds:audit",
        "Audit trails: every event about an incident, a person, or by an actor.",
    ),
    "checkpoint": (
        "cli.checkpoint_cmds:checkpoint",
        "Sign a checkpoint of the current log (signed by the log key), or manage checkpoints.",
    ),
    "proof": (
        "cli.checkpoint_cmds:proof",
        "Inclusion and consistency proofs for third parties.",
    ),
    "witness": (
        "cli.witness:witness",
        "Witness (cosign) a log's checkpoints, as a regulator, offline.",
    ),
    "db": (
        "cli.db_cmds:db",
        "Database administration: PostgreSQL grants, storage upgrades.",
    ),
    "demo": (
        "cli.demo:demo",
        "Build a demo ledger of a year in three services and show every part working.",
    ),
    "export": (
        "cli.bundle_cmds:export",
        "Write a signed export bundle of a contiguous range of the log.",
    ),
    "verify-bundle": (
        "cli.bundle_cmds:verify_bundle_cmd",
        "Verify an export bundle offline: exit 0 verified, 1 not verified, 2 unusable input.",
    ),
    "bundle": (
        "cli.bundle_cmds:bundle",
        "Explore a bundle offline, after verifying it (an unverified bundle is refused).",
    ),
    "metrics": (
        "cli.query_cmds:metrics",
        (
            "Reduction metrics per period: counts, people, rate per 1,000 person-days, prone "
            "share, durations, injuries, planned vs emergency, debrief timeliness, concentration."
        ),
    ),
    "spc": (
        "cli.query_cmds:spc",
        "An XmR chart of one metric with NHS Making Data Count signals.",
    ),
    "compliance": (
        "cli.query_cmds:compliance",
        (
            "Compliance findings under each service's jurisdiction profiles. The same events and "
            "the same --as-of always give the same findings."
        ),
    ),
    "report": (
        "cli.report_cmds:report",
        "Governance reports: issue one (a signed fact in the ledger), or verify an issued file.",
    ),
    "schedule": (
        "cli.schedule_cmds:schedule",
        "Report schedules: cron expressions (UTC) that say when reports fall due.",
    ),
}


class LedgerGroup(click.Group):
    """Maps the error tree to messages and exit codes, once, for every command.

    Commands are imported when used, so each command loads only what it needs (start-up
    time; and `verify-bundle` never imports a database driver).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target = COMMANDS[cmd_name][0]
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):
            raise AssertionError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries above, without importing every command."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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
