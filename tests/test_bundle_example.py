"""docs/examples/ holds exactly the bundle the code exports from the example's fixed inputs,
the documents show exactly its blocks, and the documented command verifies it (exit 0)."""

from __future__ import annotations

import io
import shlex
import zipfile
from pathlib import Path

import pytest

from ledger import note
from ledger.keys import SigningKey
from tests.bundle_example import (
    BUNDLE,
    FORMATS,
    ORIGIN,
    PREVIOUS,
    README,
    ROOT,
    Example,
    build,
    seed,
    shown_blocks,
)
from tests.support import run_cli

REGENERATE = "regenerate with: python -m tests.bundle_example --write"


@pytest.fixture(scope="module")
def built() -> tuple[Example, dict[str, str]]:
    return build()


def members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_the_bundle_is_regenerated_byte_for_byte(built: tuple[Example, dict[str, str]]) -> None:
    example, _ = built
    assert PREVIOUS.read_text(encoding="utf-8") == example.previous_checkpoint, REGENERATE
    on_disk = BUNDLE.read_bytes()
    # Member by member first, for a readable difference; then the zip itself (its metadata is
    # fixed by the writer, and deflate is deterministic for a given zlib).
    assert members(on_disk) == members(example.bundle), REGENERATE
    assert on_disk == example.bundle, REGENERATE


def test_zip_metadata_is_fixed(built: tuple[Example, dict[str, str]]) -> None:
    example, _ = built
    with zipfile.ZipFile(io.BytesIO(example.bundle)) as z:
        assert {(i.date_time, i.external_attr >> 16, i.create_system) for i in z.infolist()} == {
            ((1980, 1, 1, 0, 0, 0), 0o644, 3)
        }


@pytest.mark.parametrize("document", [README, FORMATS], ids=["README", "formats"])
def test_the_documents_show_the_examples_blocks(
    built: tuple[Example, dict[str, str]], document: Path
) -> None:
    _, blocks = built
    shown = shown_blocks(document)
    assert shown, f"{document.name} shows no example block"
    assert shown == {name: blocks[name] for name in shown}, REGENERATE


def test_the_documented_command_verifies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = shown_blocks(README)
    args = shlex.split(shown["command"].replace("\\\n", " "))
    assert args[0] == "calm-ledger"
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository's root
    result = run_cli(args[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.rstrip("\n") == shown["output"]
    assert "FAIL" not in result.stdout + result.stderr


def test_without_the_previous_checkpoint_or_witness_it_still_verifies() -> None:
    shown = shown_blocks(README)
    result = run_cli(["verify-bundle", str(BUNDLE), "--trusted-key", shown["log_vkey"]])
    assert result.exit_code == 0, result.stderr
    assert "no previous checkpoint given" in result.stdout


def test_another_log_key_of_the_same_origin_does_not_verify_it() -> None:
    other = note.format_verifier_key(ORIGIN, SigningKey(seed("not the log")).public_key)
    result = run_cli(["verify-bundle", str(BUNDLE), "--trusted-key", other])
    assert result.exit_code == 1
    assert "FAIL log signatures" in result.stderr
