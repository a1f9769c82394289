"""Outages: the database going away mid-command, a full disk, a locked database. Each is a
one-line message, exit 3, and nothing half-written; the ledger still verifies afterwards."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAST_KDF, ORIGIN, PASSPHRASE, Ledger
from tests.support import run_cli

ENV = {"CALM_LEDGER_PASSPHRASE": PASSPHRASE, "CALM_LEDGER_NEW_PASSPHRASE": PASSPHRASE}


def log_size(ledger: Ledger) -> int:
    app = ledger.open()
    try:
        return app.store.head().size
    finally:
        app.close()


def verified(ledger: Ledger) -> bool:
    result = run_cli(["--dir", str(ledger.directory), "--db", ledger.db, "verify"], env=ENV)
    return result.exit_code == 0


class CuttingProxy:
    """A TCP proxy to PostgreSQL that drops the connection when the client sends `trigger`
    (the server then sees the client vanish mid-transaction, as in a network or server loss)."""

    def __init__(self, trigger: bytes) -> None:
        self.trigger = trigger
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", 5432))
                threading.Thread(
                    target=self._pipe, args=(client, server, True), daemon=True
                ).start()
                threading.Thread(
                    target=self._pipe, args=(server, client, False), daemon=True
                ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, watch: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if watch and self.trigger in data:
                    self.cut.set()
                    for s in (src, dst):
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    return
                dst.sendall(data)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_database_lost_mid_write_is_exit_3_and_writes_nothing(ledger: Ledger) -> None:
    before = log_size(ledger)
    proxy = CuttingProxy(b"LOCK TABLE")  # the first statement of every append
    try:
        via_proxy = ledger.db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        result = run_cli(
            [
                "--dir",
                str(ledger.directory),
                "--db",
                via_proxy,
                "--as",
                "ada",
                "actors",
                "enrol",
                "sam",
                "--role",
                "recorder",
            ],
            env=ENV,
        )
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith("calm-ledger: ") and len(result.stderr.splitlines()) == 1
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "sam.key").exists()
    assert verified(ledger)


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): disk-full test skipped")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)  # lazily: files may be open


def fill(directory: Path) -> Path:
    ballast = directory / "ballast"
    with contextlib.suppress(OSError), ballast.open("wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return ballast


def test_a_full_disk_is_exit_3_and_writes_nothing(tmp_path: Path) -> None:
    from ledger.setup import init_ledger

    with tiny_filesystem(tmp_path / "small", "6m") as small:
        directory = small / "ledger"
        init_ledger(
            directory,
            origin=ORIGIN,
            db="sqlite:///ledger.db",
            admin="ada",
            log_passphrase=PASSPHRASE,
            admin_passphrase=PASSPHRASE,
            cost=FAST_KDF,
        )
        ballast = fill(small)
        args = [
            "--dir",
            str(directory),
            "--as",
            "ada",
            "services",
            "register",
            "--id",
            "w1",
            "--name",
            "Ward 1",
            "--setting",
            "school",
            "--profile",
            "uk-eng-school",
        ]
        result = run_cli(args, env=ENV)
        assert result.exit_code == 3, (result.stdout, result.stderr)
        assert "full" in result.stderr.lower() and len(result.stderr.splitlines()) == 1
        ballast.unlink()
        check = run_cli(["--dir", str(directory), "verify"], env=ENV)
        assert check.exit_code == 0, check.stderr
        assert "1 ok" in check.stdout  # still only the admin's enrolment
        assert run_cli(args, env=ENV).exit_code == 0  # and writing works again


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_locked_database_is_exit_3_after_the_lock_timeout(ledger: Ledger) -> None:
    before = log_size(ledger)
    path = ledger.store_url.sqlite_path
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        env = {**ENV, "CALM_LEDGER_LOCK_TIMEOUT": "1"}
        result = run_cli(
            [
                "--dir",
                str(ledger.directory),
                "--as",
                "ada",
                "actors",
                "enrol",
                "sam",
                "--role",
                "recorder",
            ],
            env=env,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 3, result.stderr
    assert "locked" in result.stderr and len(result.stderr.splitlines()) == 1
    assert log_size(ledger) == before
    assert not (ledger.directory / "keys" / "sam.key").exists()


def test_an_invalid_lock_timeout_is_a_usage_error(ledger: Ledger) -> None:
    env = {**ENV, "CALM_LEDGER_LOCK_TIMEOUT": "soon"}
    result = run_cli(["--dir", str(ledger.directory), "log"], env=env)
    assert result.exit_code == 2 and "CALM_LEDGER_LOCK_TIMEOUT" in result.stderr
