"""`calm-ledger actors …`: enrol, list, re-key and revoke the people who sign."""

from __future__ import annotations

from typing import Any

import click

from cli.bootstrap import NEW_PASSPHRASE_ENV, Context, passphrase
from cli.output import emit, format_option, status
from domain.roles import Role, parse_role
from ledger.actors import Actor
from ledger.app import storage_errors
from ledger.errors import ValidationError
from ledger.keys import SigningKey, actor_key_id, read_public_key, write_keystore

pass_context = click.make_pass_decorator(Context)


@click.group()
def actors() -> None:
    """Enrol, list, re-key and revoke actors (signers)."""


def _roles(values: tuple[str, ...]) -> tuple[Role, ...]:
    return tuple(parse_role(v) for v in values)


def _new_key(
    ctx: Context, name: str, public_key_file: str | None
) -> tuple[bytes, SigningKey | None]:
    """Either the public key of a keystore the actor made, or a fresh key for them."""
    if public_key_file:
        owner, public_key = read_public_key(click.format_filename(public_key_file))  # type: ignore[arg-type]
        if owner != name:
            raise ValidationError(f"keystore {public_key_file} belongs to {owner!r}, not {name!r}")
        return public_key, None
    key = SigningKey.generate()
    return key.public_key, key


def _store_new_key(ctx: Context, name: str, key: SigningKey | None, *, replace: bool) -> None:
    if key is None:
        return
    path = ctx.config.keystore(name)
    if replace and path.exists():
        path.rename(path.with_name(f"{name}.{_current_key_id(path)}.retired"))
    new_pass = passphrase(f"New passphrase for {name}", env=NEW_PASSPHRASE_ENV, confirm=True)
    write_keystore(path, name, key, new_pass)


def _current_key_id(path: Any) -> str:
    return actor_key_id(read_public_key(path)[1])


@actors.command("enrol")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="admin, safeguarding-lead, manager, authoriser or recorder (repeatable).",
)
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The actor's own keystore file; without it a key is made here.",
)
@pass_context
def enrol(ctx: Context, name: str, roles: tuple[str, ...], public_key_file: str | None) -> None:
    """Enrol a new actor with roles (signed by an admin).

    Example: calm-ledger --as ada actors enrol sam --role recorder
    """
    parsed = _roles(roles)
    service = ctx.service()
    service.authorise(Actor.Enrolled.TYPE)
    public_key, key = _new_key(ctx, name, public_key_file)
    if key is not None and ctx.config.keystore(name).exists():
        raise ValidationError(f"a keystore for {name!r} already exists in {ctx.config.keys_dir}")
    Actor.enrol(name, parsed, "", "")  # validate name and roles before any key is written
    _store_new_key(ctx, name, key, replace=False)
    try:
        service.enrol_actor(name, parsed, public_key)
    except BaseException:
        if key is not None:  # the enrolment was not written: neither is its keystore
            ctx.config.keystore(name).unlink(missing_ok=True)
        raise
    status(f"enrolled {name} ({', '.join(parsed)})")
    if key is not None:
        status(f"keystore written to {ctx.config.keystore(name)} (mode 0600)")


@actors.command("list")
@format_option
@click.option("--all", "show_all", is_flag=True, help="Include revoked actors.")
@pass_context
def list_actors(ctx: Context, fmt: str | None, show_all: bool) -> None:
    """List enrolled actors, their roles and current key ids.

    Example: calm-ledger actors list --format csv
    """
    rows = []
    with storage_errors(ctx.store_url):
        ids = [n.originator_id for n in _actor_enrolments(ctx)]
        for actor_id in ids:
            actor: Actor = ctx.app.repository.get(actor_id)
            if actor.revoked and not show_all:
                continue
            rows.append(
                {
                    "name": actor.name,
                    "roles": [role.value for role in actor.roles],
                    "key_id": actor.key_id,
                    "revoked": actor.revoked,
                    "enrolled_at": actor.created_on.isoformat(),
                }
            )
    emit(rows, fmt, ["name", "roles", "key_id", "revoked", "enrolled_at"])


def _actor_enrolments(ctx: Context) -> list[Any]:
    recorder = ctx.app.recorder
    found: list[Any] = []
    start = 1
    while True:
        batch = recorder.select_notifications(start, 500, topics=["actor.enrolled"])
        found += batch
        if len(batch) < 500:
            return found
        start = batch[-1].id + 1


@actors.command("rekey")
@click.argument("name")
@click.option("--reason", required=True, help="Why (e.g. scheduled rotation, lost laptop).")
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(exists=True, dir_okay=False),
    help="The actor's new keystore file; without it a new key is made here.",
)
@pass_context
def rekey(ctx: Context, name: str, reason: str, public_key_file: str | None) -> None:
    """Give an actor a new key; the old one is invalid from this point of the log on.

    Example: calm-ledger --as ada actors rekey sam --reason "lost laptop"
    """
    service = ctx.service()
    service.authorise(Actor.Rekeyed.TYPE)
    service.actor(name)  # must exist before a key is written
    public_key, key = _new_key(ctx, name, public_key_file)
    _store_new_key(ctx, name, key, replace=True)
    service.rekey_actor(name, public_key, reason)
    status(f"re-keyed {name}: new key {actor_key_id(public_key)}")


@actors.command("revoke")
@click.argument("name")
@click.option("--reason", required=True, help="Why (e.g. left the organisation).")
@pass_context
def revoke(ctx: Context, name: str, reason: str) -> None:
    """Revoke an actor: nothing they sign from now on is accepted.

    Example: calm-ledger --as ada actors revoke sam --reason "left the organisation"
    """
    ctx.service().revoke_actor(name, reason)
    status(f"revoked {name}")
