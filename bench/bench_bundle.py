"""Export and offline verification of a bundle, against the raw Ed25519 verify rate.

Builds a ledger of N incidents, signs a checkpoint, exports a bundle at the data level, and
runs `calm-ledger verify-bundle` in a fresh process (through /usr/bin/time, so its peak memory
is its own: see `bench_verify.child`), reporting events/s, the ratio to the raw libsodium
verify rate times cores, and peak RSS. `python -m bench verify` measures verify and
verify-bundle side by side on `person.registered` logs; this one on incidents.

With --before DIR (a copy of the code before a change) verify-bundle runs with both codes,
alternating, --repeat times each; --keep DIR builds the SQLite ledger and its bundle into DIR
once and reuses them (the build of 10^6 incidents takes many minutes). --copies K verifies,
instead of the exported bundle, one of K times its incidents: each copied under a new stream
and ref, re-signed by the same signer, the tree, checkpoint, metrics and manifest made anew
(`widen`: minutes for 10^6 incidents from a kept ledger of 10^5, against ~35 for a build).

Run: python -m bench bundle [--incidents 100000] [--backends sqlite,postgresql]
     [--before DIR] [--repeat 1] [--keep DIR] [--copies 1]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import statistics
import tempfile
import uuid
import zipfile
from pathlib import Path

import orjson

from bench.bench_append import raw_verify_rate
from bench.bench_projections import build
from bench.bench_verify import (  # same passphrase as bench_projections': "bench"
    PASSPHRASE,
    child,
    ledger_store,
    load,
)
from ledger import note
from ledger.bundle import (
    MANIFEST_SIGNATURE_CONTEXT,
    BundleReader,
    Disclosure,
    Entry,
    Manifest,
    append_leaf_hash,
)
from ledger.canonical import canonical_bytes
from ledger.config import load_config
from ledger.envelope import signing_input
from ledger.keys import read_keystore
from ledger.merkle import root_from_border
from projections.bundles import MetricsFold


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
    parser.add_argument("--copies", type=int, default=1, help="verify K times the incidents")
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
                if args.copies > 1:
                    wide = tmp / f"{backend}-{args.incidents}x{args.copies}.bundle"
                    if not wide.exists():
                        widen(directory, bundle, wide, args.copies)
                    bundle = wide
                    reader = BundleReader(bundle)
                    size = reader.manifest.size
                    reader.close()
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


def widen(directory: Path, bundle: Path, out: Path, copies: int) -> None:
    """A bundle of `copies` times the incidents of `bundle` (a bench bundle from leaf 0, at
    the data level): the entries before the first incident as they are, then each incident
    `copies` times, under a new stream id and ref, signed again by its signer; the tree,
    checkpoint, metrics and manifest made as an export makes them."""
    config = load_config(directory)
    lee = read_keystore(directory / "keys" / "lee.key", PASSPHRASE)
    log = read_keystore(directory / "keys" / "log.key", PASSPHRASE)
    reader = BundleReader(bundle)
    entries = list(reader.entries())
    reader.close()
    fold, border = MetricsFold(), list[bytes]()
    counts = {"context": 0, "disclosures": 0, "entries": 0, "with_data": 0}
    with tempfile.TemporaryFile() as lines:

        def add(entry: Entry) -> None:
            lines.write(entry.encode())
            fold.add_entry(entry)
            leaf = hashlib.sha256(b"\x00" + entry.header).digest()
            append_leaf_hash(border, counts["entries"], leaf)
            counts["entries"] += 1
            counts["with_data"] += entry.data is not None

        for entry in entries:
            if orjson.loads(entry.header)["type"] != "incident.recorded":
                add(Entry(counts["entries"], entry.header, entry.signature, entry.data))
        for copy in range(copies):
            for entry in entries:
                header = orjson.loads(entry.header)
                if header["type"] != "incident.recorded" or entry.data is None:
                    continue
                data = orjson.loads(entry.data)
                data["incident_ref"] = f"{data['incident_ref']}-{copy}"
                data_bytes = canonical_bytes(data)
                header["stream"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{header['stream']}/{copy}"))
                header["data_digest"] = hashlib.sha256(data_bytes).hexdigest()
                raw = canonical_bytes(header)
                signature = lee.sign(signing_input(raw))
                add(Entry(counts["entries"], raw, signature, data_bytes))
        size = counts["entries"]
        root = root_from_border(size, border)
        checkpoint = note.sign_note_with(
            note.format_checkpoint(note.Checkpoint(config.origin, size, root)),
            config.origin,
            log.public_key,
            log.sign,
        )
        figures = orjson.dumps(fold.metrics(), option=orjson.OPT_SORT_KEYS)
        manifest = Manifest(
            origin=config.origin,
            first=0,
            size=size,
            scope=(),
            disclosure=Disclosure.DATA,
            recipient="bench",
            created_at="2026-11-27T00:00:00.000000Z",
            previous_size=None,
            counts=counts,
            metrics_sha256=hashlib.sha256(figures).hexdigest(),
        ).encode()
        signature = base64.b64encode(log.sign(MANIFEST_SIGNATURE_CONTEXT + manifest)) + b"\n"
        partial = out.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with zipfile.ZipFile(partial, "x", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("checkpoint.txt", checkpoint)
            with z.open("entries.jsonl", "w", force_zip64=True) as member:
                lines.seek(0)
                while block := lines.read(1 << 20):
                    member.write(block)
            z.writestr("metrics.json", figures)
            z.writestr("manifest.json", manifest)
            z.writestr("manifest.sig", signature)
    partial.rename(out)


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
