"""A compacted single-partition topic read from the beginning and followed, record by record.

``RecordFollower`` is the common case: Avro records keyed by their own id, where a record
the follower cannot trust is ignored and counted by reason — ``key_not_utf8``, ``undecodable``,
``key_mismatch`` (the Kafka key is not the record's own: such a record would survive
compaction and shadow the real one), ``unprocessable`` — and the follower always goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import Counter
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter as Metric

from vigil.adapters.kafka_security import Kafka, client_options, start_client
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Record

__all__ = ["RecordFollower", "TopicFollower"]

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Record)


class TopicFollower(ABC):
    """Applies every record of partition 0 of ``topic``; ``catch_up`` waits for the end.

    Subclasses say what a record does (``_apply``) and may count what they ignore.
    """

    def __init__(
        self, kafka: Kafka, topic: str, name: str, ignored: Metric, read_committed: bool = False
    ) -> None:
        self._tp = TopicPartition(topic, 0)
        self._kafka = kafka
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka),
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed" if read_committed else "read_uncommitted",
            # A catch-up's offset request waits behind the idle fetch: keep that wait short.
            fetch_max_wait_ms=100,
        )
        self._name = name
        self._metric = ignored
        self._task: asyncio.Task[None] | None = None
        self._position = 0
        self._advanced = asyncio.Event()
        self.ignored: Counter[str] = Counter()  # records ignored, by reason

    async def start(self) -> None:
        """Start following and return once everything published so far is applied."""
        await start_client(self._consumer, self._kafka)
        partitions = self._consumer.partitions_for_topic(self._tp.topic)
        if partitions is not None and len(partitions) != 1:
            await self._consumer.stop()
            raise RuntimeError(
                f"{self._tp.topic} has {len(partitions)} partitions where Vigil reads one: it"
                " was probably created by a write before `make topics` (python -m"
                " vigil.adapters.bus) created it; recreate it with one partition"
            )
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        self._task = asyncio.create_task(self._follow(), name=self._name)
        await self.catch_up()

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def catch_up(self) -> None:
        """Wait (up to 10 s) until every record published before this call has been applied."""
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        async with asyncio.timeout(10):
            while self._position < end:
                self._advanced.clear()
                await self._advanced.wait()

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(self._tp, timeout_ms=500)
            for message in batches.get(self._tp, []):
                self._apply(message.key, message.value)
            self._position = await self._consumer.position(self._tp)
            self._advanced.set()

    @abstractmethod
    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record; never raise (a record that cannot be applied is ignored)."""

    def _ignore(self, reason: str) -> None:
        self.ignored[reason] += 1
        self._metric.labels(reason).inc()


class RecordFollower(TopicFollower, Generic[R]):
    """Follows a topic of ``codec``'s records, each keyed by its ``record_key``."""

    def __init__(
        self,
        kafka: Kafka,
        topic: str,
        name: str,
        ignored: Metric,
        codec: Codec[R],
        read_committed: bool = False,
    ) -> None:
        super().__init__(kafka, topic, name, ignored, read_committed)
        self._codec = codec

    @abstractmethod
    def record_key(self, record: R) -> str:
        """The Kafka key ``record`` must have."""

    @abstractmethod
    def _put(self, record: R) -> None:
        """Keep a record (the latest of its key)."""

    @abstractmethod
    def _remove(self, key: str) -> None:
        """Forget the record of ``key`` (a tombstone)."""

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            reason = self._take(key, value)
        except Exception:  # one record must never stop the follower of every service
            log.exception("ignoring a record of %s it could not apply", self._tp.topic)
            reason = "unprocessable"
        if reason is not None:
            self._ignore(reason)

    def _take(self, key: bytes | None, value: bytes | None) -> str | None:
        """Apply one record; the reason it was ignored, or None."""
        try:
            text = None if key is None else key.decode()
        except UnicodeDecodeError:
            log.warning("ignoring a record of %s whose key is not UTF-8", self._tp.topic)
            return "key_not_utf8"
        if value is None:  # a tombstone
            if text:
                self._remove(text)
            return None
        try:
            record = self._codec.decode(value)
        except DecodeError as exc:
            log.error("skipping an unreadable record on %s: %s", self._tp.topic, exc.reason)
            return "undecodable"
        if text != self.record_key(record):
            log.warning("ignoring %s keyed %r on %s", self.record_key(record), text, self._tp.topic)
            return "key_mismatch"
        self._put(record)
        return None
