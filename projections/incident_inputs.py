"""Each incident's metric inputs, packed: what a bundle's metrics are recomputed from.

Of an incident, the metrics (`projections.metrics.Tally.add`) read its service, person,
start, end and minutes, how many interventions and injuries it has, whether it is planned
and prone, its prone minutes, and when each timed debrief was first held. A bundle's metrics
fold used to keep a whole `IncidentView` per incident for them (~1.4 KB: most of
verify-bundle's memory for a log of incidents); here they are one fixed-size record of 65
bytes (minutes are worked out from start and end, exactly as the view does), kept in a
temporary file but for the newest (`ledger.spill.SpilledRecords`) and rewritten there when a
later event corrects the incident or adds a debrief. In memory an incident costs its ref
(numbered by `PackedStrings`, ~35 bytes) and 4 bytes a stream to find it by: the stream ids
are numbered by the verifier's own chain check, which the fold shares (`share_streams`).
The records are added up into the same `Tally`s as `compute_metrics` adds up views (the
one sum that depends on their order in the same order).
"""

from __future__ import annotations

import struct
from array import array
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

from domain.vocabulary import DebriefType
from ledger.spill import SpilledRecords
from ledger.stream_state import PackedStrings, StreamNumbers
from projections.facts import TIMED_DEBRIEFS
from projections.metrics import Tally
from projections.model import IncidentView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NOT_HELD = -(2**63)  # no held debrief of that kind (a time no datetime reaches)
_PLANNED, _PRONE = 1, 2  # bits of the flags
_TIMED = len(TIMED_DEBRIEFS)
_NONE = -1  # in _incident_of_stream: a stream that records no incident

# An incident's facts as the metrics read them: start and end (µs since the epoch), prone
# minutes, how many interventions and injuries, and the planned and prone bits.
Facts = tuple[int, int, float, int, int, int]
# A record: service and person (name numbers), the facts, then each timed debrief kind's
# first held time (µs since the epoch, or _NOT_HELD).
_RECORD = struct.Struct(f"<ii qqdiiB {_TIMED}q".replace(" ", ""))
_FACTS = slice(2, 8)  # of a record
_HELD = 8  # where the debriefs start


def _us(at: datetime) -> int:
    """Microseconds since the epoch: exact, and ordered as the (aware) datetimes are."""
    return (at - EPOCH) // _US


def _minutes(start: int, end: int) -> float:
    """`IncidentView.minutes` from start and end in µs: timedelta.total_seconds() divides
    the whole µs by 10^6, once, as here."""
    return (end - start) / 1_000_000 / 60


