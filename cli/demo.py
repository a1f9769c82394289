"""`calm-ledger demo`: a small ledger made end to end, so a newcomer sees every part work.

It uses only what the other commands use. The passphrase of every demo key is "demo": the
demo directory is marked as a demo and is for exploring, never for real records.
"""

from __future__ import annotations

import random
import shutil
import time
from datetime import date
from pathlib import Path

import click

from cli.output import status
from domain.roles import Role
from ledger import note
from ledger.app import open_app
from ledger.checkpoints import add_cosignatures, sign_checkpoint
from ledger.config import load_config
from ledger.errors import ValidationError
from ledger.keys import SigningKey, write_keystore
from ledger.mapper import Signer
from ledger.recording import RecordingService
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from ledger.verify_store import verify_store

MARKER = ".calm-ledger-demo"
PASSPHRASE = "demo"
ORIGIN = "example.org/demo-ledger"
FIRST_NAMES = ("Alex", "Sam", "Jo", "Riley", "Morgan", "Casey", "Jamie", "Robin", "Ash", "Kit")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-ledger"),
    show_default=True,
    help="Where to build the demo.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the made-up data.")
def demo(directory: Path, seed: int) -> None:
    """Build a demo ledger, sign and witness a checkpoint, erase a person, and verify it all.

    Example: calm-ledger demo --dir /tmp/demo
    """
    started = time.perf_counter()
    _clear(directory)
    rng = random.Random(seed)
    step = _Steps()
    step("creating the ledger (log key, first admin 'ada')")
    made = init_ledger(
        directory,
        origin=ORIGIN,
        db="sqlite:///ledger.db",
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
    )
    (directory / MARKER).write_text("made by 'calm-ledger demo'; safe to delete\n")
    app = open_app(parse_store_url("sqlite:///ledger.db", base=directory))
    admin = RecordingService(app, Signer("ada", made.admin_key), made.log_key.public_key)

    step("enrolling a safeguarding lead, a manager and a recorder")
    keys = {}
    for name, role in (
        ("lee", Role.SAFEGUARDING_LEAD),
        ("mo", Role.MANAGER),
        ("sam", Role.RECORDER),
    ):
        keys[name] = SigningKey.generate()
        write_keystore(directory / "keys" / f"{name}.key", name, keys[name], PASSPHRASE)
        admin.enrol_actor(name, (role,), keys[name].public_key)

    step("registering 12 people (names and dates of birth sealed)")
    lead = RecordingService(app, Signer("lee", keys["lee"]), made.log_key.public_key)
    for i in range(12):
        lead.register_person(
            f"P-{i + 1:03d}",
            rng.choice(["ward-1", "house-2", "school-3"]),
            full_name=f"{rng.choice(FIRST_NAMES)} Example-{i + 1}",
            date_of_birth=date(
                2006 + rng.randrange(12), 1 + rng.randrange(12), 1 + rng.randrange(28)
            ),
            learning_disability_or_autism=rng.random() < 0.4,
        )

    step("erasing P-012's personal data at the end of its retention period")
    lead.erase_subject("P-012", "retention period ended")

    step("signing a checkpoint with the log key")
    checkpoint = sign_checkpoint(app, ORIGIN, made.log_key)

    step("a regulator's witness checks and cosigns it")
    witness = SigningKey.generate()
    body = note.format_checkpoint(checkpoint.checkpoint)
    line = note.cosign_with(
        body, "regulator.example", witness.public_key, witness.sign, int(time.time())
    )
    vkey = note.parse_verifier_key(
        note.format_verifier_key(
            "regulator.example", witness.public_key, note.SignatureType.COSIGNATURE_V1
        )
    )
    add_cosignatures(app, ORIGIN, made.log_key.public_key, line, vkey)

    step("verifying everything from the stored bytes")
    config = load_config(directory)
    report = verify_store(app, origin=ORIGIN, log_name=ORIGIN, log_public_key=config.log_public_key)
    app.close()
    click.echo()
    for text in report.lines():
        click.echo(text)
    click.echo("verified" if report.verified else "NOT VERIFIED")
    click.echo(
        f"\ndemo ledger in {directory} ({checkpoint.size} events,"
        f" {time.perf_counter() - started:.1f} s). Explore it (passphrase 'demo'):"
    )
    for command in (
        "log --format table",
        "actors list",
        "checkpoint list",
        "verify",
        "proof inclusion 3",
    ):
        click.echo(f"  calm-ledger --dir {directory} {command}")
    if not report.verified:
        raise click.exceptions.Exit(1)


class _Steps:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, text: str) -> None:
        self.n += 1
        status(f"[{self.n}/7] {text}")


def _clear(directory: Path) -> None:
    """Reuse a previous demo's directory; never touch anything else."""
    if not directory.exists():
        return
    if (directory / MARKER).exists():
        shutil.rmtree(directory)
    elif any(directory.iterdir()):
        raise ValidationError(f"{directory} exists and is not a demo ledger: choose another --dir")
