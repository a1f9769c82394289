"""`calm-ledger db …`: database administration helpers."""

from __future__ import annotations

import click

from cli.bootstrap import Context
from ledger.errors import ValidationError

pass_context = click.make_pass_decorator(Context)


@click.group()
def db() -> None:
    """Database administration: PostgreSQL grants, storage upgrades."""


@db.command("upgrade")
@pass_context
def upgrade(ctx: Context) -> None:
    """Move a ledger written by an earlier version into the current storage layout.

    Ledgers written before the single Merkle tree table keep their tree in three tables
    (merkle_leaves, merkle_nodes, log_heads). This moves every node into merkle_tree in one
    transaction and drops the old tables; nothing signed changes. Run it once, as the
    database's owner, then `calm-ledger verify`.
    """
    from ledger.app import open_app, storage_errors
    from ledger.store.reads import require_ledger_database

    require_ledger_database(ctx.store_url)
    app = open_app(ctx.store_url, create=True)  # creates only what is missing
    try:
        with storage_errors(ctx.store_url):
            moved = app.store.upgrade_tree_layout()
    finally:
        app.close()
    if moved is None:
        click.echo("already in the current storage layout; nothing to do", err=True)
    else:
        click.echo(f"moved the tree of {moved} leaves into merkle_tree; now run verify", err=True)


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
