"""What a regulator computes from a bundle alone: its events, their state, its metrics.

The exporter and the verifier call the same functions, so a bundle's stated metrics can be
recomputed exactly from the bundle's own entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from domain.events import DomainEvent
from ledger.bundle import BundleReader, BundleVerification, Entry
from ledger.envelope import Header, parse_header
from ledger.errors import LedgerError, VerificationError
from ledger.mapper import build_event, sealed_as_none
from projections.disclosure import MHSDS, DisclosureProfile, protect_rows
from projections.fold import apply
from projections.metrics import compute_metrics, incident_date
from projections.model import State

METRICS_FORMAT = "calm-ledger-bundle-metrics/v1"


def entry_event(header: Header, data: bytes) -> DomainEvent:
    """The event an entry records, as a reader without data keys sees it."""
    fields: dict[str, Any] = orjson.loads(data)
    return build_event(header, sealed_as_none(fields))


def feeds_metrics(event_type: str) -> bool:
    """Whether events of this type can change a bundle's metrics: `compute_metrics` reads
    the incidents, services and occupancy alone (tests/test_bundles.py checks that folding
    only these gives the metrics the whole fold gives)."""
    return event_type.startswith(("incident.", "service."))


class BundleState:
    """Folds entries (with data) into a State as they stream past.

    `for_metrics`: fold only the events the metrics read; the others only count. A fold of
    10^6 people then holds no view per person (~250 bytes each: most of verify-bundle's
    memory at that size) and decodes none of them (check 12 is about the metrics; like
    `verify`, the other checks do not validate an event's data against its schema)."""

    def __init__(self, *, for_metrics: bool = False) -> None:
        self.state = State()
        self.problems: list[str] = []
        self.for_metrics = for_metrics

    def add(self, header: Header, data: bytes | None) -> None:
        if data is None or (self.for_metrics and not feeds_metrics(header.type)):
            self.state.size += 1
            return
        try:
            apply(self.state, entry_event(header, data), header.actor)
        except (LedgerError, ValueError) as e:
            self.problems.append(f"stream {header.stream} v{header.version}: {e}")

    def add_entry(self, entry: Entry) -> None:
        self.add(parse_header(entry.header), entry.data)

    def add_all(self, events: Iterable[tuple[Header, bytes | None]]) -> State:
        for header, data in events:
            self.add(header, data)
        return self.state


def bundle_metrics(state: State, profile: DisclosureProfile = MHSDS) -> dict[str, Any] | None:
    """Monthly metrics per service and overall, over the months the bundle's incidents span,
    with statistical disclosure control applied. None when the bundle has no incidents."""
    incidents = state.incidents_of()
    if not incidents:
        return None
    days = [incident_date(i) for i in incidents]
    start, end = _month_start(min(days)), _month_end(max(days))
    services: dict[str, Any] = {}
    for service_id in [None, *sorted({i.service_id for i in incidents})]:
        rows = compute_metrics(state, service_id=service_id, start=start, end=end, by="month")
        services[service_id or "all"] = protect_rows(rows, profile)
    return {
        "format": METRICS_FORMAT,
        "by": "month",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "disclosure_control": {
            "suppress_below": profile.suppress_below,
            "round_to": profile.round_to,
            "min_denominator": profile.min_denominator,
            "suppress_zero": profile.suppress_zero,
        },
        "services": services,
    }


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def check_bundle_metrics(path: Path, result: BundleVerification) -> None:
    """Step 12: recompute the metrics from the verified entries; compare with metrics.json."""
    report = result.report
    reader = BundleReader(path)
    try:
        stated = reader.metrics()
    except VerificationError as e:
        report.fail("metrics", "metrics.json", str(e))
        return
    finally:
        reader.close()
    state = BundleState(for_metrics=True)
    state.add_all(result.events)
    for problem in state.problems:
        report.fail("metrics", "entries.jsonl", f"an event does not fit its schema: {problem}")
    recomputed = json.loads(json.dumps(bundle_metrics(state.state), default=str))
    if stated is None and recomputed is None:
        report.notes["metrics"] = "no incidents with data in the bundle"
    elif stated != recomputed:
        report.fail(
            "metrics",
            "metrics.json",
            "stated metrics differ from those recomputed from the bundle's events",
        )
    else:
        report.ok("metrics", len(recomputed["services"]))
