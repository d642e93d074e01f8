"""The drift detector's logic, stage by stage: profiling and merging. No Kafka here.

``Profiling`` counts prediction batches into partials (``drift_detector.partials``);
``Merging`` merges partials into windows and judges them (``drift_detector.windows``). Each is
a ``StageLogic`` that ``vigil.adapters.stage`` runs on Kafka and ``StageHarness`` in memory.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from drift_detector.partials import MICROS, Partial, PartialBuilder, WindowPolicy
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
from vigil.wire.columns import Batch
from vigil.wire.records import ModelVersion, PredictionEvent, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS, PREDICTIONS

__all__ = ["Merging", "Profiling", "WindowPolicy"]

log = logging.getLogger(__name__)

REPORT_CODEC = Codec(WindowReport)
VERSION_CODEC = Codec(ModelVersion)
Key = tuple[str, str]
Partitions = npt.NDArray[np.int32]
# The broker's default message.max.bytes: the models topic does not raise it.
MODELS_MAX_BYTES = int(MODELS.config.get("max.message.bytes", 1_048_588))
RECORD_OVERHEAD = 1024  # record batch and record headers, with room to spare


async def _caught_up(versions: Catalog, keys: Iterable[Key]) -> None:
    """Catch the catalog up once if any of ``keys`` is unknown (not once per unknown key: a
    flood of unregistered ids must not stall a stage)."""
    if any(versions.get(*k) is None for k in keys):
        await versions.catch_up()


def _key(raw: bytes | None) -> Key:
    model_id, _, version = (raw or b"").decode(errors="replace").rpartition("/")
    return model_id, version


class Profiling(StageLogic):
    """Profiles prediction records into one partial per model version and flush.

    An event stamped more than ``max_future_seconds`` ahead of the worker's wall clock is
    quarantined (dead-lettered and counted in ``quarantined``): it never moves a window clock.
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
        await _caught_up(self.versions, ((b.model_id, b.model_version) for b in decoded.batches))
        for batch in decoded.batches:
            version = self.versions.get(batch.model_id, batch.model_version)
            if version is None:
                reason = (
                    f"model {batch.model_id!r} version {batch.model_version!r} is not registered"
                )
                self.rejects.extend(DeadLetter(records[int(i)], reason) for i in batch.rows)
                continue
            batch = self._present(batch, records)
            try:
                self._count(version, batch, partitions[batch.rows])
            except Exception as exc:  # one version's failure must not stop the others
                log.exception("profiling %s failed", version.key)
                reason = f"not profiled: {type(exc).__name__}: {exc}"
                self.rejects.extend(DeadLetter(records[int(i)], reason) for i in batch.rows)
        self.events += len(records)

    def _count(self, version: ModelVersion, batch: Batch, partitions: Partitions) -> None:
        """Count ``batch`` into ``version``'s pending partial."""
        if not len(batch):
            return
        reference_version = version.reference.version if version.reference else 0
        key = (version.model_id, version.version, reference_version)
        pending = self.pending.get(key) or PartialBuilder(version)
        size = None if version.drift.window_events else self.policy.size(version)
        pending.add(batch, partitions, size)
        self.pending[key] = pending

    def _present(self, batch: Batch, records: Sequence[Incoming]) -> Batch:
        """``batch`` without its events from the future, which are dead-lettered."""
        ahead = batch.timestamps > int((self.wall() + self.max_future_seconds) * MICROS)
        if not ahead.any():
            return batch
        reason = f"event time more than {self.max_future_seconds:g} s ahead of the worker's clock"
        self.rejects.extend(DeadLetter(records[int(i)], reason) for i in batch.rows[ahead])
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


