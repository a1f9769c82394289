"""Each incident's metric inputs, packed: what a bundle's metrics are recomputed from.

Of an incident, the metrics (`projections.metrics.Tally.add`) read its service, person,
start, end and minutes, how many interventions and injuries it has, whether it is planned
and prone, its prone minutes, and when each timed debrief was first held. A bundle's metrics
fold used to keep a whole `IncidentView` per incident for them (~1.4 KB: most of
verify-bundle's memory for a log of incidents); here they are one fixed-size record in flat
arrays, ~180 bytes with the ref, the stream id and their tables (tracemalloc, 10^5
incidents), rewritten in place when a later event corrects the incident or adds a debrief.
The records are added up into the same `Tally`s as `compute_metrics` adds up views (the
one sum that depends on their order in the same order).
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from domain.vocabulary import DebriefType
from ledger.stream_state import PackedStrings
from projections.facts import TIMED_DEBRIEFS
from projections.metrics import Tally
from projections.model import IncidentView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NOT_HELD = -(2**63)  # no held debrief of that kind (a time no datetime reaches)
_PLANNED, _PRONE = 1, 2  # bits of _flags
_TIMED = len(TIMED_DEBRIEFS)

# An incident's facts as the metrics read them: start and end (µs since the epoch), minutes,
# prone minutes, how many interventions and injuries, and the planned and prone bits.
Facts = tuple[int, int, float, float, int, int, int]


def _us(at: datetime) -> int:
    """Microseconds since the epoch: exact, and ordered as the (aware) datetimes are."""
    return (at - EPOCH) // _US


class IncidentInputs:
    """The metric inputs of every incident, by ref, as a fold of the log leaves them."""

    def __init__(self) -> None:
        self._refs = PackedStrings()  # incident k's ref is _refs[k]
        self._streams = PackedStrings()
        self._incident_of_stream = array("q")  # stream s → incident k
        # Services and people: few, each named by many incidents.
        self._names: dict[str, int] = {}
        self._named: list[str] = []  # name n
        self._service = array("i")  # name numbers
        self._person = array("i")
        self._start = array("q")  # µs since the epoch
        self._end = array("q")
        self._minutes = array("d")
        self._prone_minutes = array("d")
        self._interventions = array("i")  # how many
        self._injuries = array("i")
        self._flags = bytearray()
        self._debriefs = array("q")  # _TIMED a record: each kind's first held, µs, or _NOT_HELD

    def __len__(self) -> int:
        return len(self._start)

    def record(self, view: IncidentView) -> None:
        """`incident.recorded`: the view the fold makes of it (which, like the fold, replaces
        an incident of the same ref, debriefs and all)."""
        self.record_facts(view.ref, view.stream, view.service_id, view.person_id, facts(view))

    def record_facts(self, ref: str, stream: str, service: str, person: str, of: Facts) -> None:
        """`record`, given the view's identity and `facts(view)`."""
        k = self._refs.add(ref)
        if k == len(self._start):
            for column in (self._service, self._person, self._start, self._end):
                column.append(0)
            for floats in (self._minutes, self._prone_minutes):
                floats.append(0.0)
            self._interventions.append(0)
            self._injuries.append(0)
            self._flags.append(0)
            self._debriefs.extend([_NOT_HELD] * _TIMED)
        else:
            self._debriefs[_TIMED * k : _TIMED * k + _TIMED] = array("q", [_NOT_HELD] * _TIMED)
        s = self._streams.add(stream)
        if s == len(self._incident_of_stream):
            self._incident_of_stream.append(k)
        else:
            self._incident_of_stream[s] = k
        self._service[k] = self._number(service)
        self._person[k] = self._number(person)
        self.correct_facts(k, of)

    def find(self, stream: str) -> int | None:
        """The incident a stream records, if its `incident.recorded` was folded."""
        s = self._streams.find(stream)
        return None if s is None else self._incident_of_stream[s]

    def _number(self, name: str) -> int:
        n = self._names.setdefault(name, len(self._named))
        if n == len(self._named):
            self._named.append(name)
        return n

    def correct(self, k: int, view: IncidentView) -> None:
        """Incident k's facts and coverage are now those of `view` (its debriefs stay)."""
        self.correct_facts(k, facts(view))

    def correct_facts(self, k: int, of: Facts) -> None:
        (
            self._start[k],
            self._end[k],
            self._minutes[k],
            self._prone_minutes[k],  # 0 unless prone: see tallies()
            self._interventions[k],
            self._injuries[k],
            self._flags[k],
        ) = of

    def debrief_held(self, k: int, kind: DebriefType, at: datetime) -> None:
        """A debrief of incident k held at `at` (each timed kind keeps its first)."""
        n = timed_kind(kind)
        if n is not None:
            self.timed_debrief_held(k, n, at)

    def timed_debrief_held(self, k: int, n: int, at: datetime) -> None:
        """A debrief of timed kind n (`timed_kind`) of incident k held at `at`."""
        at_n = _TIMED * k + n
        held = _us(at)
        if self._debriefs[at_n] == _NOT_HELD or held < self._debriefs[at_n]:
            self._debriefs[at_n] = held

    def days(self) -> tuple[date, date] | None:
        """The UTC dates of the first and last incident starts (None without incidents)."""
        if not self._start:
            return None
        return _day(min(self._start)), _day(max(self._start))

    def services(self) -> list[str]:
        return sorted({self._named[s] for s in set(self._service)})

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
        prone: dict[tuple[str | None, date], list[int]] = defaultdict(list)
        names = self._named
        floats: dict[float, float] = {}  # one object per distinct value (none is -0.0)
        for k in range(len(self._start)):
            end = self._end[k]
            month = _day(self._start[k]).replace(day=1)
            service, person = names[self._service[k]], names[self._person[k]]
            flags = self._flags[k]
            minutes = self._minutes[k]
            minutes = floats.setdefault(minutes, minutes)
            # The view's prone_minutes is a sum over its prone interventions: a float if
            # there is one, else the int 0 (which keeps a period without prone time an int).
            prone_minutes: float = self._prone_minutes[k] if flags & _PRONE else 0
            held = self._debriefs[_TIMED * k : _TIMED * k + _TIMED]
            for key in ((None, month), (service, month)):
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = Tally()
                tally.incidents += 1
                tally.services.add(service)
                tally.per_person[person] += self._interventions[k]
                tally.minutes.append(minutes)
                tally.planned += bool(flags & _PLANNED)
                tally.injuries += self._injuries[k]
                tally.prone += bool(flags & _PRONE)
                if prone_minutes:
                    prone[key].append(k)
                else:
                    tally.prone_minutes.append(prone_minutes)
                for n, limit in enumerate(limits_us):
                    if held[n] != _NOT_HELD and held[n] - end <= limit:
                        tally.on_time[n] += 1
        for tallied, ks in prone.items():
            ks.sort(key=lambda k: (self._start[k], self._refs[k]))  # as State.incidents_of
            tallies[tallied].prone_minutes += [self._prone_minutes[k] for k in ks]
        by_service: dict[str | None, list[tuple[date, Tally]]] = defaultdict(list)
        for (service_key, month), tally in tallies.items():
            by_service[service_key].append((month, tally))
        return by_service


def facts(view: IncidentView) -> Facts:
    """What the metrics read of an incident's facts and coverage."""
    return (
        _us(view.start),
        _us(view.end),
        view.minutes,
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
