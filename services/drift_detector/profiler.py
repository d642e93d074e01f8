"""Stage one of a drift worker: prediction partitions in, partial window profiles out.

Reads the prediction partitions this worker owns in large batches (``getmany``), decodes them
column-wise and counts them into per-window profiles with numpy. Every flush writes the
partials, any dead letters and the consumed offsets in one Kafka transaction, so a crash or a
``kill -9`` at any moment re-reads exactly the events whose partials were not committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from drift_detector.config import Settings
from drift_detector.windows import PartialBuilder, WindowPolicy
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.schema_registry import SchemaRegistryClient
from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import DEADLETTER, PREDICTIONS, drift_topics

log = logging.getLogger(__name__)

__all__ = ["Profiler", "Stage", "transactional_producer"]


def transactional_producer(settings: Settings, role: str) -> AIOKafkaProducer:
    """A producer whose writes, offsets included, commit or abort together."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.drift_app_id}-{role}",
        transactional_id=f"{settings.drift_app_id}-{settings.worker_id}-{role}",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=64 * 1024 * 1024,
        transaction_timeout_ms=30_000,
        request_timeout_ms=30_000,
    )


class Stage(ConsumerRebalanceListener):  # type: ignore[misc]
    """A consumer and a transactional producer; ``settle`` commits what is pending."""

    def __init__(
        self, settings: Settings, follower: ModelCatalogFollower, policy: WindowPolicy
    ) -> None:
        self.settings = settings
        self.follower = follower
        self.policy = policy
        self.partials, self.state = drift_topics(settings.drift_app_id)
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.offsets: dict[TopicPartition, int] = {}  # to commit with the next transaction

    @abstractmethod
    async def settle(self) -> None:
        """Commit what is pending (before stopping or handing partitions over)."""

    async def stop(self) -> None:
        if self.consumer is not None:
            async with self.lock:
                await self.settle()
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer else set()


