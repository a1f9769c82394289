"""The worked example of docs/formats.md, built through the real mapper with fixed inputs.

`python -m tests.formats_example` prints the blocks; `test_formats_doc.py` checks that the
document shows exactly these bytes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

from domain.people import Person
from ledger.envelope import decode_envelope, disclosure_bytes, signing_input
from ledger.keys import SigningKey
from ledger.mapper import EnvelopeMapper, Signer

SEED = bytes(range(32))  # the example actor's Ed25519 seed: 00 01 02 … 1f
DATA_KEY = bytes([0x11]) * 32
TIME = datetime(2026, 10, 5, 14, 30, 0, 123456, tzinfo=UTC)


class _FixedKeys:
    def data_key(self, subject: str, *, create: bool) -> bytes | None:
        return DATA_KEY


def _counter_bytes() -> object:
    counter = itertools.count()

    def random_bytes(n: int) -> bytes:
        return bytes([next(counter) % 256]) * n

    return random_bytes


def build() -> dict[str, str]:
    mapper = EnvelopeMapper(origin="example.org/restraint-ledger")
    mapper.bind(_FixedKeys(), _NoHeads())
    mapper.random_bytes = _counter_bytes()  # type: ignore[assignment]
    key = SigningKey(SEED)
    person = Person.register(
        "P-7F3A",
        "ward-3",
        full_name="Alex Example",
        date_of_birth=date(2011, 3, 14),
        learning_disability_or_autism=True,
    )
    (event,) = person.collect_events()
    event = event.model_copy(
        update={"originator_id": UUID("8c5f5a0e-0d1c-5e3b-9f5a-3c2b1a000001"), "timestamp": TIME}
    )
    with mapper.signing_as(Signer("lee", key)):
        stored = mapper.to_stored_event(event)
    envelope = decode_envelope(stored.state)
    return {
        "public_key": base64.b64encode(key.public_key).decode(),
        "key_id": key.key_id,
        "data": envelope.data_bytes.decode(),
        "disclosures": envelope.disclosures_bytes.decode(),
        "header": envelope.header_bytes.decode(),
        "signing_input_sha256": hashlib.sha256(signing_input(envelope.header_bytes)).hexdigest(),
        "signature": envelope.signature.hex(),
        "envelope_sha256": hashlib.sha256(stored.state).hexdigest(),
        "envelope_length": str(len(stored.state)),
        "leaf_hash": hashlib.sha256(b"\x00" + envelope.header_bytes).hexdigest(),
        "disclosure_date_of_birth": disclosure_bytes(
            bytes(16), "date_of_birth", "2011-03-14"
        ).decode(),
    }


class _NoHeads:
    def header_digest(self, stream: UUID, version: int) -> bytes:
        raise AssertionError("the example is a stream's first event")


def rewrite(path: Path) -> None:
    """Replace every example block of the document with freshly built bytes."""
    blocks = build()
    text = BLOCK.sub(
        lambda m: f"<!-- example:{m[1]} -->\n```\n{blocks[m[1]]}\n```", path.read_text()
    )
    path.write_text(text)


BLOCK = re.compile(r"<!-- example:(\w+) -->\n```\n(.*?)\n```", re.S)

if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        rewrite(Path(sys.argv[2]))
    else:
        for name, value in build().items():
            print(f"<!-- example:{name} -->\n```\n{value}\n```\n")
