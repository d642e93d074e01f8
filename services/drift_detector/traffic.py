"""Traffic heartbeats: the events of each model version the merger took in, per interval of
wall-clock time, as ``TrafficReport`` records beside the window reports. No Kafka here.

Alerting tells a silent model from a quiet one on them, so they run on the merger's clock, not
on event time: a backlog counts when it is read, and a version with no event in an interval has
no report for it (silence is for a clock to notice, not for a report to say). The events the
profilers dead-lettered are counted apart (``dead_lettered``), and are events too: a version
whose every event was dead-lettered has its reports, for its dead-letter rate to page.

The counts live in memory only (a heartbeat is cheap to lose, a state record per flush is not):
a restarted merger starts a new interval, and what it had absorbed but not reported yet is not
reported. A model version handed to another worker by a rebalance is reported by both for that
interval, each with the events it took in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drift_detector.partials import MICROS
from drift_detector.versions import Key
from vigil.wire.records import TrafficReport

__all__ = ["Tally", "TrafficCounts"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)  # exact, unlike a float timestamp


@dataclass
class Tally:
    """One model version's events: profiled, the newest event time among those (micros), and
    dead-lettered."""

    events: int = 0
    newest: int | None = None
    dead_lettered: int = 0

    @property
    def received(self) -> int:
        return self.events + self.dead_lettered

    def add(self, events: int, newest: int | None, dead_lettered: int = 0) -> None:
        self.events += events
        self.dead_lettered += dead_lettered
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest

    def add_tally(self, other: Tally) -> None:
        self.add(other.events, other.newest, other.dead_lettered)


def _merged(*parts: dict[Key, Tally]) -> dict[Key, Tally]:
    out: dict[Key, Tally] = {}
    for part in parts:
        for key, tally in part.items():
            out.setdefault(key, Tally()).add_tally(tally)
    return out


class TrafficCounts:
    """Events per model version over the current interval; its reports once it is over.

    The counts follow the stage's transactions, so that a flush that fails (and has its input
    read again) counts nothing twice: ``pending`` holds what was absorbed since the last flush,
    ``flushing`` what the flush being committed took, ``counted`` what is committed and not
    reported yet. The interval is reset in ``committed``, when the reports are durable, not
    when they are built: a failed flush leaves it as it was, to be reported by the next one.
    """

    def __init__(self, seconds: float, now: float, wall: float) -> None:
        if seconds <= 0:
            raise ValueError(f"a traffic interval of {seconds} s: expected more than 0")
        self.seconds = seconds
        self.since = now  # when the interval began, on the stage's (monotonic) clock
        self.start = int(wall * MICROS)  # and on the wall clock, which the reports carry
        self.counted: dict[Key, Tally] = {}
        self.pending: dict[Key, Tally] = {}
        self.flushing: dict[Key, Tally] = {}
        self.closing: tuple[float, int, int] | None = None  # since, start, reports if committed
        self.published = 0

    def count(self, key: Key, events: int, newest: int | None, dead_lettered: int = 0) -> None:
        """Count a merged partial's events (the hot path: additions and a comparison)."""
        tally = self.pending.get(key)
        if tally is None:
            tally = self.pending[key] = Tally()
        tally.add(events, newest, dead_lettered)

    def discard(self, key: Key) -> None:
        """Forget ``key``'s events since the last flush (its partials are dead-lettered)."""
        self.pending.pop(key, None)

    def drop(self, key: Key) -> None:
        """Forget ``key`` altogether (retired or removed: no heartbeat is expected of it)."""
        for counts in (self.counted, self.pending, self.flushing):
            counts.pop(key, None)

    def reports(
        self, now: float, wall: float, created: datetime, live: Callable[[Key], bool]
    ) -> list[TrafficReport]:
        """For the flush being made: the interval's reports if it is over (``now``: the stage's
        clock, ``wall``: the wall clock), one per ``live`` version with events in it, profiled
        or dead-lettered."""
        self.flushing, self.pending = self.pending, {}
        self.closing = None
        if now - self.since < self.seconds:
            return []
        end = max(int(wall * MICROS), self.start)  # a wall clock set back: an empty interval
        totals = _merged(self.counted, self.flushing)
        reports = [
            self._report(key, tally, end, created)
            for key, tally in totals.items()
            if tally.received > 0 and live(key)
        ]
        if reports:
            self.closing = (now, end, len(reports))
        else:  # nothing to report, and nothing to lose by starting the next interval now
            self.counted, self.flushing = {}, {}
            self.since, self.start = now, end
        return reports

    def _report(self, key: Key, tally: Tally, end: int, created: datetime) -> TrafficReport:
        return TrafficReport(
            report_id=f"{key[0]}/{key[1]}/traffic/{self.start}",
            model_id=key[0],
            model_version=key[1],
            window_start=_datetime(self.start),
            window_end=_datetime(end),
            event_count=tally.events,
            dead_lettered=tally.dead_lettered,
            last_event_time=None if tally.newest is None else _datetime(tally.newest),
            created_at=created,
        )

    def committed(self) -> int:
        """The flush is durable: its reports end the interval; the number of them."""
        if self.closing is None:
            for key, tally in self.flushing.items():
                self.counted.setdefault(key, Tally()).add_tally(tally)
            sent = 0
        else:
            self.since, self.start, sent = self.closing
            self.counted = {}
        self.flushing, self.closing = {}, None
        self.published += sent
        return sent

    def rolled_back(self) -> None:
        """What was not committed is read again: forget its counts (the committed ones stay,
        for the next report, whether or not this worker still owns their versions)."""
        self.pending, self.flushing, self.closing = {}, {}, None
