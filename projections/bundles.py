"""What a regulator computes from a bundle alone: its events, their state, its metrics.

The exporter and the verifier call the same functions, so a bundle's stated metrics can be
recomputed exactly from the bundle's own entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import orjson

from domain.events import DomainEvent
from domain.incidents import Incident
from domain.vocabulary import Reason
from ledger.bundle import NEEDS_EVENT, BundleReader, BundleVerification, Entry
from ledger.envelope import Header, parse_header
from ledger.errors import LedgerError, VerificationError
from ledger.mapper import build_event, sealed_as_none
from ledger.stream_state import StreamNumbers
from projections.disclosure import MHSDS, DisclosureProfile, protect_rows
from projections.fold import apply
from projections.incident_inputs import IncidentInputs, facts, timed_kind
from projections.metrics import (
    DEFAULT_WINDOWS,
    PeriodMetrics,
    compute_metrics,
    incident_date,
    metrics_from_tallies,
)
from projections.model import IncidentView, State

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

    def rows(service_id: str | None) -> list[PeriodMetrics]:
        return compute_metrics(state, service_id=service_id, start=start, end=end, by="month")

    return _metrics_document(start, end, sorted({i.service_id for i in incidents}), rows, profile)


def _metrics_document(
    start: date,
    end: date,
    services: list[str],
    rows: Callable[[str | None], list[PeriodMetrics]],
    profile: DisclosureProfile,
) -> dict[str, Any]:
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
        "services": {s or "all": protect_rows(rows(s), profile) for s in [None, *services]},
    }


# What `prepare_metric_event` makes of an event: a tuple led by one of these.
_PROBLEM, _RECORDED, _CORRECTED, _DEBRIEF = range(4)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def prepare_metric_event(header: Header, data: bytes) -> object:
    """`MetricsFold`'s work on one event that needs no earlier event: decode it and, for an
    incident, run the fold's handler; None if it changes no metric input, NEEDS_EVENT for
    a service event (folded whole, in order). Small values only: verify-bundle's worker
    processes send it back."""
    if not feeds_metrics(header.type):
        return None
    if not header.type.startswith("incident."):
        return NEEDS_EVENT
    try:
        return _incident_change(entry_event(header, data), header)
    except (LedgerError, ValueError) as e:
        return (_PROBLEM, _problem(header, e))


def _problem(header: Header, e: Exception) -> str:
    return f"stream {header.stream} v{header.version}: {e}"


def _incident_change(event: DomainEvent, header: Header) -> object:
    # By type name, as the fold dispatches: the classes of stored events need not be
    # the very classes declared in domain.incidents.
    if event.TYPE == Incident.Recorded.TYPE:
        scratch = State()
        apply(scratch, event, header.actor)
        view = scratch.incidents[cast(Incident.Recorded, event).incident_ref]
        return (_RECORDED, view.ref, view.stream, view.service_id, view.person_id, facts(view))
    stream = str(event.originator_id)
    if event.TYPE == Incident.Corrected.TYPE:
        # A correction replaces every fact and the coverage: applied to a stand-in of the
        # incident, what the metrics read of the result is the correction's alone.
        before = _stand_in(stream)
        scratch = State(incident_streams={stream: before.ref}, incidents={before.ref: before})
        try:
            apply(scratch, event, header.actor)
        except (LedgerError, ValueError) as e:  # reported only if the incident is known
            return (_CORRECTED, stream, None, _problem(header, e))
        return (_CORRECTED, stream, scratch.incidents[before.ref], None)
    if event.TYPE == Incident.DebriefHeld.TYPE:
        held = cast(Incident.DebriefHeld, event)
        n = timed_kind(held.debrief_type)
        return None if n is None else (_DEBRIEF, stream, n, held.held_at)
    return None


def _stand_in(stream: str) -> IncidentView:
    """An incident of this stream with no facts: what a correction is applied to."""
    return IncidentView(
        ref="",
        stream=stream,
        service_id="",
        person_id="",
        place="",
        start=_EPOCH,
        end=_EPOCH,
        reason=next(iter(Reason)),
        interventions=(),
        injuries=(),
        non_staff=(),
        de_escalation=(),
        part_of_care_plan=False,
        authorisation_id=None,
        coverage="",
        recorded_at=_EPOCH,
        recorded_by="",
    )


class MetricsFold:
    """What check 12 and the exporter fold a bundle's entries into for its metrics: the
    services and occupancy as the fold makes them (a few views), and each incident as its
    packed metric inputs (`IncidentInputs`, ~180 bytes) instead of a whole view (~1.4 KB),
    so a bundle of 10^6 incidents fits in memory. Each incident event still goes through the
    fold's own handler (a correction on a stand-in of the incident), so the figures are
    `bundle_metrics`' over the whole fold (tests/test_bundles.py compares them).

    An `ledger.bundle.EventFold`: `prepare_metric_event` does an event's decoding and its
    handler, which need no earlier event, in verify-bundle's worker processes;
    `add_prepared` applies the result to the incident it names, in leaf order."""

    prepare = staticmethod(prepare_metric_event)

    def __init__(self) -> None:
        self.state = State()  # services and occupancy: incidents are kept apart
        self.incidents = IncidentInputs()
        self.problems: list[str] = []

    def __call__(self, header: Header, data: bytes | None) -> None:
        self.add(header, data)

    def share_streams(self, streams: StreamNumbers) -> None:
        self.incidents.share_streams(streams)

    def add(self, header: Header, data: bytes | None) -> None:
        if data is None:
            return
        prepared = prepare_metric_event(header, data)
        if prepared == NEEDS_EVENT:
            self._apply(header, data)
        else:
            self.add_prepared(prepared)

    def add_entry(self, entry: Entry) -> None:
        self.add(parse_header(entry.header), entry.data)

    def _apply(self, header: Header, data: bytes) -> None:
        """A service event, folded into the state whole."""
        try:
            apply(self.state, entry_event(header, data), header.actor)
        except (LedgerError, ValueError) as e:
            self.problems.append(_problem(header, e))

    def add_prepared(self, prepared: object) -> None:
        """Fold what `prepare_metric_event` made of an event, in leaf order."""
        if prepared is None:
            return
        change = cast(tuple[Any, ...], prepared)
        if change[0] == _PROBLEM:
            self.problems.append(change[1])
        elif change[0] == _RECORDED:
            self.incidents.record_facts(*change[1:])
            return
        k = self.incidents.find(change[1])
        if k is None:  # as the fold: an incident never recorded
            return
        if change[0] == _CORRECTED:
            _, _, corrected, problem = change
            if problem is not None:
                self.problems.append(problem)
            else:
                self.incidents.correct(k, corrected)
        elif change[0] == _DEBRIEF:
            self.incidents.timed_debrief_held(k, change[2], change[3])

    # The incident events whose effect on an incident's metric inputs `_incident_change`
    # applies; the others change none of them (a test makes every new incident event type
    # choose).
    APPLIED = frozenset({"incident.recorded", "incident.corrected", "incident.debrief-held"})
    NO_METRIC_INPUTS = frozenset(
        {
            "incident.observation-recorded",
            "incident.seclusion-reviewed",
            "incident.notification-sent",
            "incident.notification-withheld",
            "incident.debrief-declined",
            "incident.signed-off",
        }
    )

    def metrics(self, profile: DisclosureProfile = MHSDS) -> dict[str, Any] | None:
        """`bundle_metrics` of the whole fold, from the packed inputs."""
        span = self.incidents.days()
        if span is None:
            return None
        start, end = _month_start(span[0]), _month_end(span[1])
        tallies = self.incidents.monthly_tallies(DEFAULT_WINDOWS.limits_us())
        occupancy = list(self.state.occupancy.values())

        def rows(service_id: str | None) -> list[PeriodMetrics]:
            return metrics_from_tallies(
                tallies[service_id],
                occupancy,
                service_id=service_id,
                start=start,
                end=end,
                by="month",
            )

        return _metrics_document(start, end, self.incidents.services(), rows, profile)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def check_bundle_metrics(
    path: Path, result: BundleVerification, fold: MetricsFold | None = None
) -> None:
    """Step 12: recompute the metrics from the verified entries; compare with metrics.json.
    `fold`: the entries already folded as they were verified (`verify_bundle`'s `on_event`),
    else they are read again from the bundle."""
    report = result.report
    reader = BundleReader(path)
    try:
        if result.manifest is not None and reader.manifest_bytes != result.manifest.encode():
            raise VerificationError("manifest.json changed since it was verified")
        stated = reader.metrics()
    except VerificationError as e:
        report.fail("metrics", "metrics.json", str(e))
        return
    finally:
        reader.close()
    if fold is None:
        fold = MetricsFold()
        for header, data in result.events:
            fold.add(header, data)
    for problem in fold.problems:
        report.fail("metrics", "entries.jsonl", f"an event does not fit its schema: {problem}")
    fold.incidents.stop_finding()  # every entry is folded
    recomputed = json.loads(json.dumps(fold.metrics(), default=str))
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
