"""Read tables built from the log: incremental catch-up equals a rebuild, a killed catch-up
resumes without double counting, two concurrent catch-ups apply each event once."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.app import open_app
from ledger.errors import VerificationError
from ledger.store import parse_store_url
from ledger.store.base import LEVEL_BITS
from projections.readstore import TABLES, ReadStore, _use_wal
from projections.runtime import catch_up, rebuild, status, verify_read_model
from tests.conftest import Ledger
from tests.history import add_incidents, setup_ward
from tests.raw_tables import RawTables


def snapshot(read: ReadStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    views = read.query(
        "SELECT kind, key, service_id, person_id, at, body FROM {p}rm_views ORDER BY kind, key"
    )
    audit = read.query("SELECT * FROM {p}rm_audit ORDER BY leaf")
    facts = read.query("SELECT * FROM {p}rm_incidents ORDER BY ref")
    return views, audit + facts, read.position()


def test_incremental_catch_up_equals_rebuild(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    app = service.app
    read = ReadStore(ledger.store_url)
    for round_ in range(4):  # catch up in uneven steps while the history grows
        add_incidents(service, 8, seed=round_, offset=round_ * 8)
        catch_up(app, read, batch=7)
    incremental = snapshot(read)
    assert incremental[2] == app.store.head().size
    rebuild(app, read)
    assert snapshot(read) == incremental
    assert verify_read_model(app, read) == []
    read.close()
    app.close()


def test_a_catch_up_stopped_by_a_bad_leaf_keeps_the_batches_before_it(ledger: Ledger) -> None:
    """A batch is one transaction: when a later batch cannot be read (its leaf's event is
    gone), every batch before it stays applied, and nothing of it or after."""
    service = setup_ward(ledger)
    add_incidents(service, 12)
    app = service.app
    size = app.store.head().size
    raw = RawTables(ledger.db)
    leaves = [r for r in raw.rows("merkle_tree") if r["notification_id"] is not None]
    bad = size - 3  # in the last batch of 5
    (row,) = [r for r in leaves if int(r["node"]) >> LEVEL_BITS == bad]
    (event,) = [r for r in raw.rows("events") if r["nid"] == row["notification_id"]]
    raw.delete("events", event)
    read = ReadStore(ledger.store_url)
    with pytest.raises(VerificationError, match=f"leaf {bad} has no event"):
        catch_up(app, read, batch=5)
    assert read.position() == bad - bad % 5  # every batch before the bad one, none after
    read.close()
    app.close()


def test_follow_up_events_find_their_incident_through_the_register(ledger: Ledger) -> None:
    """The stream → incident map is the register's `stream` column, not rows of its own:
    one event per batch, so every follow-up looks its incident up in the stored tables."""
    service = setup_ward(ledger)
    refs = add_incidents(service, 6, seed=3)
    read = ReadStore(ledger.store_url)
    catch_up(service.app, read, batch=1)
    assert read.query("SELECT COUNT(*) FROM {p}rm_views WHERE kind = 'incident_streams'") == [(0,)]
    streams = dict(read.query("SELECT ref, stream FROM {p}rm_incidents"))
    assert sorted(streams) == sorted(refs)
    follow_ups = 0
    for ref, stream in streams.items():
        audit = read.audit("incident_ref", ref)
        assert {a.stream for a in audit} == {stream}
        follow_ups += len(audit) - 1
        assert len(audit) == len(
            read.query("SELECT 1 FROM {p}rm_audit WHERE stream = ?", (stream,))
        )
    assert follow_ups > 0
    state = read.load_state(kinds=("incidents",))
    assert any(i.debriefs or i.notifications or i.corrections for i in state.incidents.values())
    assert verify_read_model(service.app, read) == []
    read.close()
    service.app.close()


def test_a_catch_up_leaves_the_cycle_collector_as_it_found_it(ledger: Ledger) -> None:
    """The collector is off while a catch-up runs (its batches make no cycles), and back
    as it was afterwards, whether it was on or off."""
    service = setup_ward(ledger)
    add_incidents(service, 3)
    read = ReadStore(ledger.store_url)
    seen: list[bool] = []
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            catch_up(
                service.app,
                read,
                stop=read.position() + 5,
                progress=lambda _n: seen.append(gc.isenabled()),
            )
            assert gc.isenabled() is enabled
    finally:
        gc.enable()
    assert seen and not any(seen)
    read.close()
    service.app.close()


def test_read_tables_show_corrections_and_follow_up(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    refs = add_incidents(service, 20, seed=3)
    read = ReadStore(ledger.store_url)
    catch_up(service.app, read)
    state = read.load_state(service_id="ward-3")
    assert sorted(state.incidents) == sorted(refs)
    corrected = [i for i in state.incidents.values() if i.corrections]
    assert corrected and all(not i.prone for i in corrected)
    assert any(i.debriefs for i in state.incidents.values())
    assert state.staff["S-1"].training[0].techniques == ("one-person-hold",)
    read.close()
    service.app.close()


def test_tampered_read_table_is_detected_and_repaired_by_rebuild(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 5)
    read = ReadStore(ledger.store_url)
    catch_up(service.app, read)
    with read.transaction() as c:
        c.execute(
            read.sql(
                "UPDATE {p}rm_views SET body = replace(body, '\"Lounge\"',"
                " '\"Garden\"') WHERE kind = 'incidents'"
            )
        )
    problems = verify_read_model(service.app, read)
    assert len(problems) == 5 and all(p.startswith("incidents[") for p in problems)
    rebuild(service.app, read)
    assert verify_read_model(service.app, read) == []
    read.close()
    service.app.close()


def test_a_rebuild_stores_the_register_in_service_and_day_order(ledger: Ledger) -> None:
    """`metrics` reads one service's days: SQLite's register is a table clustered on
    (service, day, ref); on PostgreSQL a rebuild clusters it on the (service, day) index."""
    service = setup_ward(ledger)
    add_incidents(service, 6)
    read = ReadStore(ledger.store_url)
    rebuild(service.app, read)
    if ledger.store_url.backend == "sqlite":
        (table,) = read.query("SELECT sql FROM sqlite_master WHERE name = 'rm_incidents'")[0]
        assert "PRIMARY KEY (service_id, day, ref)) WITHOUT ROWID" in table
    else:
        clustered = read.query(
            "SELECT indisclustered FROM pg_index WHERE indexrelid = ?::regclass",
            (f"{read.prefix}rm_incidents_service",),
        )
        assert clustered == [(True,)]
    read.close()
    service.app.close()


def _slow_catch_up(db: str, directory: str) -> None:
    """Catch up one event per transaction, slowly enough to be killed part-way."""
    app = open_app(parse_store_url(db, base=Path(directory)))
    read = ReadStore(app.store_url)
    catch_up(app, read, batch=1, progress=lambda _n: time.sleep(0.05))


def _position(ledger: Ledger) -> int:
    read = ReadStore(ledger.store_url)
    try:
        return read.position()
    finally:
        read.close()


def test_killed_catch_up_resumes_without_double_counting(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 30)
    app = service.app
    size = app.store.head().size
    ctx = multiprocessing.get_context("spawn")
    positions = []
    for extra in (1, 5, 9):  # kill at different points, each after some progress
        start = _position(ledger)
        child = ctx.Process(target=_slow_catch_up, args=(ledger.db, str(ledger.directory)))
        child.start()
        deadline = time.monotonic() + 60
        while _position(ledger) < start + extra and time.monotonic() < deadline:
            time.sleep(0.01)
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join()
        positions.append(_position(ledger))
    assert all(0 < p < size for p in positions), positions  # really killed part-way
    read = ReadStore(ledger.store_url)
    catch_up(app, read)
    resumed = snapshot(read)
    assert verify_read_model(app, read) == []
    rebuild(app, read)
    assert snapshot(read) == resumed
    read.close()
    app.close()


def _catch_up_worker(db: str, directory: str) -> int:
    app = open_app(parse_store_url(db, base=Path(directory)))
    read = ReadStore(app.store_url)
    applied = catch_up(app, read, batch=5)
    read.close()
    app.close()
    return applied


def _open_new_file(path: str) -> str:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        _use_wal(conn)
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    except sqlite3.OperationalError as e:
        return str(e)
    finally:
        conn.close()


def test_processes_opening_a_new_read_table_file_at_once_all_get_wal(tmp_path: Path) -> None:
    """SQLite refuses some of them "database is locked" at once, without its busy wait,
    while another switches the new file to WAL (seen as a flaky concurrent catch-up);
    `_use_wal` tries again. Without the retry, ~1 open in 40 failed here."""
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        for n in range(30):
            path = str(tmp_path / f"read-{n}.db")
            assert pool.map(_open_new_file, [path] * 6) == ["wal"] * 6


def test_concurrent_catch_ups_apply_each_event_once(ledger: Ledger) -> None:
    service = setup_ward(ledger)
    add_incidents(service, 25)
    size = service.app.store.head().size
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        applied = pool.starmap(_catch_up_worker, [(ledger.db, str(ledger.directory))] * 2)
    assert sum(applied) == size
    read = ReadStore(ledger.store_url)
    assert status(service.app, read).lag == 0
    assert verify_read_model(service.app, read) == []
    read.close()
    service.app.close()


def _first_connect(db: str, directory: str, barrier: Any) -> int:
    barrier.wait()  # every worker runs its first connect at the same moment
    read = ReadStore(parse_store_url(db, base=Path(directory)))
    try:
        return read.position()
    finally:
        read.close()


def _connect(db: str, directory: str) -> None:
    read = ReadStore(parse_store_url(db, base=Path(directory)))
    read.connect()
    read.close()


def _drop_read_tables(ledger: Ledger) -> None:
    read = ReadStore(ledger.store_url)
    read.connect()
    with read.transaction() as c:
        for table in TABLES:
            c.execute(read.sql(f"DROP TABLE IF EXISTS {{p}}{table}"))
    read.close()


def test_concurrent_first_connects_create_the_read_tables_once(ledger: Ledger) -> None:
    """Four processes connect to a ledger without read tables at the same moment, three times
    over: schema creation is serialised (on PostgreSQL two concurrent CREATE TABLE IF NOT
    EXISTS otherwise fail on the catalogue's unique index), so every connect succeeds."""
    setup_ward(ledger).app.close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(4) as pool:
        for _round in range(3):
            _drop_read_tables(ledger)
            barrier = manager.Barrier(4)
            args = [(ledger.db, str(ledger.directory), barrier)] * 4
            assert pool.starmap(_first_connect, args) == [0] * 4


def test_schema_creation_waits_for_the_advisory_lock(ledger: Ledger) -> None:
    """The race made deterministic: while another session holds the read tables' advisory
    lock, a first connect waits; once it is released, the connect completes."""
    if ledger.store_url.backend != "postgresql":
        return  # SQLite serialises schema creation with BEGIN IMMEDIATE
    import psycopg

    setup_ward(ledger).app.close()
    _drop_read_tables(ledger)
    url, read = ledger.store_url, ReadStore(ledger.store_url)
    where: dict[str, Any] = {"host": url.pg_host, "port": url.pg_port, "user": url.pg_user}
    where |= {"password": url.pg_password or None, "dbname": url.pg_dbname}
    holder = psycopg.connect(**where)
    holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (read._lock_name(),))
    child = multiprocessing.get_context("spawn").Process(
        target=_connect, args=(ledger.db, str(ledger.directory))
    )
    child.start()
    watcher = psycopg.connect(**where, autocommit=True)
    deadline, waiting = time.monotonic() + 60, 0
    while not waiting and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
            " AND query LIKE '%%pg_advisory_xact_lock%%'"
        ).fetchone()[0]  # type: ignore[index]
    watcher.close()
    assert waiting and child.is_alive()  # waiting for the lock, neither failed nor done
    holder.commit()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert _position(ledger) == 0
    holder.close()


def test_projections_follow_applies_new_events_until_terminated(ledger: Ledger) -> None:
    """`calm-ledger projections follow` in its own process: it applies what is appended
    while it runs, and stops cleanly on SIGTERM."""
    import subprocess
    import sys

    service = setup_ward(ledger)
    where = ["--dir", str(ledger.directory), "--db", ledger.db]
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *where, "projections", "follow", "--interval", "0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        add_incidents(service, 6)
        size = service.app.store.head().size
        deadline = time.monotonic() + 60
        while _position(ledger) < size and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _position(ledger) == size
    finally:
        follower.send_signal(signal.SIGTERM)
        _, errors = follower.communicate(timeout=30)
    assert follower.returncode == 0, errors
    read = ReadStore(ledger.store_url)
    assert verify_read_model(service.app, read) == []
    read.close()
    service.app.close()
