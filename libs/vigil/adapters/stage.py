"""Runs a stream stage's logic (``vigil.adapters.stage_logic``) against Kafka.

Consumes with ``getmany``; skips records below the next expected offset (fetched again around a
rebalance or a rewind); flushes what the logic hands back, dead letters and the consumed offsets
in one transaction of a producer whose ``transactional_id`` names the app, worker and role, so a
crash or a ``kill -9`` at any moment re-reads exactly the records whose work was not committed.
A brand-new group's start position is committed before anything is read ("latest" is decided
once). After a failed flush the stage rewinds to the committed offsets and reloads its state.
On a rebalance it settles pending work before partitions go, and reloads state (from its
changelog) when they come. Without a ``transactional_id`` it commits offsets after the logic's
flush returned (its output is durable elsewhere, e.g. files) and sends dead letters first.

A flush that fails is retried (rewind, reload, re-read) forever only when the cause is an
outage (Kafka or Redis not answering). Otherwise, after ``max_flush_failures`` failures in a
row, the logic names the culprit records (``StageLogic.culprits``; Kafka's refusal of one
output record is passed to it); they are dead-lettered, not absorbed, when read again. If it
names none, the stage stops with a critical log (``StageStuck``) instead of spinning. After a
failure that is not an outage the producer is replaced by a new one of the same transactional
id: one whose batch Kafka refused keeps sequence numbers the broker no longer expects. Output
goes out in batches per partition (``vigil.adapters.stage_send``), one by one after a failed
flush so that a refused record is named. A dead letter over the dead-letter topic's limit keeps
its first bytes (header ``vigil.original.size``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from vigil.adapters.kafka_security import Kafka, client_options
from vigil.adapters.metrics import StageMetrics
from vigil.adapters.ports import Unavailable
from vigil.adapters.schema_topic import join_schema_topic, leave_schema_topic
from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    FlushFailures,
    Incoming,
    OffsetBook,
    Output,
    Restore,
    SendFailed,
    StageLogic,
    StageStuck,
    TopicPartitionKey,
)
from vigil.adapters.stage_send import send_output, stage_producer

__all__ = ["Stage", "StageConfig", "is_outage", "read_changelog", "stream_changelog"]

log = logging.getLogger(__name__)
# What Kafka answers about the records themselves: sending them again fails again.
REFUSALS = (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a back end misbehaved (retry) rather than refused the data: any
    Kafka or connection error but a refusal of the records; a logic error is no outage."""
    cause = exc.cause if isinstance(exc, SendFailed) else exc
    if isinstance(cause, REFUSALS):
        return False
    return isinstance(cause, KafkaError | Unavailable | ConnectionError | TimeoutError)


@dataclass(frozen=True)
class StageConfig:
    """Where a stage reads and how it commits."""

    name: str  # its role, for logs and client ids
    kafka: Kafka  # a KafkaConnection, or bootstrap servers (PLAINTEXT)
    group_id: str
    topics: tuple[str, ...]
    # "<app>-<worker>-<role>": a restarted worker fences its dead predecessor at once. None:
    # commit offsets directly after each flush (the output is made durable by the logic).
    transactional_id: str | None
    changelog: str | None = None  # compacted topic read back into the logic on assignment
    # Hand the changelog over as a stream of batches (``Assigned.restore``) rather than its
    # latest records in memory: for state larger than memory should hold.
    changelog_streamed: bool = False
    auto_offset_reset: str = "earliest"
    fetch_records: int = 20_000
    fetch_timeout_ms: int = 200
    max_partition_fetch_bytes: int = 8 * 1024 * 1024
    fetch_max_bytes: int = 64 * 1024 * 1024
    # Failed flushes in a row (not outages) before the culprits are dead-lettered.
    max_flush_failures: int = 3
    # A member the broker hears nothing from for this long leaves the group. No heartbeat goes
    # out while ``on_assigned`` restores state, so a stage with a large changelog needs more
    # than the default (a dead worker's partitions also wait this long to move).
    session_timeout_ms: int = 10_000


