"""Read tables built from the log: incremental catch-up equals a rebuild, a killed catch-up
resumes without double counting, two concurrent catch-ups apply each event once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

from ledger.app import open_app
from ledger.store import parse_store_url
from projections.readstore import ReadStore
from projections.runtime import catch_up, rebuild, status, verify_read_model
from tests.conftest import Ledger
from tests.history import add_incidents, setup_ward


def snapshot(read: ReadStore) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    views = read.query(
        "SELECT kind, key, service_id, person_id, at, body FROM {p}rm_views ORDER BY kind, key"
    )
    audit = read.query("SELECT * FROM {p}rm_audit ORDER BY leaf")
    return views, audit, read.position()


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
