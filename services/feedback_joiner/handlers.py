"""The join: predictions and feedback (co-partitioned by prediction id) into ``Outcome``s.

Per prediction id the joiner keeps a ``JoinEntry``: the prediction once it has come, the
newest label (feedback with an ``actual``) and flags that came before it. What each flush
changed goes, in one transaction with the outcomes and the consumed offsets, to the compacted
changelog (partition = the prediction's); the local store takes it once that is committed.

- A label for a prediction already here is joined at once; one that comes first waits (up to
  the label horizon) and is joined when the prediction arrives. Flags join the same way.
- A second label for the same prediction is a correction: the newest (by its timestamp) wins,
  and its ``Outcome`` names the one it ``replaces``, so every count downstream moves from the
  old value to the new exactly once. An older label arriving late is ignored.
- A resent feedback id, or a resent prediction, is joined once.
- Past the horizon an id is forgotten (a changelog tombstone); feedback whose prediction never
  came is counted as orphaned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from feedback_joiner.ports import JoinStore
from vigil.adapters.ports import Catalog
from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    Incoming,
    Outgoing,
    Output,
    StageLogic,
    TopicPartitionKey,
)
from vigil.performance import WINDOW_SECONDS, WindowPerformance, window_of
from vigil.wire.base import as_utc
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.joins import JoinEntry
from vigil.wire.performance import PerformancePartial
from vigil.wire.records import FeedbackEvent, Outcome, PredictionEvent, Record, utcnow

__all__ = ["Joining", "Topics"]

log = logging.getLogger(__name__)

ENTRIES = Codec(JoinEntry)
PREDICTIONS = Codec(PredictionEvent)
FEEDBACK = Codec(FeedbackEvent)
OUTCOMES = Codec(Outcome)
PARTIALS = Codec(PerformancePartial)
SEEN_KEPT = 32  # feedback ids remembered per prediction, to join a resend once
WAITING_KEPT = 32  # flags kept per prediction that has not come yet

Key = tuple[int, str]  # (partition, prediction id)
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Topics:
    predictions: str
    feedback: str
    outcomes: str
    changelog: str
    partials: str = "vigil.performance.partials.v1"


@dataclass
class Counts:
    """What the joiner did, committed."""

    indexed: int = 0  # predictions taken
    joined: int = 0  # outcomes written
    corrections: int = 0  # outcomes that replace an earlier label
    early: int = 0  # feedback that came before its prediction
    duplicates: int = 0  # resent predictions or feedback ids, joined once
    orphaned: int = 0  # feedback forgotten at the horizon without its prediction
    expired: int = 0  # ids forgotten at the horizon
    unjudged: int = 0  # outcomes of a label the model's task cannot read (not counted)


class Joining(StageLogic):
    """The joiner as a stage's logic (see the module)."""

    def __init__(
        self,
        store: JoinStore,
        topics: Topics,
        horizon: timedelta,
        flush_seconds: float = 1.0,
        flush_records: int = 20_000,
        sweep_seconds: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        versions: Catalog | None = None,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self.store = store
        self.versions = versions
        self.window_seconds = window_seconds
        # This flush's performance deltas, by (model, version, window start).
        self.deltas: dict[tuple[str, str, datetime], tuple[datetime, WindowPerformance]] = {}
        self.topics = topics
        self.horizon = horizon
        self.flush_seconds = flush_seconds
        self.flush_records = flush_records
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self.monotonic = monotonic
        self.owned: set[int] = set()
        self.dirty: dict[Key, JoinEntry | None] = {}
        self.outcomes: list[Outgoing] = []
        self.rejects: list[DeadLetter] = []
        self.pending = Counts()
        self.counts = Counts()
        self.absorbed = 0
        self.last_flush = monotonic()
        self.last_sweep = monotonic()
        self._flushing: tuple[dict[Key, JoinEntry | None], Counts] | None = None

    # -- absorbing ---------------------------------------------------------------------------

    def _entry(self, key: Key) -> JoinEntry | None:
        if key in self.dirty:
            return self.dirty[key]
        raw = self.store.get(*key)
        if raw is None:
            return None
        try:
            return ENTRIES.decode(raw)
        except DecodeError as exc:
            log.warning("dropping the unreadable state of %s: %s", key[1], exc.reason)
            return None

    async def absorb(self, records: Sequence[Incoming]) -> None:
        now = self.clock()
        for record in records:
            if record.topic == self.topics.predictions:
                self._prediction(record, now)
            else:
                self._feedback(record, now)
        self.absorbed += len(records)

    def _decode(self, codec: Codec[R], record: Incoming) -> R | None:
        try:
            return codec.decode(record.value)
        except DecodeError as exc:
            self.rejects.append(DeadLetter(record, exc.reason))
            return None

    def _prediction(self, record: Incoming, now: datetime) -> None:
        prediction = self._decode(PREDICTIONS, record)
        if prediction is None:
            return
        key = (record.partition, prediction.prediction_id)
        entry = self._entry(key) or JoinEntry(first_seen=now)
        if entry.prediction is not None:
            self.pending.duplicates += 1  # a resend: the first one stands
            return
        self.pending.indexed += 1
        window = self._window(prediction)
        if window is not None:
            window.add_prediction(prediction.prediction, prediction.score)
        if entry.label is not None and not entry.label_joined:
            self._outcome(prediction, entry.label, None, now)
            entry = entry.model_copy(update={"label_joined": True})
        for flag in entry.waiting:
            self._outcome(prediction, flag, None, now)
        self.dirty[key] = entry.model_copy(update={"prediction": prediction, "waiting": []})

    def _feedback(self, record: Incoming, now: datetime) -> None:
        feedback = self._decode(FEEDBACK, record)
        if feedback is None:
            return
        key = (record.partition, feedback.prediction_id)
        entry = self._entry(key) or JoinEntry(first_seen=now)
        if feedback.feedback_id in entry.seen_feedback:
            self.pending.duplicates += 1
            return
        seen = [*entry.seen_feedback, feedback.feedback_id][-SEEN_KEPT:]
        entry = entry.model_copy(update={"seen_feedback": seen})
        prediction = entry.prediction
        if prediction is None:
            self.pending.early += 1
        if feedback.actual is None:  # a flag: joined, or waiting for its prediction
            if prediction is not None:
                self._outcome(prediction, feedback, None, now)
            else:
                waiting = [*entry.waiting, feedback][-WAITING_KEPT:]
                entry = entry.model_copy(update={"waiting": waiting})
        elif entry.label is None or as_utc(feedback.timestamp) >= as_utc(entry.label.timestamp):
            joined = prediction is not None
            if prediction is not None:
                replaced = entry.label if entry.label_joined else None
                self._outcome(prediction, feedback, replaced, now)
            entry = entry.model_copy(update={"label": feedback, "label_joined": joined})
        self.dirty[key] = entry

    def _outcome(
        self,
        prediction: PredictionEvent,
        feedback: FeedbackEvent,
        replaces: FeedbackEvent | None,
        now: datetime,
    ) -> None:
        outcome = Outcome(
            prediction=prediction, feedback=feedback, joined_at=now, replaces=replaces
        )
        key = prediction.prediction_id.encode()
        self.outcomes.append(Outgoing(self.topics.outcomes, OUTCOMES.encode(outcome), key))
        self.pending.joined += 1
        if replaces is not None:
            self.pending.corrections += 1
        if feedback.actual is not None:
            self._count(prediction, feedback, feedback.actual, replaces)

    def _window(self, prediction: PredictionEvent) -> WindowPerformance | None:
        """This flush's delta of the window ``prediction`` falls in; None for a version the
        registry does not know (joined all the same, not counted)."""
        if self.versions is None:
            return None
        version = self.versions.get(prediction.model_id, prediction.model_version)
        if version is None:
            return None
        start, end = window_of(as_utc(prediction.timestamp), self.window_seconds)
        key = (prediction.model_id, prediction.model_version, start)
        found = self.deltas.get(key)
        if found is None:
            found = self.deltas[key] = (
                end,
                WindowPerformance(version.task, version.positive_label),
            )
        return found[1]

    def _count(
        self,
        prediction: PredictionEvent,
        label: FeedbackEvent,
        actual: bool | int | float | str,
        replaces: FeedbackEvent | None,
    ) -> None:
        """Count a label into its window's delta; a correction takes the old label out first."""
        window = self._window(prediction)
        if window is None:
            return
        try:
            if replaces is not None and replaces.actual is not None:
                window.add_outcome(
                    prediction.prediction,
                    prediction.score,
                    replaces.actual,
                    _latency(prediction, replaces),
                    sign=-1,
                )
            window.add_outcome(
                prediction.prediction, prediction.score, actual, _latency(prediction, label)
            )
        except ValueError as exc:  # e.g. a string label for a regression model
            self.pending.unjudged += 1
            log.warning("outcome of %s not counted: %s", prediction.prediction_id, exc)

    # -- flushing ----------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        work = bool(self.dirty or self.outcomes or self.rejects)
        full = len(self.dirty) + len(self.outcomes) >= self.flush_records
        return (work and (full or now - self.last_flush >= self.flush_seconds)) or (
            now - self.last_sweep >= self.sweep_seconds
        )

    async def flush(self) -> Output:
        now = self.monotonic()
        if now - self.last_sweep >= self.sweep_seconds:
            self._sweep(self.clock())
            self.last_sweep = now
        changes = [
            Outgoing(
                self.topics.changelog,
                None if entry is None else ENTRIES.encode(entry),
                pid.encode(),
                partition,
            )
            for (partition, pid), entry in self.dirty.items()
        ]
        partials = [
            Outgoing(
                self.topics.partials,
                PARTIALS.encode(
                    PerformancePartial(
                        model_id=model_id,
                        model_version=version,
                        window_start=start,
                        window_end=end,
                        state=window.to_bytes(),
                    )
                ),
                f"{model_id}/{version}".encode(),
            )
            for (model_id, version, start), (end, window) in self.deltas.items()
        ]
        output = Output([*self.outcomes, *changes, *partials], self.rejects)
        self._flushing = (self.dirty, self.pending)
        self.dirty, self.outcomes, self.rejects, self.pending = {}, [], [], Counts()
        self.deltas = {}
        self.last_flush = now
        return output

    def committed(self, output: Output) -> None:
        if self._flushing is None:
            return
        dirty, counts = self._flushing
        self._flushing = None
        by_partition: dict[int, dict[str, bytes | None]] = {}
        for (partition, pid), entry in dirty.items():
            by_partition.setdefault(partition, {})[pid] = (
                None if entry is None else ENTRIES.encode(entry)
            )
        for partition, changes in by_partition.items():
            if partition in self.owned:
                self.store.write(partition, changes)
        for name in vars(counts):
            setattr(self.counts, name, getattr(self.counts, name) + getattr(counts, name))

    def _sweep(self, now: datetime) -> None:
        """Forget the ids past the horizon; their feedback without a prediction is orphaned."""
        cutoff = now - self.horizon
        for partition in sorted(self.owned):
            for pid, raw in self.store.entries(partition):
                key = (partition, pid)
                if key in self.dirty:
                    continue
                try:
                    entry = ENTRIES.decode(raw)
                except DecodeError:
                    self.dirty[key] = None  # unreadable: nothing to keep
                    continue
                if as_utc(entry.first_seen) >= cutoff:
                    continue
                self.dirty[key] = None
                self.pending.expired += 1
                if entry.prediction is None:
                    self.pending.orphaned += len(entry.waiting) + (entry.label is not None)
        if self.pending.orphaned:
            log.warning("%d feedback(s) never met their prediction", self.pending.orphaned)

    # -- assignment --------------------------------------------------------------------------

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        # Entries are stored as read, not decoded here: a restore of millions must not hold
        # the event loop (and the consumer's heartbeats) for long. One that cannot be read is
        # found, and dropped, when its id next comes.
        numbers = {p for _, p in assigned.partitions}
        found: dict[int, list[tuple[str, bytes]]] = {p: [] for p in numbers}
        for record in assigned.changelog:
            if record.key is not None and record.value is not None and record.partition in found:
                found[record.partition].append((record.key.decode(errors="replace"), record.value))
        for partition, entries in found.items():
            self.store.reset(partition, entries)
            await asyncio.sleep(0)
        self.owned |= numbers
        log.info(
            "joiner restored %d entries for partitions %s",
            sum(len(e) for e in found.values()),
            sorted(numbers),
        )
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        # Work not committed is read again (the stage flushes before a rebalance takes
        # partitions, so this is a rewind after a failed flush): nothing of it is kept.
        numbers = {p for _, p in partitions}
        self.dirty, self.outcomes, self.rejects, self.pending = {}, [], [], Counts()
        self.deltas = {}
        self._flushing = None
        for partition in numbers:
            self.store.drop(partition)
        self.owned -= numbers


def _latency(prediction: PredictionEvent, label: FeedbackEvent) -> float:
    """Seconds from the prediction to its label (0 for a label stamped before it)."""
    return max((as_utc(label.timestamp) - as_utc(prediction.timestamp)).total_seconds(), 0.0)
