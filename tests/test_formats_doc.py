"""docs/formats.md shows exactly the bytes the code produces."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.formats_example import BLOCK, build

DOC = Path(__file__).resolve().parent.parent / "docs" / "formats.md"


def test_worked_example_in_the_document_is_regenerated_exactly() -> None:
    shown = dict(BLOCK.findall(DOC.read_text()))
    assert shown == build()


def test_worked_example_is_internally_consistent() -> None:
    example = build()
    data = example["data"].encode()
    assert hashlib.sha256(data).hexdigest() in example["header"]
    disclosure = example["disclosure_date_of_birth"].encode()
    assert hashlib.sha256(disclosure).hexdigest() in example["data"]


def test_worked_example_signature_verifies_with_plain_ed25519() -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    example = build()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(example["public_key"]))
    message = b"calm-ledger/event/v1\n" + example["header"].encode()
    key.verify(bytes.fromhex(example["signature"]), message)  # raises if it does not verify
