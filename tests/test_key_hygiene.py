"""Key hygiene: keystores that group or others could read are refused wherever a key is
unlocked, every keystore the command line writes is private, and no private key or passphrase
ever reaches a command's output, a file the commands write, or the database.

The session test runs what a provider and a regulator do on the command line, with known
passphrases, then scans everything for every seed (raw, hex, base64, base64url, and as Go's
note signer key encodes it) and every passphrase.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

from ledger.keys import read_keystore, write_keystore
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from tests.conftest import FAST_KDF, PASSPHRASE, Ledger
from tests.raw_tables import RawTables, raw_bytes, sqlite_files
from tests.support import run_cli

ADMIN_PASS = "correct horse battery staple"  # the conftest ledger's passphrase, also init's
NEW_PASS = "N3w keystore passphrase, for lee & sam"
WITNESS_PASS = "Regulator's witness passphrase 7"
ORIGIN = "example.org/hygiene-ledger"


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, so file modes do not depend on who runs the tests."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


# --- group- or world-readable keystores are refused -------------------------------------------


def log_size(ledger: Ledger) -> int:
    return sum(
        1 for row in RawTables(ledger.db).rows("merkle_tree") if row["notification_id"] is not None
    )


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606, 0o644])
def test_an_actor_keystore_others_can_read_is_refused_and_nothing_is_written(
    ledger: Ledger, mode: int
) -> None:
    (ledger.directory / "keys" / "ada.key").chmod(mode)
    before = log_size(ledger)
    enrol = ["actors", "enrol", "sam", "--role", "recorder"]
    result = run_cli(
        ["--dir", str(ledger.directory), "--as", "ada", *enrol],
        env={"CALM_LEDGER_PASSPHRASE": PASSPHRASE, "CALM_LEDGER_NEW_PASSPHRASE": NEW_PASS},
    )
    assert result.exit_code == 3, result.stderr
    assert "accessible by group or others" in result.stderr and "chmod 600" in result.stderr
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "sam.key").exists()


def test_a_log_keystore_others_can_read_signs_no_checkpoint(ledger: Ledger) -> None:
    (ledger.directory / "keys" / "log.key").chmod(0o644)
    result = run_cli(
        ["--dir", str(ledger.directory), "checkpoint"], env={"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
    )
    assert result.exit_code == 3 and "accessible by group or others" in result.stderr
    assert result.stdout == ""
    assert RawTables(ledger.db).rows("checkpoints") == []


def test_a_witness_keystore_others_can_read_cosigns_nothing(ledger: Ledger, tmp_path: Path) -> None:
    key = tmp_path / "witness.key"
    made = run_cli(
        ["witness", "keygen", "regulator.example", "--out", str(key)],
        env={"CALM_LEDGER_NEW_PASSPHRASE": WITNESS_PASS},
    )
    assert made.exit_code == 0, made.stderr
    signed = run_cli(
        ["--dir", str(ledger.directory), "checkpoint"], env={"CALM_LEDGER_PASSPHRASE": PASSPHRASE}
    ).stdout
    (tmp_path / "cp.txt").write_text(signed)
    vkey = run_cli(["--dir", str(ledger.directory), "checkpoint", "--vkey"]).stdout.strip()
    key.chmod(0o640)
    state = tmp_path / "state.json"
    cosign = ["witness", "cosign", str(tmp_path / "cp.txt"), "--key", str(key)]
    result = run_cli(
        [*cosign, "--state", str(state), "--log-key", vkey],
        env={"CALM_LEDGER_PASSPHRASE": WITNESS_PASS},
    )
    assert result.exit_code == 3 and "accessible by group or others" in result.stderr
    assert result.stdout == ""
    assert not state.exists()


def test_the_sqlite_store_holding_data_keys_is_private(tmp_path: Path, umask_022: None) -> None:
    directory = tmp_path / "ledger"
    made = run_cli(
        ["--dir", str(directory), "init", "--origin", ORIGIN, "--admin", "ada"],
        env={"CALM_LEDGER_PASSPHRASE": ADMIN_PASS},
    )
    assert made.exit_code == 0, made.stderr
    assert stat.S_IMODE((directory / "ledger.db").stat().st_mode) & 0o077 == 0


# --- a whole session: no secret in any output, file or database byte -------------------------


@dataclass
class Session:
    directory: Path
    db: str
    work: Path
    outputs: list[str] = field(default_factory=list)

    def run(self, *args: str, passphrase: str = ADMIN_PASS, code: int = 0) -> Result:
        env = {"CALM_LEDGER_PASSPHRASE": passphrase, "CALM_LEDGER_NEW_PASSPHRASE": NEW_PASS}
        if args[:1] == ("witness",):
            env = {"CALM_LEDGER_PASSPHRASE": passphrase, "CALM_LEDGER_NEW_PASSPHRASE": WITNESS_PASS}
            result = run_cli(list(args), env=env)
        else:
            result = run_cli(["--dir", str(self.directory), *args], env=env)
        self.outputs += [result.stdout, result.stderr]
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    def save(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        return path


def provider_and_regulator(session: Session) -> None:
    """What a provider and a regulator do, including mistakes, with --debug tracebacks."""
    s = session
    s.run("init", "--origin", ORIGIN, "--admin", "ada", "--db", s.db)
    s.run("--as", "ada", "actors", "enrol", "lee", "--role", "safeguarding-lead")
    s.run("--as", "ada", "actors", "enrol", "sam", "--role", "recorder")
    s.run("--as", "ada", "actors", "rekey", "sam", "--reason", "scheduled rotation")
    s.run("--as", "lee", "erase", "P-7F3A", "--reason", "retention ended", passphrase=NEW_PASS)
    s.run("actors", "list", "--format", "json")
    s.run("--as", "ada", "actors", "enrol", "kim", "--role", "recorder", passphrase="wrong", code=3)
    s.run("--debug", "--as", "lee", "erase", "P-1", "--reason", "x", passphrase="wrong", code=3)
    s.run(
        "--debug",
        "--as",
        "sam",
        "actors",
        "revoke",
        "lee",
        "--reason",
        "x",
        passphrase=NEW_PASS,
        code=2,
    )
    first = s.save("cp1.txt", s.run("checkpoint").stdout)
    vkey = s.run("checkpoint", "--vkey").stdout.strip()
    key, state = s.work / "witness.key", s.work / "witness.json"
    witness_vkey = s.run("witness", "keygen", "regulator.example", "--out", str(key)).stdout.strip()
    cosig = s.run(
        "witness",
        "cosign",
        str(first),
        "--key",
        str(key),
        "--state",
        str(state),
        "--log-key",
        vkey,
        passphrase=WITNESS_PASS,
    ).stdout
    s.run(
        "checkpoint",
        "add-cosignature",
        str(s.save("cosig.txt", cosig)),
        "--witness-key",
        witness_vkey,
    )
    s.run("--as", "ada", "actors", "revoke", "sam", "--reason", "left")
    second = s.save("cp2.txt", s.run("checkpoint").stdout)
    size1, size2 = (int(p.read_text().split("\n")[1]) for p in (first, second))
    proof = s.save(
        "1-2.proof", s.run("proof", "consistency", "--from", str(size1), "--to", str(size2)).stdout
    )
    s.run(
        "witness",
        "cosign",
        str(second),
        "--key",
        str(key),
        "--state",
        str(state),
        "--proof",
        str(proof),
        passphrase=WITNESS_PASS,
    )
    s.run(
        "witness",
        "cosign",
        str(first),
        "--key",
        str(key),
        "--state",
        str(state),
        passphrase="wrong",
        code=1,
    )
    s.run("proof", "inclusion", "1", "--out", str(s.work / "leaf-1.proof"))
    for fmt in ("table", "json", "csv"):
        s.run("log", "--format", fmt)
    s.run("checkpoint", "show")
    s.run("checkpoint", "list", "--format", "json")
    s.run("verify")
    s.run("verify", "--format", "json")


def encodings(secret: bytes) -> list[bytes]:
    b64 = base64.b64encode(secret)
    url = base64.urlsafe_b64encode(secret).rstrip(b"=")
    go_note_key = base64.b64encode(b"\x01" + secret)  # Go's PRIVATE+KEY+… form
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), b64, url, go_note_key]


@pytest.fixture
def cheap_keystores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keystores the commands write use the tests' Argon2 cost: what leaks does not depend on
    it, and the default (64 MiB, 3 passes) would make the session several seconds slower."""
    for function in (write_keystore, init_ledger):
        defaults = function.__kwdefaults__
        assert defaults is not None and "cost" in defaults
        monkeypatch.setitem(defaults, "cost", FAST_KDF)


