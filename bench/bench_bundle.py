"""Export and offline verification of a bundle, against the raw Ed25519 verify rate.

Builds a ledger of N incidents, signs a checkpoint, exports a bundle at the data level, and
runs `calm-ledger verify-bundle` in a fresh process (through /usr/bin/time, so its peak memory
is its own: see `bench_verify.child`), reporting events/s, the ratio to the raw libsodium
verify rate times cores, and peak RSS. `python -m bench verify` measures verify and
verify-bundle side by side on `person.registered` logs; this one on incidents.

With --before DIR (a copy of the code before a change) verify-bundle runs with both codes,
alternating, --repeat times each; --keep DIR builds the SQLite ledger and its bundle into DIR
once and reuses them (the build of 10^6 incidents takes many minutes).

Run: python -m bench bundle [--incidents 100000] [--backends sqlite,postgresql]
     [--before DIR] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

from bench.bench_append import raw_verify_rate
from bench.bench_projections import build
from bench.bench_verify import (  # same passphrase as bench_projections': "bench"
    child,
    ledger_store,
    load,
)
from ledger import note
from ledger.config import load_config


def cli(directory: Path | None, *args: str, code: Path | None = None) -> tuple[float, float]:
    """Run a command in a fresh process; return (seconds, its own peak RSS in MiB)."""
    prefix = ["--dir", str(directory)] if directory else []
    return child([*prefix, *args], code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--repeat", type=int, default=1, help="verify-bundle runs per code")
    parser.add_argument("--keep", type=Path, help="build a SQLite ledger into, or reuse, this")
    args = parser.parse_args()
    raw = raw_verify_rate()
    cores = os.cpu_count() or 1
    print(
        f"raw Ed25519 verify: {raw:,.0f}/s on one core; target 0.8 x {cores} cores ="
        f" {0.8 * raw * cores:,.0f}/s"
    )
    print(f"{'store':<11}{'measure':<40}{'value':>16}{'ratio':>34}")
    with contextlib.ExitStack() as stack:
        tmp = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for backend in args.backends.split(","):
            with ledger_store(backend, tmp, args.incidents, args.keep, "bundle") as url:
                directory = tmp / f"{backend}-{args.incidents}"
                bundle = tmp / f"{backend}-{args.incidents}.bundle"
                rows: list[tuple[str, str, str]] = []
                if not bundle.exists():
                    build(directory, url, args.incidents)
                    cli(directory, "checkpoint")
                    partial = bundle.with_suffix(".partial")
                    partial.unlink(missing_ok=True)
                    seconds, rss = cli(directory, "export", "--out", str(partial))
                    partial.rename(bundle)
                    size = int(cli_size(directory))
                    rows += [
                        ("export, events/s", f"{size / seconds:,.0f}", ""),
                        ("export peak RSS, MiB", f"{rss:,.0f}", ""),
                    ]
                size = int(cli_size(directory))
                rows[:0] = [
                    ("events", f"{size:,}", ""),
                    ("bundle size, MiB", f"{bundle.stat().st_size / 2**20:,.1f}", ""),
                ]
                config = load_config(directory)
                vkey = note.format_verifier_key(config.origin, config.log_public_key)
                codes: list[tuple[str, Path | None]] = [("after", None)]
                if args.before:
                    codes.append(("before", args.before))
                runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in codes}
                verify = ("verify-bundle", str(bundle), "--trusted-key", vkey)
                for _ in range(args.repeat):  # alternating, so load swings hit both alike
                    for label, code in codes:
                        runs[label].append(cli(None, *verify, code=code))
                for label, _ in codes:
                    times = [s for s, _ in runs[label]]
                    rate = size / statistics.median(times)
                    spread = (max(times) - min(times)) / statistics.median(times)
                    peak = [r for _, r in runs[label]]
                    rows += [
                        (
                            f"verify-bundle {label}, events/s",
                            f"{rate:,.0f}",
                            f"{rate / (raw * cores):.2f} x raw x cores, spread {spread:.0%}",
                        ),
                        (
                            f"verify-bundle {label}, s",
                            ", ".join(f"{s:.1f}" for s in times),
                            "",
                        ),
                        (
                            f"verify-bundle {label} peak RSS, MiB",
                            ", ".join(f"{r:,.0f}" for r in peak),
                            "target <= 200",
                        ),
                    ]
                rows.append(("load at the end", load(), ""))
                for label, value, ratio in rows:
                    print(f"{backend:<11}{label:<40}{value:>16}{ratio:>34}", flush=True)


def cli_size(directory: Path) -> int:
    from ledger.app import open_app
    from ledger.store import parse_store_url

    config = load_config(directory)
    app = open_app(parse_store_url(config.db, base=directory))
    try:
        return app.store.head().size
    finally:
        app.close()


if __name__ == "__main__":
    main()