class Stage(ConsumerRebalanceListener):  # type: ignore[misc]
    """One stage's consumer, producer and offsets around its ``StageLogic``."""

    def __init__(self, config: StageConfig, logic: StageLogic) -> None:
        self.config = config
        self.logic = logic
        self.lock = asyncio.Lock()
        self.offsets = OffsetBook()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.producer_started = False
        self.pending_dead: list[DeadLetter] = []  # from on_assigned, sent with the next flush
        self.dead_lettered = 0
        self.failures = FlushFailures(config.max_flush_failures)
        # Monotonic times of the first record absorbed and of the last commit (throughput).
        self.first_read: float | None = None
        self.last_commit: float | None = None
        # True once partitions are assigned and their start positions known: records produced
        # from then on are read, even by a new group that starts at the end ("latest").
        self.ready = False
        self.joined = False  # to the schema topic (vigil.adapters.schema_topic)
        self.metrics = StageMetrics(config.name)  # its records in and out, lag, dead letters

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        c = self.config
        await join_schema_topic(c.kafka)  # our schemas registered, newer ones followed
        self.joined = True
        self.producer = self._new_producer()
        await self.producer.start()
        self.producer_started = True
        self.consumer = AIOKafkaConsumer(
            **client_options(c.kafka),
            group_id=c.group_id,
            client_id=f"{c.group_id}-{c.name}",
            enable_auto_commit=False,
            auto_offset_reset=c.auto_offset_reset,
            isolation_level="read_committed",
            max_partition_fetch_bytes=c.max_partition_fetch_bytes,
            fetch_max_bytes=c.fetch_max_bytes,
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=min(3000, c.session_timeout_ms // 3),
        )
        self.consumer.subscribe(list(c.topics), listener=self)
        await self.consumer.start()

    def _new_producer(self) -> AIOKafkaProducer:
        c = self.config
        return stage_producer(c.kafka, f"{c.group_id}-{c.name}", c.transactional_id)

    async def _renew_producer(self) -> None:
        """A producer whose send Kafka refused keeps sequence numbers the broker no longer
        expects (every later send fails, out of order): a new one, same transactional id,
        starts clean (its start fences the old)."""
        old, self.producer = self.producer, self._new_producer()
        self.producer_started = False
        if old is not None:
            with contextlib.suppress(Exception):
                await old.stop()
        await self._start_producer()

    async def _start_producer(self) -> None:
        """Start a renewed producer; if Kafka is not answering, the next flush tries again
        (and fails as an outage meanwhile)."""
        assert self.producer is not None
        try:
            await self.producer.start()
        except Exception:
            log.exception(
                "%s: could not start a new producer; trying again at the next flush", self
            )
            return
        self.producer_started = True

    async def stop(self) -> None:
        if self.consumer is not None:
            async with self.lock:
                await self._flush_safely()
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.joined:
            self.joined = False
            await leave_schema_topic(self.config.kafka)

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer else set()

    async def run(self) -> None:
        """Consume, absorb and flush until cancelled."""
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(
                timeout_ms=self.config.fetch_timeout_ms, max_records=self.config.fetch_records
            )
            async with self.lock:
                await self.metrics.fetched(self.consumer, batches)
                if self.offsets.unknown():
                    await self._pin_start(batches)
                self.ready = bool(self.assignment)
                records, quarantined = self.failures.screen(self.offsets.fresh(batches))
                self.pending_dead.extend(quarantined)
                if records:
                    if self.first_read is None:
                        self.first_read = time.monotonic()
                    await self.logic.absorb(records)
                if self.logic.due(time.monotonic()):
                    await self._flush_safely()

    # -- flushing -------------------------------------------------------------------------

    async def _pin_start(self, fetched: Mapping[TopicPartition, Sequence[Incoming]]) -> None:
        """Commit where a partition nobody committed yet starts (``auto_offset_reset``), so
        that a restart resumes there: "latest" is decided once, when the group first reads.
        That is the first record fetched, if any (the position is already past it)."""
        assert self.consumer is not None
        owned = self.assignment
        starts = {
            TopicPartition(*tp): (
                fetched[tp][0].offset if fetched.get(tp) else await self.consumer.position(tp)
            )
            for tp in self.offsets.unknown()
            if tp in owned
        }
        if starts:
            await self._commit(starts, Output())
        for tp, offset in starts.items():
            self.offsets.expected[tp] = offset

    async def _flush_safely(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            log.exception("%s: flush failed; re-reading from the last committed offsets", self)
            try:
                self.failures.failed(self.logic, exc, is_outage(exc))
            except StageStuck:
                log.critical("%s: the same flush keeps failing; stopping the stage", self)
                raise
            cause = exc.cause if isinstance(exc, SendFailed) else exc
            if not is_outage(exc) or isinstance(cause, OutOfOrderSequenceNumber):
                await self._renew_producer()
            await self._rewind()

    async def flush(self) -> None:
        """Send what the logic hands back, dead letters and offsets, all or nothing."""
        output = await self.logic.flush()
        output.dead_letters[:0] = self.pending_dead
        commit = self.offsets.to_commit(output)
        if not (commit or output.records or output.dead_letters):
            return
        await self._commit({TopicPartition(*tp): o for tp, o in commit.items()}, output)
        self.pending_dead.clear()
        self.failures.succeeded(output.dead_letters)
        self.offsets.done(commit.items())
        self.last_commit = time.monotonic()
        self.metrics.committed(output)
        if output.dead_letters:
            self.dead_lettered += len(output.dead_letters)
            log.warning(
                "%s: dead-lettered %d records; first: %s",
                self,
                len(output.dead_letters),
                output.dead_letters[0].reason,
            )
        self.logic.committed(output)

    async def _commit(self, offsets: dict[TopicPartition, int], output: Output) -> None:
        assert self.producer is not None and self.consumer is not None
        if not self.producer_started:
            await self.producer.start()  # renewed while Kafka was away
            self.producer_started = True
        if self.config.transactional_id is None:
            await self._send(output)
            if offsets:
                await self.consumer.commit(offsets)
            return
        async with self.producer.transaction():
            await self._send(output)
            if offsets:
                await self.producer.send_offsets_to_transaction(offsets, self.config.group_id)

    async def _send(self, output: Output) -> None:
        """Batched, unless the last flush failed: then one by one, to name a refused record."""
        assert self.producer is not None
        one_by_one = self.failures.count > 0
        await send_output(self.producer, output.records, output.dead_letters, one_by_one)

    async def _rewind(self) -> None:
        """Forget what was not committed, reload the state and read it all again."""
        owned = sorted(self.assignment)
        self.logic.on_revoked(owned)
        self.pending_dead.clear()  # the reload finds unreadable changelog records again
        await self._assign(owned)

    # -- rebalances: hand over only committed work ----------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            await self._flush_safely()
            self.logic.on_revoked(list(revoked))
            for tp in revoked:
                self.offsets.revoke(tp)
            self.metrics.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            await self._assign(sorted(assigned))
        log.info("%s: assigned %s", self, sorted(assigned))

    async def _assign(self, partitions: Sequence[TopicPartition]) -> None:
        assert self.consumer is not None
        committed: dict[TopicPartitionKey, int | None] = {}
        for tp in partitions:
            committed[tp] = offset = await self.consumer.committed(tp)
            self.offsets.assign(tp, offset)
            if offset is not None:  # None: a new group, started where the reset puts it
                self.consumer.seek(tp, offset)
        changelog: list[Incoming] = []
        restore: Restore | None = None
        numbers = {tp.partition for tp in partitions}
        if self.config.changelog and partitions and self.config.changelog_streamed:
            kafka, topic = self.config.kafka, self.config.changelog
            restore = partial(stream_changelog, kafka, topic, numbers)
        elif self.config.changelog and partitions:
            changelog = await read_changelog(self.config.kafka, self.config.changelog, numbers)
        counts = {t: len(self.consumer.partitions_for_topic(t) or ()) for t in self.config.topics}
        assigned = Assigned(list(partitions), committed, counts, changelog, restore)
        self.pending_dead.extend(await self.logic.on_assigned(assigned))

    def __str__(self) -> str:
        return self.config.name


async def stream_changelog(
    kafka: Kafka, topic: str, partitions: set[int]
) -> AsyncIterator[Sequence[Incoming]]:
    """Every committed record of ``partitions`` of ``topic`` (tombstones too), batch by batch,
    in offset order within a partition, up to the end at the time of the call."""
    reader = AIOKafkaConsumer(
        **client_options(kafka),
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=128 * 1024 * 1024,
    )
    await reader.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await reader.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                within = [r for r in records if r.offset < ends[tp]]
                if within:
                    yield within
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await reader.stop()


async def read_changelog(kafka: Kafka, topic: str, partitions: set[int]) -> list[Incoming]:
    """The latest committed record of every key in ``partitions`` of ``topic``, by offset."""
    latest: dict[tuple[int, bytes | None], Incoming] = {}
    async for records in stream_changelog(kafka, topic, partitions):
        for r in records:
            latest[(r.partition, r.key)] = r
    live = [r for r in latest.values() if r.value is not None]  # tombstones delete
    return sorted(live, key=lambda r: (r.partition, r.offset))
