"""Sealing personal fields: every field its own salt and nonce, each disclosure opening to
its value under the subject's key at its place."""

from __future__ import annotations

import base64
import os

from ledger.envelope import open_disclosure, seal

FIELDS = {"pseudonym": "P-1", "full_name": "Alex Example", "date_of_birth": "2011-03-14"}
PERSONAL = frozenset({"full_name", "date_of_birth", "nhs_number"})


def test_each_sealed_field_draws_its_own_salt_and_nonce_from_the_os() -> None:
    key = os.urandom(32)
    nonces, digests = set(), set()
    for _ in range(50):
        data, disclosures = seal(FIELDS, PERSONAL, key, stream="s", version=3)
        assert set(disclosures) == {"full_name", "date_of_birth"}
        for name, encrypted in disclosures.items():
            nonces.add(base64.b64decode(encrypted)[:12])
            digests.add(data["_sealed"][name])  # type: ignore[index]
            value = open_disclosure(
                encrypted,
                key,
                stream="s",
                version=3,
                name=name,
                digest=data["_sealed"][name],  # type: ignore[index]
            )
            assert value == FIELDS[name]
    assert len(nonces) == len(digests) == 100  # the same value hashes apart: fresh salts


def test_an_injected_source_is_asked_for_each_salt_then_its_nonce_in_field_order() -> None:
    asked: list[int] = []

    def random_bytes(n: int) -> bytes:
        asked.append(n)
        return bytes([len(asked)]) * n

    _, disclosures = seal(
        FIELDS, PERSONAL, os.urandom(32), stream="s", version=1, random_bytes=random_bytes
    )
    assert asked == [16, 12, 16, 12]
    assert base64.b64decode(disclosures["date_of_birth"])[:12] == bytes([2]) * 12
    assert base64.b64decode(disclosures["full_name"])[:12] == bytes([4]) * 12