def test_no_secret_reaches_output_files_or_the_database(
    db_url: str, tmp_path: Path, cheap_keystores: None
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    session = Session(tmp_path / "ledger", db_url, work)
    provider_and_regulator(session)

    keys = session.directory / "keys"
    keystores = {p: NEW_PASS for p in keys.iterdir()}  # lee, sam and sam's retired key
    keystores |= {keys / "log.key": ADMIN_PASS, keys / "ada.key": ADMIN_PASS}
    keystores[work / "witness.key"] = WITNESS_PASS
    assert len(keystores) == 6
    seeds = [read_keystore(path, passphrase)._seed for path, passphrase in keystores.items()]
    secrets = [e for seed in seeds for e in encodings(seed)]
    secrets += [p.encode() for p in (ADMIN_PASS, NEW_PASS, WITNESS_PASS)]

    for path in keystores:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    written = [
        p
        for p in [*session.directory.rglob("*"), *work.rglob("*")]
        if p.is_file() and p not in keystores
    ]
    assert {p.name for p in written} >= {"calm-ledger.toml", "witness.json", "leaf-1.proof"}
    places = {"output": "\n".join(session.outputs).encode()}
    places |= {str(p): p.read_bytes() for p in written}
    places["database rows"] = raw_bytes(RawTables(db_url).snapshot())
    url = parse_store_url(db_url)
    if url.sqlite_path is not None:
        for path in sqlite_files(url.sqlite_path):
            places[str(path)] = path.read_bytes()
    assert any("Traceback" in text for text in session.outputs)  # --debug showed some
    for where, content in places.items():
        for secret in secrets:
            assert secret not in content, f"a secret appears in {where}"
