"""`calm-ledger verify`: every check of `ledger.verify` over a whole store."""

from __future__ import annotations

from ledger import merkle
from ledger.app import LedgerApp, storage_errors
from ledger.verify import EventChecker, Report, check_checkpoints, check_tree


def verify_store(app: LedgerApp, *, origin: str, log_name: str, log_public_key: bytes) -> Report:
    """Verify the store against the trusted origin and log key (from the ledger's config,
    never from the database a DBA could edit)."""
    report = Report()
    store = app.store
    with storage_errors(app.store_url):
        meta = store.meta()
        if meta.get("origin") != origin:
            report.fail("origin", "ledger_meta", f"database origin {meta.get('origin')!r} differs")
        checker = EventChecker(
            report,
            origin=origin,
            log_public_key=log_public_key,
            data_keys=lambda subject: store.data_key(subject, create=False),
        )
        leaf_hashes = _check_leaves(report, store, checker)
        orphans = store.events_without_leaf()
        for stream, version in orphans:
            report.fail("leaves", f"stream {stream} v{version}", "event is not a leaf of the log")
        roots = check_tree(
            report,
            bytes(leaf_hashes),
            store.nodes_in_completion_order(),
            [(h.size, h.border) for h in store.heads()],
        )
        check_checkpoints(
            report,
            store.checkpoints(),
            roots,
            origin=origin,
            log_name=log_name,
            log_public_key=log_public_key,
        )
    if checker.erased:
        report.notes["disclosures"] = f"{len(checker.erased)} erased subject(s) skipped"
    return report


def _check_leaves(report: Report, store: object, checker: EventChecker) -> bytearray:
    leaf_hashes = bytearray()
    expected = 0
    for row in store.iter_leaves():  # type: ignore[attr-defined]
        where = f"leaf {row.leaf_index}"
        if row.leaf_index != expected:
            report.fail("leaves", where, f"leaf index {expected} is missing (gap)")
        expected = row.leaf_index + 1
        if row.event is None:
            report.fail("leaves", where, row.damage or "the event of this leaf is missing")
            leaf_hashes += bytes(32)
            continue
        header = checker.feed(where, row.event.state)
        if header is None:
            leaf_hashes += bytes(32)
            continue
        if (header.stream, header.version) != (
            str(row.event.originator_id),
            row.event.originator_version,
        ):
            report.fail("leaves", where, "header names another stream or version than its row")
        elif row.event.topic != header.type:
            report.fail("leaves", where, f"row type {row.event.topic!r} is not the signed type")
        else:
            report.ok("leaves")
        leaf_hashes += merkle.leaf_hash(header.raw)
    return leaf_hashes
