"""Reads the audit trail (``vigil.audit.v1``, one partition, kept forever) newest first.

A page is read backwards from a cursor (an offset) in chunks, so a query costs what it reads,
not the size of the whole trail; ``since`` becomes a starting offset through Kafka's time
index. Undecodable records are skipped (and logged): they are still on the topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from vigil.adapters.kafka_security import Kafka, client_options, start_client
from vigil.adapters.ports import AuditLog, AuditPage
from vigil.wire.access import AuditEvent
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.topics import AUDIT

__all__ = ["KafkaAuditLog"]

log = logging.getLogger(__name__)
CHUNK = 500
# A page stops after reading this many records even if it found fewer than asked: the
# client continues from the cursor.
MAX_SCAN = 50_000


class KafkaAuditLog(AuditLog):
    """Pages of the audit topic, read on demand by one consumer with no group."""

    def __init__(self, kafka: Kafka, topic: str = AUDIT.name) -> None:
        self._tp = TopicPartition(topic, 0)
        self._kafka = kafka
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka), enable_auto_commit=False, group_id=None
        )
        self._codec = Codec(AuditEvent)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await start_client(self._consumer, self._kafka)
        self._consumer.assign([self._tp])

    async def stop(self) -> None:
        await self._consumer.stop()

    async def page(
        self,
        before: int | None,
        limit: int,
        since: datetime | None,
        match: Callable[[AuditEvent], bool],
    ) -> AuditPage:
        async with self._lock:
            first = await self._first_offset(since)
            end = int((await self._consumer.end_offsets([self._tp]))[self._tp])
            cursor = end if before is None else min(before, end)
            found: list[AuditEvent] = []
            scanned = 0
            while cursor > first and len(found) < limit and scanned < MAX_SCAN:
                start = max(first, cursor - CHUNK)
                chunk = await self._read(start, cursor)
                scanned += cursor - start
                for offset, event in reversed(chunk):
                    cursor = offset
                    if match(event):
                        found.append(event)
                        if len(found) == limit:
                            break
                else:
                    cursor = start
            return AuditPage(found, cursor if cursor > first else None)

    async def _first_offset(self, since: datetime | None) -> int:
        beginning = int((await self._consumer.beginning_offsets([self._tp]))[self._tp])
        if since is None:
            return beginning
        found = await self._consumer.offsets_for_times({self._tp: int(since.timestamp() * 1000)})
        at = found.get(self._tp)
        if at is None:  # nothing that recent
            return int((await self._consumer.end_offsets([self._tp]))[self._tp])
        return max(beginning, int(at.offset))

    async def _read(self, start: int, stop: int) -> list[tuple[int, AuditEvent]]:
        """Records with offsets in [start, stop), decoded."""
        self._consumer.seek(self._tp, start)
        out: list[tuple[int, AuditEvent]] = []
        position = start
        while position < stop:
            batches = await self._consumer.getmany(self._tp, timeout_ms=1000)
            messages = batches.get(self._tp, [])
            if not messages:
                break
            for message in messages:
                position = message.offset + 1
                if message.offset >= stop:
                    break
                if message.value is None:
                    continue
                try:
                    out.append((message.offset, self._codec.decode(message.value)))
                except DecodeError as exc:
                    log.error("audit record at offset %d unreadable: %s", message.offset, exc)
        return out
