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
- A label the model cannot read (a class a regression model cannot take, say) is not counted:
  its ``Outcome`` goes to the dead-letter topic with the reason.
- Past the horizon (the version's ``label_horizon``) an id is forgotten (a changelog tombstone).

Orphans: a label whose prediction has not come is counted at once as orphaned in a window of
the model the feedback names (``feedback_joiner.deltas`` says which), remembered in
``JoinEntry.orphan``; its prediction, if it comes, takes the count back from there: a report
counts the labels still without their prediction, and at the horizon those that never met it.

Predictions are indexed a run at a time (``_predictions``); runs of feedback go through
``feedback_joiner.fastlabels``, which joins the usual label (its prediction here, nothing else
yet) from the bytes as consumed and hands every other record, in order, to ``feedback``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import TypeVar

import numpy as np

from feedback_joiner.deltas import NEWEST, FlushDeltas
from feedback_joiner.entries import (
    ENTRIES,
    FEEDBACK,
    PREDICTIONS,
    Produced,
    avro_bytes,
    entry_prefix,
    is_current_prediction,
    outcome_value,
    prediction_id,
    prediction_of,
)
from feedback_joiner.fastlabels import join_labels
from feedback_joiner.groups import batchable
from feedback_joiner.ports import JoinStore
from feedback_joiner.shapes import Counts, Topics
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
from vigil.performance import WINDOW_SECONDS
from vigil.wire.base import as_utc
from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.joins import JoinEntry
from vigil.wire.performance import PerformancePartial
from vigil.wire.records import FeedbackEvent, PredictionEvent, Record, utcnow

__all__ = ["Counts", "Joining", "Topics"]

log = logging.getLogger(__name__)

PARTIALS = Codec(PerformancePartial)
SEEN_KEPT = 32  # feedback ids remembered per prediction, to join a resend once
WAITING_KEPT = 32  # flags kept per prediction that has not come yet

Key = tuple[int, str]  # (partition, prediction id)
R = TypeVar("R", bound=Record)


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
        self.perf = FlushDeltas(store, versions, window_seconds)
        self.topics = topics
        self.horizon = horizon
        self.flush_seconds = flush_seconds
        self.flush_records = flush_records
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self.monotonic = monotonic
        self.owned: set[int] = set()
        self.dirty: dict[Key, JoinEntry | bytes | None] = {}
        self.outcomes: list[Outgoing] = []
        self.rejects: list[DeadLetter] = []
        self.pending = Counts()
        self.counts = Counts()
        self.absorbed = 0
        self.last_flush = monotonic()
        self.last_sweep = monotonic()
        self._flushing: tuple[dict[Key, bytes | None], Counts] | None = None

    # -- absorbing ---------------------------------------------------------------------------

    def _entry(self, key: Key) -> JoinEntry | None:
        raw = self.dirty[key] if key in self.dirty else self.store.get(*key)
        if raw is None or isinstance(raw, JoinEntry):
            return raw
        try:
            return ENTRIES.decode(raw)
        except DecodeError as exc:
            log.warning("dropping the unreadable state of %s: %s", key[1], exc.reason)
            return None

    async def absorb(self, records: Sequence[Incoming]) -> None:
        # In order: runs of predictions indexed together, runs of feedback joined together.
        now = self.clock()
        for indexing, run in groupby(records, lambda r: r.topic == self.topics.predictions):
            if indexing:
                self._predictions(list(run), now)
            else:
                self.join_run(list(run), now)
        self.absorbed += len(records)

    def join_run(self, records: Sequence[Incoming], now: datetime) -> None:
        """Join a run of feedback records, in order (``feedback_joiner.fastlabels``)."""
        join_labels(self, records, now)

    def _predictions(self, records: Sequence[Incoming], now: datetime) -> None:
        """Index predictions a batch at a time: the new ones (the usual case) are read column
        by column and kept as they came; any other (a resend, one with feedback waiting, one
        the batch reader cannot read) goes through ``_prediction``, in order."""
        fast = [i for i, r in enumerate(records) if is_current_prediction(r.value)]
        values = [records[i].value or b"" for i in fast]
        decoded = decode_predictions(values, PREDICTIONS)
        slow = set(range(len(records))) - set(fast)
        slow.update(fast[i] for i, _ in decoded.failures)
        first_seen = entry_prefix(now)
        for batch in decoded.batches:
            version = self.perf.version(batch.model_id, batch.model_version)
            if version is not None and not batchable(version):  # its segments need tags
                slow.update(fast[row] for row in batch.rows.tolist())
                continue
            new: list[int] = []
            for n, row in enumerate(batch.rows.tolist()):
                record = records[fast[row]]
                value = record.value or b""
                key = (record.partition, prediction_id(value))
                if key in self.dirty or self.store.get(*key) is not None:
                    slow.add(fast[row])
                    continue
                self.dirty[key] = first_seen + avro_bytes(value)
                new.append(n)
            self.pending.indexed += len(new)
            if version is None or not new:
                continue
            taken = batch.take(np.array(new, dtype=np.intp))
            partitions = np.array([records[fast[r]].partition for r in taken.rows.tolist()])
            for partition in np.unique(partitions).tolist():
                at = np.flatnonzero(partitions == partition)
                self.perf.predictions(partition, version, taken.take(at))
        for i in sorted(slow):
            self._prediction(records[i], now)

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
        if entry.has_prediction:
            self.pending.duplicates += 1  # a resend: the first one stands
            return
        self.pending.indexed += 1
        self.perf.prediction(record.partition, prediction)
        if entry.orphan is not None:  # its label was counted as orphaned: no longer
            self.perf.orphans(entry.orphan, -1)
        if entry.label is not None and not entry.label_joined:
            self._outcome(prediction, entry.label, None, now, record.partition)
            entry = entry.model_copy(update={"label_joined": True})
        for flag in entry.waiting:
            self._outcome(prediction, flag, None, now, record.partition)
        self.dirty[key] = entry.model_copy(
            update={
                "prediction_event": PREDICTIONS.encode(prediction),
                "waiting": [],
                "orphan": None,
            }
        )

    def feedback(self, record: Incoming, now: datetime) -> None:
        """Join one feedback record, whatever it is (see the module)."""
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
        prediction = prediction_of(entry)
        if prediction is None:
            self.pending.early += 1
        raw = (entry.prediction_event, record.value)  # the events as consumed
        if feedback.actual is None:  # a flag: joined, or waiting for its prediction
            if prediction is not None:
                self._outcome(prediction, feedback, None, now, record.partition, raw)
            else:
                waiting = [*entry.waiting, feedback][-WAITING_KEPT:]
                entry = entry.model_copy(update={"waiting": waiting})
        elif entry.label is None or as_utc(feedback.timestamp) >= as_utc(entry.label.timestamp):
            joined = prediction is not None
            if prediction is not None:
                replaced = entry.label if entry.label_joined else None
                self._outcome(prediction, feedback, replaced, now, record.partition, raw)
            elif entry.orphan is None:
                entry = entry.model_copy(
                    update={"orphan": self.perf.orphan(record.partition, feedback)}
                )
            entry = entry.model_copy(update={"label": feedback, "label_joined": joined})
        self.dirty[key] = entry

    def _outcome(
        self,
        prediction: PredictionEvent,
        feedback: FeedbackEvent,
        replaces: FeedbackEvent | None,
        now: datetime,
        partition: int,
        raw: tuple[bytes | None, bytes | None] = (None, None),
    ) -> None:
        value = outcome_value(prediction, feedback, replaces, now, *raw)
        unreadable = None
        if feedback.actual is not None:
            unreadable = self.perf.outcome(prediction, feedback, feedback.actual, replaces)
        self.joined(prediction.prediction_id, partition, value, unreadable, replaces is not None)

    def joined(
        self, prediction_id: str, partition: int, value: bytes, unreadable: str | None, fix: bool
    ) -> None:
        """Send an outcome (``fix``: a correction), or dead-letter it with why its label could
        not be counted."""
        key = prediction_id.encode()
        if unreadable is not None:
            log.warning("outcome of %s not counted: %s", prediction_id, unreadable)
            self.pending.unjudged += 1
            produced = Produced(self.topics.outcomes, partition, key, value)
            self.rejects.append(DeadLetter(produced, f"outcome not judged: {unreadable}"))
            return
        self.outcomes.append(Outgoing(self.topics.outcomes, value, key))
        self.pending.joined += 1
        self.pending.corrections += int(fix)

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
        encoded: dict[Key, bytes | None] = {
            key: ENTRIES.encode(entry) if isinstance(entry, JoinEntry) else entry
            for key, entry in self.dirty.items()
        }
        deltas, newest = self.perf.take()
        encoded.update(newest)
        changes = [
            Outgoing(self.topics.changelog, value, pid.encode(), partition)
            for (partition, pid), value in encoded.items()
        ]
        partials = [
            Outgoing(self.topics.partials, PARTIALS.encode(d), d.key.encode()) for d in deltas
        ]
        output = Output([*self.outcomes, *changes, *partials], self.rejects)
        self._flushing = (encoded, self.pending)
        self.dirty, self.outcomes, self.rejects, self.pending = {}, [], [], Counts()
        self.last_flush = now
        return output

    def committed(self, output: Output) -> None:
        if self._flushing is None:
            return
        encoded, counts = self._flushing
        self._flushing = None
        by_partition: dict[int, dict[str, bytes | None]] = {}
        for (partition, pid), value in encoded.items():
            by_partition.setdefault(partition, {})[pid] = value
        for partition, changes in by_partition.items():
            if partition in self.owned:
                self.store.write(partition, changes)
        for name in vars(counts):
            setattr(self.counts, name, getattr(self.counts, name) + getattr(counts, name))

    def _sweep(self, now: datetime) -> None:
        """Forget the ids past their horizon (the orphans among them stay counted)."""
        for partition in sorted(self.owned):
            for pid, raw in self.store.entries(partition):
                key = (partition, pid)
                if key in self.dirty or pid.startswith(NEWEST):
                    continue
                try:
                    entry = ENTRIES.decode(raw)
                except DecodeError:
                    self.dirty[key] = None  # unreadable: nothing to keep
                    continue
                if as_utc(entry.first_seen) >= now - self.perf.horizon(entry, self.horizon):
                    continue
                self.dirty[key] = None
                self.pending.expired += 1
                if not entry.has_prediction:
                    self.pending.orphaned += len(entry.waiting) + (entry.label is not None)
        if self.pending.orphaned:
            log.warning("%d feedback(s) never met their prediction", self.pending.orphaned)

    # -- assignment --------------------------------------------------------------------------

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        # The changelog streams into the store batch by batch (memory stays flat however many
        # ids there are), as read: entries are not decoded here, so a restore of millions does
        # not hold the event loop (and the consumer's heartbeats) for long. One that cannot be
        # read is found, and dropped, when its id next comes.
        numbers = {p for _, p in assigned.partitions}
        for partition in numbers:
            self.store.reset(partition, ())
        restored = 0
        if assigned.restore is not None:
            async for batch in assigned.restore():
                changes: dict[int, dict[str, bytes | None]] = {}
                for r in batch:
                    if r.key is not None and r.partition in numbers:
                        key = r.key.decode(errors="replace")
                        changes.setdefault(r.partition, {})[key] = r.value
                for partition, written in changes.items():
                    self.store.write(partition, written)
                restored += len(batch)
                await asyncio.sleep(0)
        self.owned |= numbers
        self.perf.reset()
        log.info("joiner restored %d changelog records of %s", restored, sorted(numbers))
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        # Work not committed is read again (the stage flushes before a rebalance takes
        # partitions, so this is a rewind after a failed flush): nothing of it is kept.
        numbers = {p for _, p in partitions}
        self.dirty, self.outcomes, self.rejects, self.pending = {}, [], [], Counts()
        self.perf.reset()
        self._flushing = None
        for partition in numbers:
            self.store.drop(partition)
        self.owned -= numbers
