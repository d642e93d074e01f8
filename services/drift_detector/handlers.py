"""The drift detector's logic, stage by stage: profiling and merging. No Kafka here.

``Profiling`` counts prediction batches into partials (``drift_detector.partials``);
``Merging`` (``drift_detector.merging``) merges partials into windows and judges them
(``drift_detector.windows``). Each is a ``StageLogic`` that ``vigil.adapters.stage`` runs on
Kafka and ``StageHarness`` in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from drift_detector.merging import Merging
from drift_detector.partials import MICROS, PartialBuilder, WindowPolicy
from drift_detector.versions import caught_up, is_live
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
from vigil.wire.columns import Batch
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.topics import PREDICTIONS

__all__ = ["Merging", "Profiling", "WindowPolicy"]

log = logging.getLogger(__name__)

Partitions = npt.NDArray[np.int32]
Rows = npt.NDArray[np.intp]


class Profiling(StageLogic):
    """Profiles prediction records into one partial per model version and flush.

    An event stamped more than ``max_future_seconds`` ahead of the worker's wall clock is
    quarantined (dead-lettered and counted in ``quarantined``): it never moves a window clock.
    Events of a version that is not registered, or retired, are dead-lettered with that reason.
    Quarantined events, and those of a version that failed to profile, are also counted in the
    version's partial (``dead_lettered``), for its traffic reports; records that cannot be
    decoded, or name no live version, are not: no traffic report would carry them.
    Nothing is kept per version beyond a flush (the pending partials).
    """

    def __init__(
        self,
        versions: Catalog,
        policy: WindowPolicy,
        codec: Codec[PredictionEvent],
        partials_topic: str,
        flush_events: int,
        flush_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_future_seconds: float = 300.0,
        wall: Callable[[], float] = time.time,
        predictions_topic: str = PREDICTIONS.name,
    ) -> None:
        self.versions = versions
        self.predictions_topic = predictions_topic
        self.max_future_seconds = max_future_seconds
        self.wall = wall
        self.quarantined = 0
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
        await caught_up(self.versions, ((b.model_id, b.model_version) for b in decoded.batches))
        for batch in decoded.batches:
            version = self.versions.get(batch.model_id, batch.model_version)
            if not is_live(version):
                why = "is not registered" if version is None else "is retired"
                reason = f"model {batch.model_id!r} version {batch.model_version!r} {why}"
                self.rejects.extend(DeadLetter(records[int(i)], reason) for i in batch.rows)
                continue
            batch = self._present(version, batch, records)
            try:
                self._count(version, batch, partitions[batch.rows])
            except Exception as exc:  # one version's failure must not stop the others
                log.exception("profiling %s failed", version.key)
                reason = f"not profiled: {type(exc).__name__}: {exc}"
                self._reject(version, records, batch.rows, reason)
        self.events += len(records)

    @staticmethod
    def _key(version: ModelVersion) -> tuple[str, str, int]:
        reference_version = version.reference.version if version.reference else 0
        return version.model_id, version.version, reference_version

    def _count(self, version: ModelVersion, batch: Batch, partitions: Partitions) -> None:
        """Count ``batch`` into ``version``'s pending partial (a new one is kept only once
        counting succeeded)."""
        if not len(batch):
            return
        key = self._key(version)
        pending = self.pending.get(key) or PartialBuilder(version)
        size = None if version.drift.window_events else self.policy.size(version)
        pending.add(batch, partitions, size)
        self.pending[key] = pending

    def _reject(
        self, version: ModelVersion, records: Sequence[Incoming], rows: Rows, reason: str
    ) -> None:
        """Dead-letter the events of ``version`` at ``rows``; its partial counts them."""
        self.rejects.extend(DeadLetter(records[int(i)], reason) for i in rows)
        pending = self.pending.setdefault(self._key(version), PartialBuilder(version))
        pending.dead_lettered += len(rows)

    def _present(self, version: ModelVersion, batch: Batch, records: Sequence[Incoming]) -> Batch:
        """``batch`` without its events from the future, which are dead-lettered."""
        ahead = batch.timestamps > int((self.wall() + self.max_future_seconds) * MICROS)
        if not ahead.any():
            return batch
        reason = f"event time more than {self.max_future_seconds:g} s ahead of the worker's clock"
        self._reject(version, records, batch.rows[ahead], reason)
        self.quarantined += int(ahead.sum())
        return batch.take(np.flatnonzero(~ahead))

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
        self.topic_partitions = assigned.partition_counts.get(self.predictions_topic) or (
            self.topic_partitions
        )
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        # Partials mix partitions: after a settle nothing is pending; after a failure all goes.
        self._clear()
