"""The worked example bundle of docs/examples/, exported by the real code from fixed inputs.

Every input that would otherwise be random or the time of day is fixed: the Ed25519 keys come
from fixed seeds, events are recorded at fixed times (`domain.events.clock`), salts come from
a counter, incident references and debrief ids from counters, the manifest's `created_at` and
the witness's cosignature time are constants, and the bundle writer gives every zip member
the same date. So the same code makes the same bytes.

`python -m tests.bundle_example --write` rewrites docs/examples/ (the bundle, the previous
checkpoint and the README's blocks) and the example blocks of docs/formats.md §9;
`python -m tests.bundle_example` prints the blocks. tests/test_bundle_example.py checks that
the files are exactly what this builds, and that `calm-ledger verify-bundle` accepts them.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

from domain import events
from domain.incidents import Intervention
from domain.roles import Role
from domain.vocabulary import DebriefType, Profile, Recipient, Setting
from ledger import note
from ledger.app import LedgerApp, open_app
from ledger.bundle import Disclosure
from ledger.checkpoints import add_cosignatures, sign_checkpoint
from ledger.export import ExportRequest, export_bundle
from ledger.keys import Argon2Cost, SigningKey
from ledger.mapper import Signer
from ledger.recording import NewIncident, RecordingService
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from projections.bundles import BundleState, bundle_metrics

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
BUNDLE = EXAMPLES / "example.bundle"
PREVIOUS = EXAMPLES / "previous-checkpoint.txt"
README = EXAMPLES / "README.md"
FORMATS = ROOT / "docs" / "formats.md"

ORIGIN = "example.org/restraint-ledger"
WITNESS = "witness.example"
START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)  # the first event's recording time
CREATED_AT = "2026-10-01T09:00:00.000000Z"  # the manifest's
COSIGNED_AT = 1790845200  # the witness's cosignature time (2026-10-01T09:00:00Z)
PASSPHRASE = "example"  # of the keystores made on the way; they are not part of the example
CHEAP_KDF = Argon2Cost(memory_kib=64, iterations=1, lanes=1)


def seed(label: str) -> bytes:
    """The Ed25519 seed of an example key: SHA-256 of an ASCII label."""
    return hashlib.sha256(f"calm-ledger bundle example: {label}".encode()).digest()


LOG_KEY = SigningKey(seed("log"))
KEYS = {name: SigningKey(seed(name)) for name in ("ada", "lee", "sam")}


def log_vkey() -> str:
    return note.format_verifier_key(ORIGIN, LOG_KEY.public_key)


def witness_vkey() -> str:
    witness = SigningKey(seed(WITNESS))
    return note.format_verifier_key(WITNESS, witness.public_key, note.SignatureType.COSIGNATURE_V1)


def command(bundle: str, previous: str) -> str:
    return (
        f"calm-ledger verify-bundle {bundle} \\\n"
        f'    --trusted-key "{log_vkey()}" \\\n'
        f"    --previous-checkpoint {previous} \\\n"
        f'    --witness-key "{witness_vkey()}" --witness-quorum 1'
    )


def verify_args(bundle: Path, previous: Path) -> list[str]:
    return [
        "verify-bundle",
        str(bundle),
        "--trusted-key",
        log_vkey(),
        "--previous-checkpoint",
        str(previous),
        "--witness-key",
        witness_vkey(),
        "--witness-quorum",
        "1",
    ]


# --- the history -----------------------------------------------------------------------------


@contextmanager
def fixed_clock() -> Iterator[Callable[[], datetime]]:
    """Record events at START, START + 1 h, … (each call to the yielded function moves on)."""
    clock = events.clock
    before = clock.fixed
    hours = itertools.count()

    def tick() -> datetime:
        clock.fixed = START + timedelta(hours=next(hours))
        return clock.fixed

    try:
        yield tick
    finally:
        clock.fixed = before


def counter_bytes() -> Callable[[int], bytes]:
    """Salts and nonces: SHA-256 of a counter (never do this outside an example)."""
    counter = itertools.count()

    def random_bytes(n: int) -> bytes:
        return hashlib.sha256(f"example {next(counter)}".encode()).digest()[:n]

    return random_bytes


def signer(app: LedgerApp, name: str, refs: Iterator[int], ids: Iterator[int]) -> RecordingService:
    """A recording service signing as `name`, whose references and ids come from counters."""
    service = RecordingService(app, Signer(name, KEYS[name]), LOG_KEY.public_key)
    service.new_ref = lambda prefix: f"{prefix}-{next(refs):012d}"
    service.new_id = lambda: uuid5(NAMESPACE_URL, f"example:{next(ids)}")
    return service


def incident(
    service: str, person: str, start: datetime, minutes: int, **facts: object
) -> NewIncident:
    end = start + timedelta(minutes=minutes)
    staff = "S-01" if service == "ward-3" else "S-02"
    return NewIncident.model_validate(
        {
            "service": service,
            "person": person,
            "place": "Lounge",
            "start": start,
            "end": end,
            "reason": "10",
            "de_escalation": ("talked", "offered space"),
            "interventions": (
                Intervention.by_staff(
                    [staff], type="07", position="standing", start=start, end=end
                ),
            ),
            **facts,
        }
    )


@dataclass(frozen=True)
class Example:
    bundle: bytes
    previous_checkpoint: str


def build_files(work: Path) -> Example:
    """Make the ledger in `work`, export the bundle, and return the example's files."""
    directory = work / "ledger"
    with fixed_clock() as tick:
        tick()
        init_ledger(
            directory,
            origin=ORIGIN,
            db="sqlite:///ledger.db",
            admin="ada",
            log_passphrase=PASSPHRASE,
            admin_passphrase=PASSPHRASE,
            cost=CHEAP_KDF,
            keys=(LOG_KEY, KEYS["ada"]),
        )
        app = open_app(parse_store_url("sqlite:///ledger.db", base=directory))
        try:
            app.envelope_mapper.random_bytes = counter_bytes()
            refs, ids = itertools.count(1), itertools.count(1)
            ada = signer(app, "ada", refs, ids)
            tick()
            ada.enrol_actor("lee", (Role.SAFEGUARDING_LEAD,), KEYS["lee"].public_key)
            lee = signer(app, "lee", refs, ids)
            tick()
            lee.register_service(
                "ward-3", "Ward 3", Setting.MENTAL_HEALTH_UNIT, [Profile.UK_ENG_MH_UNIT]
            )
            tick()
            lee.register_service(
                "house-2", "House 2", Setting.CHILDRENS_HOME, [Profile.UK_ENG_CHILDRENS_HOME]
            )
            tick()
            lee.register_person(
                "P-0001", "ward-3", full_name="Alex Example", date_of_birth=date(2011, 3, 14)
            )
            tick()
            lee.register_person("P-0002", "house-2", full_name="Robin Sample")
            tick()
            lee.register_staff("S-01", "ward-3", "Healthcare assistant", "Jo Staff")
            tick()
            lee.register_staff("S-02", "house-2", "Residential worker", "Lou Staff")
            previous = sign_checkpoint(app, ORIGIN, LOG_KEY)  # what the regulator last saw

            tick()
            ada.enrol_actor("sam", (Role.RECORDER,), KEYS["sam"].public_key)
            sam = signer(app, "sam", refs, ids)
            at = tick()
            ward = sam.record_incident(
                incident(
                    "ward-3",
                    "P-0001",
                    at - timedelta(hours=3),
                    9,
                    antecedents="Upset after a phone call",
                    force_description="Held by one arm, standing, for nine minutes",
                    outcome="Calm within ten minutes",
                )
            )
            at = tick()
            sam.record_debrief(
                ward, DebriefType.IMMEDIATE, at, "S-01", learning="Offer the quiet room sooner"
            )
            at = tick()
            sam.notify(ward, Recipient.PARENT_CARER, at, "phone", "S-01")
            tick()
            lee.record_occupancy("ward-3", date(2026, 9, 1), date(2026, 9, 30), 540)
            at = tick()
            house = sam.record_incident(
                incident(
                    "house-2",
                    "P-0002",
                    at - timedelta(hours=2),
                    4,
                    antecedents="Refused to leave the kitchen",
                    force_description="Guided by the elbow to the lounge",
                    outcome="Settled",
                )
            )
            at = tick()
            sam.record_debrief(house, DebriefType.IMMEDIATE, at, "S-02")
            tick()
            lee.register_person("P-0003", "ward-3", full_name="Kit Former-Resident")
            tick()
            lee.erase_subject("P-0003", "retention period ended")
            target = sign_checkpoint(app, ORIGIN, LOG_KEY)
            cosignature = note.cosign(
                note.format_checkpoint(target.checkpoint), WITNESS, seed(WITNESS), COSIGNED_AT
            )
            add_cosignatures(
                app,
                ORIGIN,
                LOG_KEY.public_key,
                cosignature,
                note.parse_verifier_key(witness_vkey()),
            )
            out = work / "example.bundle"
            folded = BundleState()
            export_bundle(
                app,
                ORIGIN,
                LOG_KEY.public_key,
                ExportRequest(
                    out=out,
                    scope=("ward-3",),
                    disclosure=Disclosure.PERSONAL,
                    recipient="regulator.example",
                    previous_checkpoint=previous.signed,
                    to_size=None,
                    created_at=CREATED_AT,
                    sign=LOG_KEY.sign,
                ),
                on_entry=folded.add_entry,
                metrics=lambda: bundle_metrics(folded.state),
            )
        finally:
            app.close()
    return Example(out.read_bytes(), previous.signed)