class Profiler(Stage):
    """Profiles the owned prediction partitions into partials, flushed in transactions."""

    def __init__(
        self, settings: Settings, follower: ModelCatalogFollower, policy: WindowPolicy
    ) -> None:
        super().__init__(settings, follower, policy)
        registry = (
            SchemaRegistryClient(settings.schema_registry_url)
            if settings.schema_registry_url
            else None
        )
        self.codec = Codec(PredictionEvent, registry)
        self.group = settings.drift_app_id
        # The next offset to profile of each owned partition (once known): a record below it was
        # profiled already (fetched twice around a rebalance or a rewind) and is skipped.
        self.expected: dict[TopicPartition, int | None] = {}
        self.pending: dict[tuple[str, str, int], PartialBuilder] = {}
        self.rejects: list[tuple[ConsumerRecord, str]] = []
        # The first offset read of each partition: where to rewind before any commit.
        self.first_offsets: dict[TopicPartition, int] = {}
        self.events = 0
        self.last_flush = time.monotonic()
        self.flushed_events = 0
        # Monotonic times of the first event read and of the last flush (throughput figures).
        self.first_read: float | None = None
        self.last_commit: float | None = None
        # True once partitions are assigned and their start positions known: events produced
        # from then on are read, even by a new group that starts at the end ("latest").
        self.ready = False

    async def start(self) -> None:
        self.producer = transactional_producer(self.settings, "profiler")
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group,
            client_id=f"{self.group}-profiler",
            enable_auto_commit=False,
            auto_offset_reset=self.settings.drift_auto_offset_reset,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.consumer.subscribe([PREDICTIONS.name], listener=self)
        await self.consumer.start()

    async def settle(self) -> None:
        await self._flush_safely()

    async def run(self) -> None:
        assert self.consumer is not None
        while True:
            records = await self.consumer.getmany(
                timeout_ms=200, max_records=self.settings.drift_fetch_records
            )
            if any(self.expected.get(tp) is None for tp in self.assignment):
                async with self.lock:
                    await self._pin_start()
            self.ready = bool(self.assignment)
            async with self.lock:
                batch = [
                    m
                    for tp, ms in records.items()
                    if tp in self.expected
                    for m in ms
                    if m.offset >= (self.expected[tp] or 0)
                ]
                if batch:
                    await self.absorb(batch)
                if self.events and (
                    self.events >= self.settings.drift_flush_events
                    or time.monotonic() - self.last_flush >= self.settings.drift_flush_seconds
                ):
                    await self._flush_safely()

    async def _pin_start(self) -> None:
        """Commit where a partition nobody committed yet starts (``auto_offset_reset``), so that
        a restart resumes there: "latest" is decided once, when the group first reads it."""
        assert self.consumer is not None and self.producer is not None
        starts = {
            tp: await self.consumer.position(tp)
            for tp in self.assignment
            if self.expected.get(tp) is None
        }
        async with self.producer.transaction():
            await self.producer.send_offsets_to_transaction(starts, self.group)
        self.expected.update(starts)

    async def absorb(self, messages: Sequence[ConsumerRecord]) -> None:
        """Count a batch of prediction messages into the pending partials."""
        if self.first_read is None:
            self.first_read = time.monotonic()
        values = [m.value or b"" for m in messages]
        decoded = decode_predictions(values, self.codec)
        for index, reason in decoded.failures:
            self.rejects.append((messages[index], reason))
        partitions = np.fromiter((m.partition for m in messages), np.int32, len(messages))
        catalog = self.follower.catalog
        if any(catalog.get(b.model_id, b.model_version) is None for b in decoded.batches):
            await self.follower.catch_up()
        for batch in decoded.batches:
            version = catalog.get(batch.model_id, batch.model_version)
            if version is None:
                reason = (
                    f"model {batch.model_id!r} version {batch.model_version!r} is not registered"
                )
                self.rejects.extend((messages[int(i)], reason) for i in batch.rows)
                continue
            reference_version = version.reference.version if version.reference else 0
            key = (version.model_id, version.version, reference_version)
            pending = self.pending.get(key)
            if pending is None:
                pending = self.pending[key] = PartialBuilder(version)
            size = None if version.drift.window_events else self.policy.size(version)
            pending.add(batch, partitions[batch.rows], size)
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            self.first_offsets.setdefault(tp, m.offset)
            self.offsets[tp] = self.expected[tp] = m.offset + 1
        self.events += len(messages)

    async def _flush_safely(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("flush failed; re-reading from the last committed offsets")
            await self._rewind()

    async def flush(self) -> None:
        """Write the partials, dead letters and offsets in one transaction."""
        if not self.offsets:
            return
        assert self.producer is not None and self.consumer is not None
        topic_partitions = len(self.consumer.partitions_for_topic(PREDICTIONS.name) or ())
        partials = [p.partial(topic_partitions) for p in self.pending.values()]
        async with self.producer.transaction():
            sends = [
                await self.producer.send(
                    self.partials.name,
                    key=f"{p.model_id}/{p.model_version}".encode(),
                    value=p.to_bytes(),
                )
                for p in partials
            ]
            for message, reason in self.rejects:
                headers = [
                    ("vigil.reason", reason.encode()),
                    ("vigil.source.topic", message.topic.encode()),
                    ("vigil.source.partition", str(message.partition).encode()),
                    ("vigil.source.offset", str(message.offset).encode()),
                ]
                sends.append(
                    await self.producer.send(
                        DEADLETTER.name, key=message.key, value=message.value, headers=headers
                    )
                )
            await asyncio.gather(*sends)
            await self.producer.send_offsets_to_transaction(dict(self.offsets), self.group)
        if self.rejects:
            log.warning("dead-lettered %d events; first: %s", len(self.rejects), self.rejects[0][1])
        self.flushed_events += self.events
        self._clear()
        self.last_commit = self.last_flush

    def _clear(self) -> None:
        self.pending.clear()
        self.rejects.clear()
        self.offsets.clear()
        self.events = 0
        self.last_flush = time.monotonic()

    async def _rewind(self) -> None:
        """Forget what was not committed and read it again."""
        self._clear()
        assert self.consumer is not None
        owned = self.assignment
        if owned:
            committed = {tp: await self.consumer.committed(tp) for tp in owned}
            for tp, offset in committed.items():
                start = offset if offset is not None else self.first_offsets.get(tp)
                self.expected[tp] = start
                if start is not None:
                    self.consumer.seek(tp, start)

    # Rebalances: hand over only committed work.
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            await self._flush_safely()
            for tp in revoked:
                self.expected.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        async with self.lock:
            for tp in assigned:  # None until known: a new group starts where the reset puts it
                self.expected[tp] = await self.consumer.committed(tp)
        log.info("profiling prediction partitions %s", sorted(tp.partition for tp in assigned))
