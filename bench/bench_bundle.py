"""Export and offline verification of a bundle, against the raw Ed25519 verify rate.

Builds a ledger of N incidents, signs a checkpoint, exports a bundle at the data level, and
runs `calm-ledger verify-bundle` in a fresh process (through /usr/bin/time, so its peak memory
is its own: see `bench_verify.child`), reporting events/s, the ratio to the raw libsodium
verify rate times cores, and peak RSS. `python -m bench verify` measures verify and
verify-bundle side by side on `person.registered` logs; this one on incidents.

Run: python -m bench bundle [--incidents 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench.bench_append import raw_verify_rate, store
from bench.bench_projections import build
from bench.bench_verify import child  # same passphrase as bench_projections': "bench"
from ledger import note
from ledger.config import load_config


def cli(directory: Path | None, *args: str) -> tuple[float, float]:
    """Run a command in a fresh process; return (seconds, its own peak RSS in MiB)."""
    prefix = ["--dir", str(directory)] if directory else []
    return child([*prefix, *args], None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    raw = raw_verify_rate()
    cores = os.cpu_count() or 1
    print(
        f"raw Ed25519 verify: {raw:,.0f}/s on one core; target 0.8 x {cores} cores ="
        f" {0.8 * raw * cores:,.0f}/s"
    )
    print(f"{'store':<11}{'measure':<40}{'value':>16}{'ratio':>34}")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            with store(backend, Path(tmp), "bundle") as url:
                directory = Path(tmp) / backend
                build(directory, url, args.incidents)
                cli(directory, "checkpoint")
                bundle = Path(tmp) / f"{backend}.bundle"
                seconds, _ = cli(directory, "export", "--out", str(bundle))
                config = load_config(directory)
                vkey = note.format_verifier_key(config.origin, config.log_public_key)
                size = int(cli_size(directory))
                verify_s, rss = cli(None, "verify-bundle", str(bundle), "--trusted-key", vkey)
                rate = size / verify_s
                rows = [
                    ("events", f"{size:,}", ""),
                    ("export, events/s", f"{size / seconds:,.0f}", ""),
                    ("bundle size, MiB", f"{bundle.stat().st_size / 2**20:,.1f}", ""),
                    (
                        "verify-bundle, events/s",
                        f"{rate:,.0f}",
                        f"{rate / (raw * cores):.2f} x raw verify x cores",
                    ),
                    ("verify-bundle peak RSS, MiB", f"{rss:,.0f}", "target <= 200"),
                ]
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
