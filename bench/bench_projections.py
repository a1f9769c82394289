"""Projection catch-up rate, CLI query latency and CSV import rate, side by side per store.

Builds a ledger of N incidents (through the real write path, in batches), then measures:
  - rebuild of the read tables from the whole log (events/s);
  - incremental catch-up: the read tables rebuilt up to the last `--tail` events, then those
    events applied by `catch_up` as a live ledger would (events/s);
  - wall-clock latency of CLI queries run as a user would (a fresh process each time,
    start-up included): `incidents list` for one service and month, `metrics` for a year,
    `compliance` (all units overdue; one unit open; the defaults), `incidents show`,
    `audit person`, `--help`; p50 and p90 over repeated runs, beside `python -c pass` and
    `python -c "import click"` as baselines;
  - import of a 10,000-row CSV through `calm-ledger import incidents` (rows/s; skipped with
    `--keep`, since it would grow the kept ledger).

Run: python -m bench projections [--incidents 30000] [--backends sqlite,postgresql]
     [--keep DIR]   build once into DIR (SQLite file, PostgreSQL schema named after N) and
                    reuse it in later runs, e.g. to compare code before and after a change
     [--before TREE] time each CLI query, the rebuild and the catch-up with the code of
                     TREE too, runs alternating
     [--only LABELS] only the CLI queries whose label contains one of LABELS
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.bench_append import PG, store
from domain.incidents import Intervention
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
from projections.runtime import catch_up, rebuild

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
                    Intervention.by_staff(
                        [f"{sid}-s"],
                        type="07",
                        technique_id="one-person-hold",
                        position="standing",
                        start=start,
                        end=end,
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


def time_catch_up(directory: Path, url: str, tail: int) -> tuple[int, float]:
    """Rebuild up to the last `tail` leaves, then time catching up with them."""
    app = open_app(parse_store_url(url, base=directory))
    read = ReadStore(app.store_url)
    size = app.store.head().size
    read.drop()
    catch_up(app, read, stop=max(size - tail, 0))
    start = time.perf_counter()
    applied = catch_up(app, read)
    elapsed = time.perf_counter() - start
    read.close()
    app.close()
    return applied, elapsed


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    return elapsed, done.stdout


def cli(directory: Path, *args: str, tree: Path | None = None) -> tuple[float, str]:
    """Time one CLI run in a new process, with the code of `tree` (a source tree) if given."""
    env = {**os.environ, "CALM_LEDGER_PASSPHRASE": PASSPHRASE}
    command = [sys.executable, "-m", "cli.main", "--dir", str(directory.resolve()), *args]
    return run(command, env, tree)


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def latency(directory: Path, *args: str, runs: int = 9) -> tuple[float, float]:
    cli(directory, *args)  # warm the page cache and the read tables
    return percentiles([cli(directory, *args)[0] for _ in range(runs)])


def latency_against(
    directory: Path, args: tuple[str, ...], runs: int, before: Path
) -> tuple[tuple[float, float], tuple[float, float], bool]:
    """p50/p90 of this code and of the code in `before`, runs alternating so that both see
    the same load; and whether both wrote the same output."""
    outputs = {cli(directory, *args)[1], cli(directory, *args, tree=before)[1]}  # warm
    now, then = [], []
    for _ in range(runs):
        now.append(cli(directory, *args)[0])
        then.append(cli(directory, *args, tree=before)[0])
    return percentiles(now), percentiles(then), len(outputs) == 1


def python_latency(code: str, runs: int = 9) -> tuple[float, float]:
    command = [sys.executable, "-c", code]
    run(command, dict(os.environ))
    return percentiles([run(command, dict(os.environ))[0] for _ in range(runs)])


def some_incident(directory: Path) -> str:
    return str(json.loads(cli(directory, *QUERIES[0][1])[1])[0]["incident"])


QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
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
        ("compliance", "--overdue", "--as-of", "2026-01-15T00:00Z", "--format", "json"),
    ),
    (
        "compliance --open (one unit, last 7 days)",
        (
            "compliance",
            "--open",
            "--service",
            "unit-3",
            "--days",
            "7",
            "--as-of",
            "2026-01-07T00:00Z",
            "--format",
            "json",
        ),
    ),
    # The defaults: 90 days back from now (the bench's incidents end on 2026-01-06, so the
    # window may hold none of them: this measures what every such query pays).
    ("compliance (defaults)", ("compliance", "--format", "json")),
    ("incidents show (one incident)", ("incidents", "show", "{ref}", "--format", "json")),
    # unit-3's incidents fall to p3 and p13 (n % 10 == 3, so n % 20 is 3 or 13): p13 is in
    # 1 in 20 of all incidents, a heavy trail (p7, timed before, had none: one event).
    ("audit person (1 in 20 incidents)", ("audit", "person", "unit-3-p13", "--format", "json")),
    ("--help (start-up alone)", ("--help",)),
)


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
    return (
        rows
        / cli(
            directory, "--as", "lee", "import", "incidents", str(path), "--mapping", str(mapping)
        )[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=30_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--tail", type=int, default=10_000, help="events in the catch-up")
    parser.add_argument("--runs", type=int, default=9, help="runs per CLI query")
    parser.add_argument(
        "--rate-runs", type=int, default=3, help="with --before: rebuild/catch-up runs each"
    )
    parser.add_argument("--keep", type=Path, help="build into, or reuse, this directory")
    parser.add_argument("--skip", default="", help="measures to skip: rebuild,catch-up,cli,import")
    parser.add_argument(
        "--only", default="", help="CLI queries whose label contains one of these (comma list)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="also time each CLI query, the rebuild and the catch-up with the code of this"
        " source tree (e.g. `git archive HEAD | tar -x -C DIR`), alternating runs, and say"
        " whether the CLI outputs differ",
    )
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"{'store':<11}{'measure':<44}{'value':>14}", flush=True)
    for label, code in (("python -c pass", "pass"), ('python -c "import click"', "import click")):
        p50, p90 = python_latency(code, args.runs)
        print(f"{'-':<11}{label + ' p50 / p90 ms':<44}{_ms(p50, p90):>14}", flush=True)
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for backend in args.backends.split(","):
            directory = root / f"{backend}-{args.incidents}"
            if args.keep:
                url = _kept_store(backend, directory, args.incidents)
            else:
                url = stack.enter_context(store(backend, root, "proj"))
            built = 0.0
            if not args.keep or not (directory / "keys").exists():
                start = time.perf_counter()
                build(directory, url, args.incidents)
                built = time.perf_counter() - start
            for label, value in _measures(directory, url, args, skip, built):
                print(f"{backend:<11}{label:<44}{value:>14}", flush=True)


def _measures(
    directory: Path, url: str, args: argparse.Namespace, skip: set[str], built: float
) -> Iterator[tuple[str, str]]:
    if args.before is not None and {"rebuild", "catch-up"} - skip:
        yield from _rates_against(directory, url, args)  # both, old and new code alternating
    else:
        if "rebuild" not in skip:
            applied, seconds = time_rebuild(directory, url)
            yield "events in the log", f"{applied:,}"
            if built:
                yield "build (signed appends, 1000/tx), events/s", f"{applied / built:,.0f}"
            yield "rebuild read tables, events/s", f"{applied / seconds:,.0f}"
        if "catch-up" not in skip:
            applied, seconds = time_catch_up(directory, url, args.tail)
            yield f"catch up the last {applied:,} events, events/s", f"{applied / seconds:,.0f}"
    if "cli" not in skip:
        yield from _cli_measures(directory, args)
    if not args.keep and "import" not in skip:
        yield "import 10,000-row CSV, rows/s", f"{time_import(directory):,.0f}"


RATES = """
import sys, time
from pathlib import Path
from bench.bench_projections import time_catch_up, time_rebuild
directory, url, tail = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cpu = time.process_time()
applied, seconds = time_rebuild(directory, url)
cpu = time.process_time() - cpu
caught_up, catch_up_seconds = time_catch_up(directory, url, tail)
print(applied / seconds, applied / cpu, caught_up / catch_up_seconds)
"""


def rates(directory: Path, url: str, tail: int, tree: Path) -> list[float]:
    """Rebuild events/s (wall, and this process's CPU) and incremental catch-up events/s,
    measured in a new process running the code of `tree`."""
    command = [sys.executable, "-c", RATES, str(directory.resolve()), url, str(tail)]
    return [float(x) for x in run(command, dict(os.environ), tree)[1].split()]


def _rates_against(
    directory: Path, url: str, args: argparse.Namespace
) -> Iterator[tuple[str, str]]:
    """Rebuild and catch-up rates of this code and of `--before`'s, runs alternating so both
    see the same load (`--rate-runs` each); medians, and the spread."""
    here = Path(__file__).resolve().parents[1]
    runs: dict[str, list[list[float]]] = {"before": [], "after": []}
    for _ in range(args.rate_runs):
        runs["before"].append(rates(directory, url, args.tail, args.before))
        runs["after"].append(rates(directory, url, args.tail, here))
    labels = ("rebuild, events/s", "rebuild, events/s of client CPU", "catch-up, events/s")
    for n, label in enumerate(labels):
        for when, measured in runs.items():
            values = sorted(r[n] for r in measured)
            spread = f" ({values[0]:,.0f}-{values[-1]:,.0f})" if len(values) > 1 else ""
            yield f"{label}, {when}", f"{statistics.median(values):,.0f}{spread}"
    yield "load (1 min)", Path("/proc/loadavg").read_text().split()[0]


def _cli_measures(directory: Path, args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    ref = some_incident(directory)
    wanted = [w for w in args.only.split(",") if w]
    for label, query in QUERIES:
        if wanted and not any(w in label for w in wanted):
            continue
        command = tuple(a.format(ref=ref) for a in query)
        if args.before is None:
            yield f"CLI {label} p50 / p90 ms", _ms(*latency(directory, *command, runs=args.runs))
            continue
        now, then, same = latency_against(directory, command, args.runs, args.before)
        yield f"CLI {label} p50 / p90 ms, before", _ms(*then)
        yield f"CLI {label} p50 / p90 ms, after", _ms(*now)
        yield f"CLI {label} outputs", "same" if same else "DIFFER"
        yield "load (1 min)", Path("/proc/loadavg").read_text().split()[0]


def _kept_store(backend: str, directory: Path, incidents: int) -> str:
    """A store that outlives the run: a file in the directory, or a PostgreSQL schema."""
    if backend == "sqlite":
        return f"sqlite:///{directory.resolve()}/ledger.db"
    import psycopg

    schema = f"bench_proj_keep_{incidents}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{PG}?schema={schema}"


def _ms(p50: float, p90: float) -> str:
    return f"{p50 * 1000:.0f} / {p90 * 1000:.0f}"


if __name__ == "__main__":
    main()