class Merging(StageLogic):
    """Merges partials into windows for the model versions this worker owns, and judges them.

    One model version never blocks the others: a partial that fails to merge, or a version
    whose flush fails, has its partials of that flush dead-lettered with the reason (counted in
    ``failed``) and the version goes back to its last committed state. A built reference too
    large for the models topic is not published: it is counted and used here only.
    """

    def __init__(
        self,
        versions: Catalog,
        policy: WindowPolicy,
        state_topic: str,
        clock: Callable[[], float] = time.monotonic,
        max_future_seconds: float = 300.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.versions = versions
        self.policy = policy
        self.state_topic = state_topic
        self.clock = clock
        self.max_future_seconds = max_future_seconds
        self.wall = wall
        self.models: dict[Key, ModelWindows] = {}
        self.partition_of: dict[Key, int] = {}
        self.changed: set[Key] = set()
        self.rejects: list[DeadLetter] = []
        self.built: list[ModelWindows] = []
        self.reports_published = 0
        self.sources: dict[Key, list[Incoming]] = defaultdict(list)  # since the last flush
        self.flushed: dict[Key, list[Incoming]] = {}  # of the flush being committed
        self.saved: dict[Key, bytes] = {}  # the last committed state of each version
        self.failed: Counter[str] = Counter()

    async def absorb(self, records: Sequence[Incoming]) -> None:
        now = self.clock()
        await _caught_up(self.versions, {_key(r.key) for r in records})
        for record in records:
            key = _key(record.key)
            try:
                reason = self._merge(record, key, now)
            except Exception as exc:  # whatever it is, it would fail again on a re-read
                log.exception("partial of %s/%s failed to merge", *key)
                reason = f"partial not mergeable: {type(exc).__name__}: {exc}"
            if reason is not None:
                self.rejects.append(DeadLetter(record, reason))
                self.failed["partial"] += 1

    def _merge(self, record: Incoming, key: Key, now: float) -> str | None:
        """Merge one partial; the reason it was refused, or None."""
        try:
            partial = Partial.from_bytes(record.value or b"")
        except ValueError as exc:  # DecodeError included
            return f"not a drift partial: {exc}"
        current = self.versions.get(*key)
        if current is None:
            return f"partial for unregistered model version {key[0]}/{key[1]}"
        try:
            partial.check(int((self.wall() + self.max_future_seconds) * MICROS))
        except ValueError as exc:
            return f"partial not mergeable: {exc}"
        windows = self.models.get(key)
        if windows is None:
            windows = self.models[key] = ModelWindows(current, self.policy)
        elif current.updated_at > windows.version.updated_at:
            windows.update_version(current)
        self.partition_of[key] = record.partition
        self.sources[key].append(record)
        self.changed.add(key)
        try:
            windows.add(partial, now)
        except ValueError as exc:
            return f"partial not mergeable: {exc}"
        return None

    def due(self, now: float) -> bool:
        return True  # every poll: windows close as time passes, with or without new partials

    async def flush(self) -> Output:
        """Reports of the windows due, the changed versions' state and any built reference."""
        now, created = self.clock(), utcnow()
        records: list[Outgoing] = []
        for key in list(self.models):
            try:
                records += self._outputs(key, now, created)
            except Exception as exc:  # this version's outputs are dropped, the others go
                self._fail(key, exc, now)
        self.built = [w for k in self.changed if (w := self.models[k]).built_reference is not None]
        records += [r for w in self.built if (r := self._reference(w)) is not None]
        out = Output(records, self.rejects)
        self.rejects = []
        self.changed.clear()
        self.flushed, self.sources = dict(self.sources), defaultdict(list)
        return out

    def _outputs(self, key: Key, now: float, created: datetime) -> list[Outgoing]:
        """The reports of ``key``'s windows due now, then its state if it changed."""
        windows = self.models[key]
        closed = windows.close_due(now)
        reports = [windows.report(w, created) for w in closed]
        out = [Outgoing(METRICS.name, REPORT_CODEC.encode(r), r.key.encode()) for r in reports]
        if closed or key in self.changed:
            self.changed.add(key)
            raw = f"{key[0]}/{key[1]}".encode()
            out.append(Outgoing(self.state_topic, windows.snapshot(), raw, self.partition_of[key]))
        return out

    def _reference(self, windows: ModelWindows) -> Outgoing | None:
        """The version with its built reference for the models topic, if it fits there."""
        value, key = VERSION_CODEC.encode(windows.version), windows.version.key.encode()
        if len(value) + len(key) + RECORD_OVERHEAD <= MODELS_MAX_BYTES:
            return Outgoing(MODELS.name, value, key)
        log.error(
            "the production reference of %s is %d bytes, over the models topic's limit of %d:"
            " it is used by this worker only, not published",
            windows.version.key,
            len(value),
            MODELS_MAX_BYTES,
        )
        self.failed["reference_too_large"] += 1
        return None

    def _fail(self, key: Key, exc: Exception, now: float) -> None:
        """Dead-letter ``key``'s partials of this flush and return it to its committed state."""
        log.exception("model version %s/%s failed; dead-lettering its partials", *key)
        reason = f"model version {key[0]}/{key[1]} failed: {type(exc).__name__}: {exc}"
        self.rejects.extend(DeadLetter(r, reason) for r in self.sources.pop(key, []))
        self.failed["model_version"] += 1
        self.changed.discard(key)
        windows, saved = self.models.pop(key), self.saved.get(key)
        if saved is not None:
            with contextlib.suppress(ValueError):
                self.models[key] = ModelWindows.restore(saved, windows.version, self.policy, now)

    def culprits(self, failed: Outgoing | None, reason: str) -> list[DeadLetter]:
        """The partials of the flush behind ``failed``: the model version that wrote it."""
        if failed is None or failed.key is None:
            return []
        return [DeadLetter(r, reason) for r in self.flushed.get(_key(failed.key), [])]

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
        self.built, self.flushed = [], {}
        for r in output.records:
            if r.topic == self.state_topic and r.value is not None:
                self.saved[_key(r.key)] = r.value
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
                self.models[key] = self._restore(record.value or b"", version, now)
            except Exception as exc:  # e.g. written by an incompatible release
                log.error("could not restore the state of %s/%s: %s; starting afresh", *key, exc)
                unreadable.append(DeadLetter(record, f"not a drift state: {exc}"))
                continue
            self.partition_of[key] = record.partition
            self.saved[key] = record.value or b""
        log.info(
            "restored %d model versions (%d events in open windows) of partitions %s",
            len(assigned.changelog),
            sum(w.events for m in self.models.values() for w in m.windows.values()),
            sorted(p for _, p in assigned.partitions),
        )
        return unreadable

    def _restore(self, data: bytes, version: ModelVersion, now: float) -> ModelWindows:
        """A version's state from the changelog; ValueError if its marks are in the future."""
        windows = ModelWindows.restore(data, version, self.policy, now)
        if (
            max(windows.marks.values(), default=0)
            > (self.wall() + self.max_future_seconds) * MICROS
        ):
            raise ValueError("its event-time marks are in the future")
        return windows

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        numbers = {p for _, p in partitions}
        for key in [k for k, p in self.partition_of.items() if p in numbers]:
            self.models.pop(key, None)
            self.changed.discard(key)
            self.saved.pop(key, None)
            del self.partition_of[key]
        self.rejects, self.built = [], []
        self.sources, self.flushed = defaultdict(list), {}
