"""The Merkle log at scale: build a real ledger of N events, then time what the tree costs.

For each store it builds N `person.registered` events through the real write path
(`LedgerService.save_batch`, --batch aggregates per transaction) and reports, side by side:

- build rate (events/s, first and last tenth) and database size, split into events and tree;
- inclusion and consistency proofs read from the store (`merkle.inclusion_proof(i, size,
  app.store)`), p50/p99 over --proofs random proofs, each checked against the root (the
  check is not timed; a leaf's hash is recomputed from its event, not read from the tree);
- tree recomputation (`verify.check_tree` against the stored nodes), leaves/s,
  against folding the same leaves in memory (`merkle.append_leaves`, no store);
- full `verify_store`, events/s, against the raw Ed25519 verify rate: from a new process
  (as `calm-ledger verify` runs; skipped above --fresh-verify-max) and from the process that
  built the log, whose subject-key cache already holds every key;
- appends at size N from a new process, alternating with and without the tree on the same
  database, 1 and 100 events per transaction (last: it leaves events off the tree); and 1/tx
  from the process that built the log.

Run: python -m bench.bench_tree [--leaves 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench.bench_append import (
    BATCH,
    ORIGIN,
    new_ledger,
    raw_verify_rate,
    save_people,
    store,
    tree_switched_off,
)
from ledger import keys, merkle
from ledger.app import LedgerApp, open_app
from ledger.envelope import decode_envelope
from ledger.service import LedgerService
from ledger.store import parse_store_url
from ledger.store.base import LedgerTables
from ledger.verify import Report, check_tree
from ledger.verify_store import verify_store

TREE_TABLES = ("merkle_tree",)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(service: LedgerService, n: int, batch: int, first: int = 0) -> list[float]:
    """Append persons first..first+n-1, `batch` per transaction; seconds per tenth of n."""
    tenths: list[float] = []
    tenth = max(1, n // 10)
    start = mark = time.perf_counter()
    for lo in range(first, first + n, batch):
        save_people(service, lo, min(first + n, lo + batch))
        done = min(first + n, lo + batch) - first
        if done // tenth > len(tenths) or done == n:
            now = time.perf_counter()
            tenths.append(now - mark)
            mark = now
            log(f"  built {done:>9} events, {done / (now - start):,.0f}/s")
    return tenths


def database_size(url: str, tables: LedgerTables) -> dict[str, int]:
    """Bytes on disk by table (with its indexes and TOAST), and the total.

    SQLite: the WAL is checkpointed into the file first, so the total is the file alone."""
    parsed = parse_store_url(url)
    if parsed.sqlite_path is not None:
        with sqlite3.connect(parsed.sqlite_path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rows = conn.execute(
                "SELECT s.tbl_name, SUM(d.pgsize) FROM dbstat d"
                " JOIN sqlite_schema s ON s.name = d.name GROUP BY s.tbl_name"
            ).fetchall()
        sizes = {name: int(size) for name, size in rows}
        sizes["total"] = parsed.sqlite_path.stat().st_size
        return sizes
    with tables.transaction(commit=False) as c:
        c.execute(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS size FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'r'",
            (parsed.pg_schema,),
        )
        sizes = {r["name"]: int(r["size"]) for r in c.fetchall()}
    sizes["total"] = sum(sizes.values())
    return sizes


def stored_leaf_hash(tables: LedgerTables, index: int) -> bytes:
    """The leaf hash recomputed from the event at leaf `index` (not read from the tree)."""
    row = next(tables.iter_leaves(index, index + 1))
    if row.event is None:
        raise SystemExit(f"leaf {index} has no event")
    return merkle.leaf_hash(decode_envelope(row.event.state).header_bytes)


def time_proofs(
    tables: LedgerTables, size: int, count: int, rng: random.Random
) -> tuple[list[float], list[float], float]:
    """Seconds per inclusion and per consistency proof (to the head), and mean path length."""
    head = tables.head()
    root = merkle.root_from_border(head.size, head.border)
    inclusion, consistency, path = [], [], 0
    for i in range(count + 10):  # the first 10 of each warm the connection and are dropped
        index = rng.randrange(size)
        start = time.perf_counter()
        proof = merkle.inclusion_proof(index, size, tables)
        elapsed = time.perf_counter() - start
        merkle.check_inclusion(proof.hashes, index, size, stored_leaf_hash(tables, index), root)
        if i >= 10:
            inclusion.append(elapsed)
            path += len(proof.hashes)
        old = rng.randrange(1, size)
        start = time.perf_counter()
        cproof = merkle.consistency_proof(old, size, tables)
        elapsed = time.perf_counter() - start
        old_root = merkle.tree_hash(old, tables)
        merkle.check_consistency(cproof.hashes, old, size, old_root, root)
        if i >= 10:
            consistency.append(elapsed)
    return inclusion, consistency, path / count


def time_tree(tables: LedgerTables) -> dict[str, float]:
    """check_tree over the stored nodes, and the parts of its cost."""
    query = tables.sql(
        "SELECT hash FROM {merkle_tree} WHERE notification_id IS NOT NULL ORDER BY node"
    )
    joined = bytearray()
    for row in tables.stream_rows(query):
        joined += bytes(row["hash"])
    leaves = bytes(joined)
    n = len(leaves) // merkle.HASH_SIZE

    start = time.perf_counter()
    stored = sum(1 for _ in tables.nodes_in_completion_order())
    read = time.perf_counter() - start

    start = time.perf_counter()
    merkle.append_leaves(0, [], [leaves[i * 32 : (i + 1) * 32] for i in range(n)])
    fold = time.perf_counter() - start

    report = Report()
    start = time.perf_counter()
    check_tree(report, leaves, tables.nodes_in_completion_order())
    check = time.perf_counter() - start
    if not report.verified:
        raise SystemExit(f"stored tree does not verify: {report.failures[:3]}")
    return {"leaves": n, "nodes": stored, "read": read, "fold": fold, "check": check}


def time_verify(app: LedgerApp, log_public_key: bytes) -> tuple[float, float]:
    """Events/s of a full verify_store (all ten checks), and the raw Ed25519 verify rate
    measured just before it (so both see the same machine load)."""
    raw = raw_verify_rate()
    start = time.perf_counter()
    report = verify_store(app, origin=ORIGIN, log_name=ORIGIN, log_public_key=log_public_key)
    elapsed = time.perf_counter() - start
    if not report.verified:
        raise SystemExit(f"bench ledger did not verify: {report.failures[:3]}")
    return report.passed["signatures"] / elapsed, raw


def reopen(url: str, service: LedgerService) -> tuple[LedgerApp, LedgerService]:
    """The same ledger as a new process (a CLI command) sees it: nothing cached."""
    app = open_app(parse_store_url(url))
    return app, LedgerService(app, service.signer, service.log_public_key)


def time_appends(service: LedgerService, first: int, rounds: int = 5) -> dict[str, float]:
    """Events/s with and without the tree at the current size, alternating so that load
    and growth hit both alike, 1/tx (100 events a round) and 100/tx (500 a round)."""
    result = {}
    for per_tx, events in ((1, 100), (BATCH, 5 * BATCH)):
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for tree in (True, False):
                start = time.perf_counter()
                with nullcontext() if tree else tree_switched_off(service.app.store):
                    append(service, events, per_tx, first)
                runs[tree].append(time.perf_counter() - start)
                first += events
        result[f"{per_tx}/tx"] = events / statistics.median(runs[True])
        result[f"{per_tx}/tx without tree"] = events / statistics.median(runs[False])
    return result


def append(service: LedgerService, n: int, batch: int, first: int) -> None:
    for lo in range(first, first + n, batch):
        save_people(service, lo, min(first + n, lo + batch))


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_backend(backend: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    out: dict[str, Any] = {"backend": backend}
    with store(backend, root, "tree") as url:
        app, service = new_ledger(url, root)
        try:
            log(f"{backend}: building {args.leaves} events, {args.batch} per transaction")
            tenths = build(service, args.leaves, args.batch)
            size = app.store.head().size
            per_tenth = args.leaves / len(tenths)
            out |= {
                "size": size,
                "build_rate": args.leaves / sum(tenths),
                "build_first": per_tenth / tenths[0],
                "build_last": per_tenth / tenths[-1],
                "db": database_size(url, app.store),
            }
            log(f"{backend}: {args.proofs} inclusion and consistency proofs")
            out["inclusion"], out["consistency"], out["path"] = time_proofs(
                app.store, size, args.proofs, rng
            )
            log(f"{backend}: tree recomputation")
            out["tree"] = time_tree(app.store)
            if size <= args.fresh_verify_max:
                log(f"{backend}: verify_store in a new process")
                fresh, _ = reopen(url, service)
                out["verify new process"] = time_verify(fresh, service.log_public_key)
                fresh.close()
            log(f"{backend}: verify_store with the subject keys cached")
            out["verify keys cached"] = time_verify(app, service.log_public_key)
            log(f"{backend}: appends at size {size}, with and without the tree")
            fresh, fresh_service = reopen(url, service)
            out["appends"] = time_appends(fresh_service, first=args.leaves)
            fresh.close()
            start = time.perf_counter()
            append(service, 100, 1, first=args.leaves + 10_000)
            out["appends"]["1/tx, process that built"] = 100 / (time.perf_counter() - start)
        finally:
            app.close()
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    ms = 1000.0
    print(f"\nMerkle log at {args.leaves:,} events ({args.batch}/tx build), {args.proofs} proofs")
    for r in results:
        b, db = r["backend"], r["db"]
        tree_bytes = sum(db.get(t, 0) for t in TREE_TABLES)
        events_bytes = db["total"] - tree_bytes
        lines: list[tuple[str, str, str]] = [
            (
                "build",
                f"{r['build_rate']:,.0f} events/s",
                f"first tenth {r['build_first']:,.0f}/s, last {r['build_last']:,.0f}/s",
            ),
            (
                "database size",
                f"{db['total'] / 2**20:,.1f} MiB",
                f"{db['total'] / r['size']:,.0f} B/event; tree {tree_bytes / 2**20:,.1f} MiB"
                f" = {tree_bytes / max(events_bytes, 1):.2f}x the rest",
            ),
        ]
        for name, key in (("inclusion proof", "inclusion"), ("consistency proof", "consistency")):
            t = r[key]
            lines.append(
                (
                    name,
                    f"p50 {percentile(t, 50) * ms:.2f} ms",
                    f"p99 {percentile(t, 99) * ms:.2f} ms, mean {statistics.mean(t) * ms:.2f} ms"
                    + (f", {r['path']:.1f} hashes" if key == "inclusion" else ""),
                )
            )
        tree = r["tree"]
        n = tree["leaves"]
        lines += [
            (
                "tree: in-memory fold",
                f"{n / tree['fold']:,.0f} leaves/s",
                "baseline (merkle.append_leaves, no store)",
            ),
            (
                "tree: check_tree",
                f"{n / tree['check']:,.0f} leaves/s",
                f"{tree['fold'] / tree['check']:.2f}x the fold; reading the"
                f" {tree['nodes']:,} stored nodes alone {tree['read']:.1f} s",
            ),
        ]
        for key in ("verify new process", "verify keys cached"):
            if key in r:
                rate, raw = r[key]
                lines.append(
                    (
                        f"verify_store, {key.removeprefix('verify ')}",
                        f"{rate:,.0f} events/s",
                        f"{rate / raw:.2f}x raw Ed25519 verify ({raw:,.0f}/s just before)",
                    )
                )
        ap = r["appends"]
        for per_tx in ("1/tx", f"{BATCH}/tx"):
            with_tree, without = ap[per_tx], ap[f"{per_tx} without tree"]
            lines.append(
                (
                    f"append {per_tx}, new process",
                    f"{with_tree:,.0f} events/s",
                    f"without tree {without:,.0f}/s: tree overhead"
                    f" {(without / with_tree - 1) * 100:+.0f}%",
                )
            )
        long_lived = ap["1/tx, process that built"]
        lines.append(
            (
                "append 1/tx, same process",
                f"{long_lived:,.0f} events/s",
                f"{long_lived / ap['1/tx']:.2f}x a new process (its caches hold every subject)",
            )
        )
        print(f"\n{b}: {r['size']:,} leaves")
        for name, value, detail in lines:
            print(f"  {name:<26}{value:>20}  {detail}")
    print(f"\nEd25519 backend: {keys.ED25519_BACKEND}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=100_000, help="events to build")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=1000, help="aggregates per transaction")
    parser.add_argument("--proofs", type=int, default=300, help="proofs of each kind")
    parser.add_argument("--seed", type=int, default=1, help="for the random proof targets")
    parser.add_argument(
        "--fresh-verify-max",
        type=int,
        default=200_000,
        help="largest log to verify from a new process (its cost grows with the square of"
        " the number of subjects)",
    )
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            results.append(bench_backend(backend, args, Path(tmp)))
    report(results, args)


if __name__ == "__main__":
    main()
