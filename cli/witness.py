"""`calm-ledger witness …`: run by a regulator on its own machine, with no ledger database.

A witness remembers the last checkpoint it cosigned (a small JSON state file) and cosigns a
new one only if it verifies under the log key it trusts and is consistent with what it saw,
so a provider cannot show two regulators two different histories.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import click

from cli.bootstrap import NEW_PASSPHRASE_ENV, passphrase
from cli.files import read_text_file
from cli.output import status
from ledger import merkle, note
from ledger.errors import LedgerError, ValidationError, VerificationError
from ledger.keys import SigningKey, read_keystore, read_public_key, write_keystore

STATE_FORMAT = "calm-ledger-witness-state/v1"


@click.group()
def witness() -> None:
    """Witness (cosign) a log's checkpoints, as a regulator, offline."""


@witness.command("keygen")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the witness's encrypted keystore (mode 0600).",
)
def keygen(name: str, out: Path) -> None:
    """Make a witness key; prints its verifier key (give it to the provider).

    Example: calm-ledger witness keygen regulator.example --out witness.key
    """
    note.NoteVerifierKey(name, bytes(32), note.SignatureType.COSIGNATURE_V1)  # validates name
    key = SigningKey.generate()
    write_keystore(
        out,
        name,
        key,
        passphrase(f"New passphrase for {out}", env=NEW_PASSPHRASE_ENV, confirm=True),
    )
    click.echo(note.format_verifier_key(name, key.public_key, note.SignatureType.COSIGNATURE_V1))


@dataclass(frozen=True)
class WitnessState:
    log_key: note.NoteVerifierKey
    size: int
    root: merkle.Hash

    def save(self, path: Path) -> None:
        body = {
            "format": STATE_FORMAT,
            "log_key": str(self.log_key),
            "size": self.size,
            "root": str(self.root),
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, path)  # atomic: a crash never leaves half a state


def load_state(path: Path, log_key: str | None) -> WitnessState:
    if not path.exists():
        if log_key is None:
            raise ValidationError(
                f"no witness state at {path}: name the log's key with --log-key the first time"
            )
        return WitnessState(note.parse_verifier_key(log_key), 0, merkle.EMPTY_ROOT)
    try:
        raw = json.loads(read_text_file(path, limit=64 * 1024))
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            raise ValueError("unknown format")
        size = raw["size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**63:
            raise ValueError("size is not a tree size")
        state = WitnessState(
            note.parse_verifier_key(raw["log_key"]),
            size,
            merkle.Hash.from_base64(raw["root"]),
        )
    except (ValueError, KeyError, TypeError, RecursionError, LedgerError) as e:
        raise ValidationError(f"{path} is not a witness state file: {e}") from None
    if log_key is not None and log_key != str(state.log_key):
        raise ValidationError(f"--log-key differs from the log key recorded in {path}")
    return state


@witness.command("cosign")
@click.argument("checkpoint_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The witness keystore (from 'witness keygen').",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The witness's memory of the last checkpoint it cosigned.",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Consistency proof from the last cosigned size ('proof consistency').",
)
@click.option("--log-key", default=None, help="The log's verifier key (needed the first time).")
def cosign(
    checkpoint_file: Path,
    key_file: Path,
    state_file: Path,
    proof_file: Path | None,
    log_key: str | None,
) -> None:
    """Verify a checkpoint and its consistency with the last one seen; print a cosignature.

    Exit 1, with the reason, if the checkpoint does not verify or contradicts what was seen.

    Example: calm-ledger witness cosign checkpoint.txt --key witness.key
             --state witness.json --proof 7-12.proof
    """
    state = load_state(state_file, log_key)
    signed = read_text_file(checkpoint_file)
    checkpoint, _ = note.open_checkpoint(signed, [state.log_key])
    if checkpoint.origin != state.log_key.name:
        raise VerificationError(f"checkpoint origin {checkpoint.origin!r} is not the log's")
    _check_consistent(state, checkpoint, proof_file)
    name, _ = read_public_key(key_file)
    key = read_keystore(key_file, passphrase(f"Passphrase for {key_file}"))
    line = note.cosign_with(
        note.format_checkpoint(checkpoint), name, key.public_key, key.sign, int(time.time())
    )
    WitnessState(state.log_key, checkpoint.size, checkpoint.root_hash).save(state_file)
    click.echo(line, nl=False)
    status(f"cosigned {checkpoint.origin} at size {checkpoint.size}")


def _check_consistent(state: WitnessState, cp: note.Checkpoint, proof_file: Path | None) -> None:
    if cp.size < state.size:
        raise VerificationError(
            f"checkpoint size {cp.size} is older than the size {state.size} already cosigned"
        )
    if cp.size == state.size:
        if cp.root_hash != state.root:
            raise VerificationError(f"a different tree of the same size {cp.size}: the log forked")
        return
    if state.size == 0:
        return  # the first checkpoint seen: nothing to be consistent with
    if proof_file is None:
        raise ValidationError(
            f"a consistency proof from size {state.size} to {cp.size} is needed (--proof);"
            f" the provider makes it with 'calm-ledger proof consistency --from {state.size}"
            f" --to {cp.size}'"
        )
    hashes = _read_hashes(proof_file)
    try:
        merkle.check_consistency(hashes, state.size, cp.size, state.root, cp.root_hash)
    except VerificationError:
        raise VerificationError(
            f"checkpoint at size {cp.size} is not consistent with the one cosigned at size"
            f" {state.size}: the log was rewritten"
        ) from None


def _read_hashes(path: Path) -> list[merkle.Hash]:
    try:
        lines = read_text_file(path).split()
        return [merkle.Hash.from_base64(line) for line in lines]
    except (UnicodeDecodeError, LedgerError):
        raise ValidationError(f"{path} is not a consistency proof (base64 hashes)") from None
