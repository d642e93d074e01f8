"""The drift detector's logic, stage by stage: profiling and merging. No Kafka here.

``Profiling`` counts prediction batches into partials (``drift_detector.partials``);
``Merging`` merges partials into windows and judges them (``drift_detector.windows``). Each is
a ``StageLogic`` that ``vigil.adapters.stage`` runs on Kafka and ``StageHarness`` in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from drift_detector.partials import Partial, PartialBuilder, WindowPolicy
from drift_detector.windows import ModelWindows
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
from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, PredictionEvent, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS, PREDICTIONS

__all__ = ["Merging", "Profiling", "WindowPolicy"]

log = logging.getLogger(__name__)

REPORT_CODEC = Codec(WindowReport)
VERSION_CODEC = Codec(ModelVersion)
Key = tuple[str, str]


def _key(raw: bytes | None) -> Key:
    model_id, _, version = (raw or b"").decode(errors="replace").rpartition("/")
    return model_id, version


class Profiling(StageLogic):
    """Profiles prediction records into one partial per model version and flush."""

    def __init__(
        self,
        versions: Catalog,
        policy: WindowPolicy,
        codec: Codec[PredictionEvent],
        partials_topic: str,
        flush_events: int,
        flush_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.versions = versions
        self.policy = policy
        self.codec = codec
        self.partials_topic = partials_topic
        self.flush_events = flush_events
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.pending: dict[tuple[str, str, int], PartialBuilder] = {}
        self.rejects: list[DeadLetter] = []
        self.topic_partitions = PREDICTIONS.partitions
        self.events = 0  # absorbed since the last flush
        self.flushing = 0
        self.flushed_events = 0  # committed
        self.last_flush = clock()

    async def absorb(self, records: Sequence[Incoming]) -> None:
        """Count a batch of prediction records into the pending partials."""
        decoded = decode_predictions([r.value or b"" for r in records], self.codec)
        self.rejects.extend(DeadLetter(records[i], reason) for i, reason in decoded.failures)
        partitions = np.fromiter((r.partition for r in records), np.int32, len(records))
        for batch in decoded.batches:
            version = await self.versions.lookup(batch.model_id, batch.model_version)
            if version is None:
                reason = (
                    f"model {batch.model_id!r} version {batch.model_version!r} is not registered"
                )
                self.rejects.extend(DeadLetter(records[int(i)], reason) for i in batch.rows)
                continue
            reference_version = version.reference.version if version.reference else 0
            key = (version.model_id, version.version, reference_version)
            pending = self.pending.get(key)
            if pending is None:
                pending = self.pending[key] = PartialBuilder(version)
            size = None if version.drift.window_events else self.policy.size(version)
            pending.add(batch, partitions[batch.rows], size)
        self.events += len(records)

    def due(self, now: float) -> bool:
        return bool(self.events) and (
            self.events >= self.flush_events or now - self.last_flush >= self.flush_seconds
        )

    async def flush(self) -> Output:
        """The partials and dead letters of everything absorbed since the last flush."""
        records = [
            Outgoing(self.partials_topic, p.to_bytes(), f"{p.model_id}/{p.model_version}".encode())
            for p in (b.partial(self.topic_partitions) for b in self.pending.values())
        ]
        output = Output(records, self.rejects)
        self.flushing = self.events
        self._clear()
        return output

    def committed(self, output: Output) -> None:
        self.flushed_events += self.flushing
        self.flushing = 0

    def _clear(self) -> None:
        self.pending = {}
        self.rejects = []
        self.events = 0
        self.last_flush = self.clock()

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        self.topic_partitions = assigned.partition_counts.get(PREDICTIONS.name) or (
            self.topic_partitions
        )
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        # Partials mix partitions: after a settle nothing is pending; after a failure all goes.
        self._clear()


class Merging(StageLogic):
    """Merges partials into windows for the model versions this worker owns, and judges them."""

    def __init__(
        self,
        versions: Catalog,
        policy: WindowPolicy,
        state_topic: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.versions = versions
        self.policy = policy
        self.state_topic = state_topic
        self.clock = clock
        self.models: dict[Key, ModelWindows] = {}
        self.partition_of: dict[Key, int] = {}
        self.changed: set[Key] = set()
        self.rejects: list[DeadLetter] = []
        self.built: list[ModelWindows] = []
        self.reports_published = 0

    async def absorb(self, records: Sequence[Incoming]) -> None:
        now = self.clock()
        for record in records:
            key = _key(record.key)
            try:
                partial = Partial.from_bytes(record.value or b"")
            except ValueError as exc:  # DecodeError included
                self.rejects.append(DeadLetter(record, f"not a drift partial: {exc}"))
                continue
            current = await self.versions.lookup(*key)
            if current is None:
                reason = f"partial for unregistered model version {key[0]}/{key[1]}"
                self.rejects.append(DeadLetter(record, reason))
                continue
            windows = self.models.get(key)
            if windows is None:
                windows = self.models[key] = ModelWindows(current, self.policy)
            elif current.updated_at > windows.version.updated_at:
                windows.update_version(current)
            self.partition_of[key] = record.partition
            try:
                windows.add(partial, now)
            except ValueError as exc:
                self.rejects.append(DeadLetter(record, f"partial not mergeable: {exc}"))
            self.changed.add(key)

    def due(self, now: float) -> bool:
        return True  # every poll: windows close as time passes, with or without new partials

    async def flush(self) -> Output:
        """Reports of the windows due, the changed versions' state and any built reference."""
        now = self.clock()
        created = utcnow()
        reports: list[WindowReport] = []
        for key, windows in self.models.items():
            closed = windows.close_due(now)
            if closed:
                self.changed.add(key)
                reports.extend(windows.report(w, created) for w in closed)
        out = Output(dead_letters=self.rejects)
        self.rejects = []
        out.records = [
            Outgoing(METRICS.name, REPORT_CODEC.encode(r), r.key.encode()) for r in reports
        ]
        for key in sorted(self.changed):
            windows = self.models[key]
            out.records.append(
                Outgoing(
                    self.state_topic,
                    windows.snapshot(),
                    f"{key[0]}/{key[1]}".encode(),
                    self.partition_of[key],
                )
            )
        self.built = [w for k in self.changed if (w := self.models[k]).built_reference is not None]
        out.records += [
            Outgoing(MODELS.name, VERSION_CODEC.encode(w.version), w.version.key.encode())
            for w in self.built
        ]
        self.changed.clear()
        return out

    def committed(self, output: Output) -> None:
        for windows in self.built:
            assert windows.built_reference is not None
            log.info(
                "built the production reference of %s from its first %d events",
                windows.version.key,
                windows.built_reference.row_count,
            )
            self.versions.apply(windows.version)
            windows.built_reference = None
        self.built = []
        reports = [r for r in output.records if r.topic == METRICS.name]
        self.reports_published += len(reports)
        if reports:
            log.info("published %d window reports", len(reports))

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        """Resume the assigned partitions' model versions from their changelog state."""
        now = self.clock()
        unreadable: list[DeadLetter] = []
        for record in assigned.changelog:
            key = _key(record.key)
            version = await self.versions.lookup(*key)
            if version is None:
                continue
            try:
                self.models[key] = ModelWindows.restore(
                    record.value or b"", version, self.policy, now
                )
            except ValueError as exc:  # e.g. written by an incompatible release
                log.error("could not restore the state of %s/%s: %s; starting afresh", *key, exc)
                unreadable.append(DeadLetter(record, f"not a drift state: {exc}"))
                continue
            self.partition_of[key] = record.partition
        log.info(
            "restored %d model versions (%d events in open windows) of partitions %s",
            len(assigned.changelog),
            sum(w.events for m in self.models.values() for w in m.windows.values()),
            sorted(p for _, p in assigned.partitions),
        )
        return unreadable

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        numbers = {p for _, p in partitions}
        for key in [k for k, p in self.partition_of.items() if p in numbers]:
            self.models.pop(key, None)
            self.changed.discard(key)
            del self.partition_of[key]
        self.rejects = []
        self.built = []
