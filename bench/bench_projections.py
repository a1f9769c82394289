"""Projection catch-up rate, CLI query latency and CSV import rate, side by side per store.

Builds a ledger of N incidents (through the real write path, in batches), then measures:
  - rebuild of the read tables from the whole log (events/s);
  - wall-clock latency of CLI queries run as a user would (a fresh process each time,
    start-up included): `incidents list` for one service and month, `metrics` for a year,
    `compliance --overdue`; p50 and p90 over repeated runs;
  - import of a 10,000-row CSV through `calm-ledger import incidents` (rows/s).

Run: python -m bench projections [--incidents 30000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.bench_append import store
from domain.incidents import Intervention, StaffInvolved
from domain.roles import Role
from domain.techniques import default_catalogue
from domain.vocabulary import Profile, Setting
from ledger.app import open_app
from ledger.keys import Argon2Cost, SigningKey, write_keystore
from ledger.mapper import Signer
from ledger.recording import NewIncident, RecordingService
from ledger.setup import init_ledger
from ledger.store import parse_store_url
from projections.readstore import ReadStore
from projections.runtime import rebuild

PASSPHRASE = "bench"
KDF = Argon2Cost(memory_kib=64, iterations=1, lanes=1)
T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)


def build(directory: Path, url: str, incidents: int) -> None:
    made = init_ledger(
        directory,
        origin="example.org/bench",
        db=url,
        admin="ada",
        log_passphrase=PASSPHRASE,
        admin_passphrase=PASSPHRASE,
        cost=KDF,
    )
    app = open_app(parse_store_url(url, base=directory))
    lead_key = SigningKey.generate()
    write_keystore(directory / "keys" / "lee.key", "lee", lead_key, PASSPHRASE, cost=KDF)
    RecordingService(app, Signer("ada", made.admin_key), made.log_key.public_key).enrol_actor(
        "lee", (Role.SAFEGUARDING_LEAD,), lead_key.public_key
    )
    s = RecordingService(app, Signer("lee", lead_key), made.log_key.public_key)
    s.publish_catalogue(default_catalogue(), None)
    services = [f"unit-{n}" for n in range(10)]
    for sid in services:
        s.register_service(sid, sid, Setting.MENTAL_HEALTH_UNIT, [Profile.UK_ENG_MH_UNIT])
        s.register_staff(f"{sid}-s", sid, "HCA", None)
        for p in range(20):
            s.register_person(f"{sid}-p{p}", sid)
        for m in range(12):
            first = date(2025, m + 1, 1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            s.record_occupancy(sid, first, last, 20 * (last.day))
    s.cache_lookups()
    batch = []
    for n in range(incidents):
        sid = services[n % 10]
        start = T0 + timedelta(minutes=n * 525_600 // max(incidents, 1))
        end = start + timedelta(minutes=5 + n % 20)
        incident, _ = s.prepare_incident(
            NewIncident(
                service=sid,
                person=f"{sid}-p{n % 20}",
                place="Lounge",
                start=start,
                end=end,
                reason="10",
                de_escalation=("talked",),
                force_description="held",
                outcome="calm",
                interventions=(
                    Intervention(
                        type="07",
                        technique_id="one-person-hold",
                        position="standing",
                        start=start,
                        end=end,
                        staff_count=1,
                        staff=(StaffInvolved(staff_id=f"{sid}-s"),),
                    ),
                ),
            )
        )
        batch.append(incident)
        if len(batch) == 1000:
            s.save_batch(batch)
            batch = []
    if batch:
        s.save_batch(batch)
    app.close()


def time_rebuild(directory: Path, url: str) -> tuple[int, float]:
    app = open_app(parse_store_url(url, base=directory))
    read = ReadStore(app.store_url)
    start = time.perf_counter()
    applied = rebuild(app, read)
    elapsed = time.perf_counter() - start
    read.close()
    app.close()
    return applied, elapsed


def cli(directory: Path, *args: str) -> float:
    env = {**os.environ, "CALM_LEDGER_PASSPHRASE": PASSPHRASE}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "--dir", str(directory), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"calm-ledger {' '.join(args)} failed: {done.stderr}")
    return elapsed


def latency(directory: Path, *args: str, runs: int = 9) -> tuple[float, float]:
    cli(directory, *args)  # warm the page cache and the read tables
    times = sorted(cli(directory, *args) for _ in range(runs))
    return statistics.median(times), times[int(0.9 * (runs - 1))]


def time_import(directory: Path, rows: int = 10_000) -> float:
    mapping = directory / "map.toml"
    mapping.write_text(
        '[columns]\nservice = "U"\nperson = "P"\nplace = "L"\nstart = "S"\n'
        'end = "E"\nreason = "R"\ntype = "T"\ntechnique = "Q"\nstaff = "F"\n'
        'de_escalation = "D"\nforce_description = "X"\noutcome = "O"\n'
    )
    path = directory / "in.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["U", "P", "L", "S", "E", "R", "T", "Q", "F", "D", "X", "O"])
        for n in range(rows):
            start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=37 * n)
            w.writerow(
                [
                    f"unit-{n % 10}",
                    f"unit-{n % 10}-p{n % 20}",
                    "Lounge",
                    start.isoformat(),
                    (start + timedelta(minutes=7)).isoformat(),
                    "10",
                    "07",
                    "one-person-hold",
                    f"unit-{n % 10}-s",
                    "talked",
                    "held",
                    "calm",
                ]
            )
    return rows / cli(
        directory, "--as", "lee", "import", "incidents", str(path), "--mapping", str(mapping)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=30_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'store':<11}{'measure':<44}{'value':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            with store(backend, Path(tmp), "proj") as url:
                directory = Path(tmp) / backend
                start = time.perf_counter()
                build(directory, url, args.incidents)
                built = time.perf_counter() - start
                applied, seconds = time_rebuild(directory, url)
                rows = [
                    ("events in the log", f"{applied:,}"),
                    ("build (signed appends, 1000/tx), events/s", f"{applied / built:,.0f}"),
                    ("rebuild read tables, events/s", f"{applied / seconds:,.0f}"),
                ]
                for label, query in (
                    (
                        "incidents list (one unit, one month)",
                        (
                            "incidents",
                            "list",
                            "--service",
                            "unit-3",
                            "--from",
                            "2025-06-01",
                            "--to",
                            "2025-07-01",
                            "--format",
                            "json",
                        ),
                    ),
                    (
                        "metrics (one unit, 12 months)",
                        (
                            "metrics",
                            "--service",
                            "unit-3",
                            "--from",
                            "2025-01-01",
                            "--to",
                            "2025-12-31",
                            "--format",
                            "json",
                        ),
                    ),
                    (
                        "compliance --overdue (all units)",
                        (
                            "compliance",
                            "--overdue",
                            "--as-of",
                            "2026-01-15T00:00Z",
                            "--format",
                            "json",
                        ),
                    ),
                    ("--help (start-up alone)", ("--help",)),
                ):
                    p50, p90 = latency(directory, *query)
                    rows.append(
                        (f"CLI {label} p50 / p90 ms", f"{p50 * 1000:.0f} / {p90 * 1000:.0f}")
                    )
                rows.append(("import 10,000-row CSV, rows/s", f"{time_import(directory):,.0f}"))
                for label, value in rows:
                    print(f"{backend:<11}{label:<44}{value:>14}", flush=True)


if __name__ == "__main__":
    main()