class IncidentInputs:
    """The metric inputs of every incident, by ref, as a fold of the log leaves them."""

    def __init__(self) -> None:
        self._refs = PackedStrings()  # incident k's ref is _refs[k]
        self._streams: StreamNumbers = PackedStrings()  # or the verifier's: share_streams
        self._incident_of_stream = array("i")  # stream s → incident k, or _NONE
        # Services and people: few, each named by many incidents.
        self._names: dict[str, int] = {}
        self._named: list[str] = []  # name n
        self._records = SpilledRecords(_RECORD)  # incident k's record

    def __len__(self) -> int:
        return len(self._records)

    def share_streams(self, streams: StreamNumbers) -> None:
        """Number streams as `streams` does (the chain check's), not in a table of our own:
        before any incident, and only with numbering that gives every stream the fold asks
        for a number of its own."""
        if len(self._records):
            raise ValueError("stream numbering is chosen before the first incident")
        self._streams = streams

    def stop_finding(self) -> None:
        """No more events come: the figures need no stream, so the stream numbers (the
        chain check's, if shared: ~70 bytes a stream) can go before they are worked out."""
        self._streams = PackedStrings()
        self._incident_of_stream = array("i")

    def record(self, view: IncidentView) -> None:
        """`incident.recorded`: the view the fold makes of it (which, like the fold, replaces
        an incident of the same ref, debriefs and all)."""
        self.record_facts(view.ref, view.stream, view.service_id, view.person_id, facts(view))

    def record_facts(self, ref: str, stream: str, service: str, person: str, of: Facts) -> None:
        """`record`, given the view's identity and `facts(view)`."""
        k = self._refs.add(ref)
        record = (self._number(service), self._number(person), *of, *[_NOT_HELD] * _TIMED)
        if k == len(self._records):
            self._records.append(*record)
        else:
            self._records[k] = record
        s = self._streams.add(stream)
        mapping = self._incident_of_stream
        if s >= len(mapping):
            mapping.extend([_NONE] * (s + 1 - len(mapping)))
        mapping[s] = k

    def find(self, stream: str) -> int | None:
        """The incident a stream records, if its `incident.recorded` was folded."""
        s = self._streams.find(stream)
        if s is None or s >= len(self._incident_of_stream):
            return None
        k = self._incident_of_stream[s]
        return None if k == _NONE else k

    def _number(self, name: str) -> int:
        n = self._names.setdefault(name, len(self._named))
        if n == len(self._named):
            self._named.append(name)
        return n

    def correct(self, k: int, view: IncidentView) -> None:
        """Incident k's facts and coverage are now those of `view` (its debriefs stay)."""
        record = self._records[k]
        self._records[k] = (*record[:2], *facts(view), *record[_HELD:])

    def debrief_held(self, k: int, kind: DebriefType, at: datetime) -> None:
        """A debrief of incident k held at `at` (each timed kind keeps its first)."""
        n = timed_kind(kind)
        if n is not None:
            self.timed_debrief_held(k, n, at)

    def timed_debrief_held(self, k: int, n: int, at: datetime) -> None:
        """A debrief of timed kind n (`timed_kind`) of incident k held at `at`."""
        record = self._records[k]
        held, first = _us(at), record[_HELD + n]
        if first == _NOT_HELD or held < first:
            self._records[k] = (*record[: _HELD + n], held, *record[_HELD + n + 1 :])

    def days(self) -> tuple[date, date] | None:
        """The UTC dates of the first and last incident starts (None without incidents)."""
        starts = [record[2] for record in self._records]
        if not starts:
            return None
        return _day(min(starts)), _day(max(starts))

    def services(self) -> list[str]:
        return sorted({self._named[n] for n in {record[0] for record in self._records}})

    def monthly_tallies(
        self, limits_us: Sequence[int]
    ) -> dict[str | None, list[tuple[date, Tally]]]:
        """Per service, and for all (None), one tally a month, dated its first day: what
        `Tally.add` makes of the views, without sorting every incident.

        Of a tally, only the sum of `prone_minutes` depends on the order the incidents are
        added in (`compute_metrics` adds them in (start, ref) order), and only through its
        non-zero terms: adding 0 or 0.0 to a sum leaves it as it is (no term is -0.0: a
        duration divided is +0.0 at least), and a 0.0 anywhere makes it a float. So zeros
        are added as met, and the non-zero prone minutes afterwards, in (start, ref) order."""
        tallies: dict[tuple[str | None, date], Tally] = {}
        # The incidents with prone minutes (their start, number and minutes), and which of
        # them each tally has: flat, since every incident of a log may be one.
        prone_start, prone_k, prone_of = array("q"), array("q"), array("d")
        prone: dict[tuple[str | None, date], array[int]] = defaultdict(lambda: array("q"))
        names = self._named
        floats: dict[float, float] = {}  # one object per distinct value (none is -0.0)
        for k, record in enumerate(self._records):
            service_n, person_n, start, end, prone_m, interventions, injuries, flags = record[
                :_HELD
            ]
            month = _day(start).replace(day=1)
            service, person = names[service_n], names[person_n]
            minutes = _minutes(start, end)
            minutes = floats.setdefault(minutes, minutes)
            # The view's prone_minutes is a sum over its prone interventions: a float if
            # there is one, else the int 0 (which keeps a period without prone time an int).
            prone_minutes: float = prone_m if flags & _PRONE else 0
            if prone_minutes:
                prone_start.append(start)
                prone_k.append(k)
                prone_of.append(prone_minutes)
            held = record[_HELD:]
            for key in ((None, month), (service, month)):
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = Tally()
                tally.incidents += 1
                tally.services.add(service)
                tally.per_person[person] += interventions
                tally.minutes.append(minutes)
                tally.planned += bool(flags & _PLANNED)
                tally.injuries += injuries
                tally.prone += bool(flags & _PRONE)
                if prone_minutes:
                    prone[key].append(len(prone_k) - 1)
                else:
                    tally.prone_minutes.append(prone_minutes)
                for n, limit in enumerate(limits_us):
                    if held[n] != _NOT_HELD and held[n] - end <= limit:
                        tally.on_time[n] += 1
        for tallied, terms in prone.items():
            ordered = self._by_start_and_ref(terms, prone_start, prone_k)
            tallies[tallied].prone_minutes += [prone_of[j] for j in ordered]
        by_service: dict[str | None, list[tuple[date, Tally]]] = defaultdict(list)
        for (service_key, month), tally in tallies.items():
            by_service[service_key].append((month, tally))
        return by_service

    def _by_start_and_ref(self, terms: array[int], start: array[int], k: array[int]) -> list[int]:
        """The terms in (start, ref) order, as State.incidents_of orders incidents: by
        start (ints, cheap to sort), then each run of equal starts by ref (refs are
        unique, so the order is total)."""
        order = sorted(terms, key=start.__getitem__)
        return _sorted_runs(order, start, lambda j: self._refs[k[j]])


def _sorted_runs(order: list[int], start: array[int], tie_break: Callable[[int], str]) -> list[int]:
    """`order` (sorted by start) with each run of equal starts sorted by `tie_break`."""
    result: list[int] = []
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and start[order[j]] == start[order[i]]:
            j += 1
        result += order[i:j] if j == i + 1 else sorted(order[i:j], key=tie_break)
        i = j
    return result


def facts(view: IncidentView) -> Facts:
    """What the metrics read of an incident's facts and coverage."""
    return (
        _us(view.start),
        _us(view.end),
        view.prone_minutes,
        len(view.interventions),
        len(view.injuries),
        _PLANNED * view.planned | _PRONE * view.prone,
    )


def timed_kind(kind: DebriefType) -> int | None:
    """The position of a debrief kind in TIMED_DEBRIEFS, if it is timed."""
    for n, timed in enumerate(TIMED_DEBRIEFS):
        if kind is timed:  # `is`, as first_debrief_after_end matches kinds
            return n
    return None


def _day(us: int) -> date:
    """`incident_date` of a start given in µs since the epoch: its UTC date."""
    return (EPOCH + timedelta(microseconds=us)).date()
