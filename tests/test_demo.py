"""The demo: completes with every verification step OK, and is deterministic for a seed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import run_cli


def run_demo(directory: Path, seed: int) -> str:
    result = run_cli(["demo", "--dir", str(directory), "--seed", str(seed)])
    assert result.exit_code == 0, result.stderr + result.stdout
    return str(result.stdout)


def test_demo_verifies_and_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "a", 3)
    second = run_demo(tmp_path / "b", 3)
    checklist = [line for line in first.splitlines() if re.match(r"\s+\d+\. ", line)]
    assert len(checklist) == 12 and all(" OK " in line for line in checklist)
    assert "verified:" in first

    def facts(out: str) -> list[str]:  # metrics table and tree root, not paths or timings
        keep = ("ward-3 ", "oak-school ", "elm-house ", "  checkpoint: size")
        return [line for line in out.splitlines() if line.startswith(keep)]

    assert facts(first) == facts(second) and len(facts(first)) == 4
    assert facts(run_demo(tmp_path / "c", 4)) != facts(first)


def test_demo_refuses_a_directory_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_cli(["demo", "--dir", str(tmp_path / "mine")])
    assert result.exit_code == 2 and "not a demo ledger" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").exists()
