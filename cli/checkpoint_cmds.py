"""Checkpoints and proofs: `calm-ledger checkpoint …` and `calm-ledger proof …`."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import click

from cli.bootstrap import Context
from cli.files import read_text_file
from cli.output import emit, format_option, status
from ledger import note
from ledger.app import storage_errors
from ledger.checkpoints import (
    add_cosignatures,
    consistency_hashes,
    inclusion_proof_file,
    sign_checkpoint,
    stored_checkpoints,
)
from ledger.errors import NotFound, ValidationError

pass_context = click.make_pass_decorator(Context)
_STREAM_VERSION = re.compile(r"^([0-9a-f-]{36})@([1-9][0-9]*)$")


@click.group(invoke_without_command=True)
@click.option("--vkey", is_flag=True, help="Print the log's verifier key and exit.")
@pass_context
@click.pass_context
def checkpoint(click_ctx: click.Context, ctx: Context, vkey: bool) -> None:
    """Sign a checkpoint of the current log (signed by the log key), or manage checkpoints.

    Example: calm-ledger checkpoint            (sign one for the current size)
             calm-ledger checkpoint --vkey     (the key regulators and witnesses trust)
    """
    if click_ctx.invoked_subcommand is not None:
        return
    config = ctx.config
    if vkey:
        click.echo(note.format_verifier_key(config.origin, config.log_public_key))
        return
    signed = sign_checkpoint(ctx.app, config.origin, ctx.unlock("log"))
    click.echo(signed.signed, nl=False)
    status(f"checkpoint at size {signed.size} stored")


@checkpoint.command("list")
@format_option
@pass_context
def list_checkpoints(ctx: Context, fmt: str | None) -> None:
    """List stored checkpoints with their root hashes and cosignature counts.

    Example: calm-ledger checkpoint list --format json
    """
    config = ctx.config
    rows = [
        {
            "size": cp.size,
            "root": str(cp.checkpoint.root_hash),
            "cosignatures": cp.signed.count(note.SIGNATURE_PREFIX) - 1,
        }
        for cp in stored_checkpoints(ctx.app, config.origin, config.log_public_key)
    ]
    emit(rows, fmt, ["size", "root", "cosignatures"])


@checkpoint.command("show")
@click.option("--size", type=click.IntRange(min=0), default=None, help="Default: the latest.")
@pass_context
def show_checkpoint(ctx: Context, size: int | None) -> None:
    """Print a stored signed checkpoint with its cosignatures (to send to a witness).

    Example: calm-ledger checkpoint show > checkpoint.txt
    """
    config = ctx.config
    checkpoints = stored_checkpoints(ctx.app, config.origin, config.log_public_key)
    chosen = [c for c in checkpoints if size is None or c.size == size]
    if not chosen:
        raise NotFound("no such checkpoint is stored")
    click.echo(chosen[-1].signed, nl=False)


@checkpoint.command("add-cosignature")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--witness-key", required=True, help="The witness's verifier key (vkey).")
@click.option("--size", type=click.IntRange(min=0), default=None, help="Default: the latest.")
@pass_context
def add_cosignature(ctx: Context, file: Path, witness_key: str, size: int | None) -> None:
    """Store a witness's cosignature line(s) with the checkpoint they cosign.

    Example: calm-ledger checkpoint add-cosignature cosig.txt --witness-key "$WITNESS_VKEY"
    """
    config = ctx.config
    witness = note.parse_verifier_key(witness_key)
    text = read_text_file(file)
    cp_size, added = add_cosignatures(
        ctx.app, config.origin, config.log_public_key, text, witness, size
    )
    status(f"{added} cosignature(s) by {witness.name} stored with the checkpoint at size {cp_size}")


@click.group()
def proof() -> None:
    """Inclusion and consistency proofs for third parties."""


@proof.command("inclusion")
@click.argument("event_ref")
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="Prove against the stored checkpoint of this size (default: the latest).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the proof here instead of stdout.",
)
@pass_context
def inclusion(ctx: Context, event_ref: str, size: int | None, out: Path | None) -> None:
    """Write a C2SP tlog-proof that an event is in the log.

    EVENT_REF is a leaf index, or STREAM@VERSION.

    Example: calm-ledger proof inclusion 42 --out leaf-42.proof
    """
    config = ctx.config
    leaf = _leaf_index(ctx, event_ref)
    text = inclusion_proof_file(ctx.app, config.origin, config.log_public_key, leaf, size)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        status(f"inclusion proof for leaf {leaf} written to {out}")


@proof.command("consistency")
@click.option("--from", "size1", type=click.IntRange(min=1), required=True)
@click.option("--to", "size2", type=click.IntRange(min=1), required=True)
@pass_context
def consistency(ctx: Context, size1: int, size2: int) -> None:
    """Print the RFC 9162 consistency proof between two tree sizes, base64, one per line.

    Example: calm-ledger proof consistency --from 100 --to 250 > 100-250.proof
    """
    for h in consistency_hashes(ctx.app, size1, size2):
        click.echo(str(h))


def _leaf_index(ctx: Context, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    match = _STREAM_VERSION.match(ref)
    if not match:
        raise ValidationError(f"invalid event reference {ref!r}: use LEAF or STREAM@VERSION")
    stream, version = UUID(match.group(1)), int(match.group(2))
    with storage_errors(ctx.store_url):
        leaf = ctx.app.store.leaf_of(stream, version)
    if leaf is None:
        raise NotFound(f"no event {stream}@{version} in the log")
    return leaf
