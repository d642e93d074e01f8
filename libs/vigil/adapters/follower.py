"""A compacted single-partition topic read from the beginning and followed, record by record."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import Counter

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter as Metric

__all__ = ["TopicFollower"]


class TopicFollower(ABC):
    """Applies every record of partition 0 of ``topic``; ``catch_up`` waits for the end.

    Subclasses say what a record does (``_apply``) and may count what they ignore.
    """

    def __init__(
        self, bootstrap: str, topic: str, name: str, ignored: Metric, read_committed: bool = False
    ) -> None:
        self._tp = TopicPartition(topic, 0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
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
        await self._consumer.start()
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