def blocks(example: Example, verify_output: str) -> dict[str, str]:
    """The text blocks docs/examples/README.md and docs/formats.md §9 show."""
    with zipfile.ZipFile(io.BytesIO(example.bundle)) as z:
        members = "\n".join(
            f"{info.filename:<16} {info.file_size:>6} bytes" for info in z.infolist()
        )
        manifest = z.read("manifest.json").decode()
        left = z.read("left-border.txt").decode().rstrip("\n")
        first_entry = z.read("entries.jsonl").decode().splitlines()[0]
    return {
        "log_vkey": log_vkey(),
        "witness_vkey": witness_vkey(),
        "command": command("docs/examples/example.bundle", "docs/examples/previous-checkpoint.txt"),
        "output": verify_output.rstrip("\n"),
        "bundle_sha256": hashlib.sha256(example.bundle).hexdigest(),
        "members": members,
        "manifest": manifest,
        "left_border": left,
        "first_entry": first_entry,
    }


def verify_output(bundle: Path, previous: Path) -> tuple[int, str]:
    from tests.support import run_cli

    result = run_cli(verify_args(bundle, previous))
    return result.exit_code, result.stdout


BLOCK = re.compile(r"<!-- bundle-example:(\w+) -->\n```\n(.*?)\n```", re.S)


def shown_blocks(path: Path) -> dict[str, str]:
    return dict(BLOCK.findall(path.read_text(encoding="utf-8")))


def rewrite_blocks(path: Path, values: dict[str, str]) -> None:
    text = BLOCK.sub(
        lambda m: f"<!-- bundle-example:{m[1]} -->\n```\n{values[m[1]]}\n```",
        path.read_text(encoding="utf-8"),
    )
    path.write_text(text, encoding="utf-8")


def build() -> tuple[Example, dict[str, str]]:
    """The example's files and the blocks the documents show (verified on the way)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        example = build_files(work)
        previous = work / "previous-checkpoint.txt"
        previous.write_text(example.previous_checkpoint, encoding="utf-8")
        code, output = verify_output(work / "example.bundle", previous)
        if code != 0:
            raise AssertionError(f"the example bundle does not verify:\n{output}")
        return example, blocks(example, output)


def write() -> None:
    example, values = build()
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    BUNDLE.write_bytes(example.bundle)
    PREVIOUS.write_text(example.previous_checkpoint, encoding="utf-8")
    for path in (README, FORMATS):
        rewrite_blocks(path, values)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        for name, value in build()[1].items():
            print(f"<!-- bundle-example:{name} -->\n```\n{value}\n```\n")
