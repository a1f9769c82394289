"""`calm-ledger db …`: database administration helpers."""

from __future__ import annotations

import click

from cli.bootstrap import Context
from ledger.errors import ValidationError

pass_context = click.make_pass_decorator(Context)


@click.group()
def db() -> None:
    """Database administration (PostgreSQL)."""


@db.command("grants")
@click.option("--app-role", required=True, help="The role the application connects as.")
@click.option("--reader-role", default=None, help="An optional read-only (auditor) role.")
@pass_context
def grants(ctx: Context, app_role: str, reader_role: str | None) -> None:
    """Print the SQL that gives an application role append-only rights (run it as the owner).

    Example: calm-ledger db grants --app-role calm_ledger_app | psql -d ledger
    """
    url = ctx.store_url
    if url.backend != "postgresql":
        raise ValidationError("grants apply to PostgreSQL stores; SQLite relies on triggers")
    from ledger.store.postgres import least_privilege_sql

    for statement in least_privilege_sql(url.pg_schema, app_role, reader_role):
        click.echo(statement + ";")
