"""The latest revision of each window's ``PerformanceReport``, per model version, for
``GET /v1/models/{id}/versions/{v}/performance`` (``registry.performance``).

The feedback joiner's reporter publishes a window's report again at every revision, on
``vigil.metrics.v1`` beside the drift reports. An indexer in each registry process (consumer
group ``VIGIL_REGISTRY_PERFORMANCE_GROUP``, from the start of the topic) keeps, per model
version, the newest revision of each window in a Redis hash (one field per window start,
written only over an older revision, so replays and several replicas are harmless). Redis can
be flushed: reset the group's offsets and it is rebuilt from the topic, as far back as the
topic keeps.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import cast

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from registry.config import Settings
from vigil.adapters.kafka_security import Kafka, client_options, start_client
from vigil.adapters.tasks import stop_tasks
from vigil.wire.avro import known_writer_schemas
from vigil.wire.base import as_utc
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.performance import PerformanceReport

__all__ = [
    "MemoryPerformanceIndex",
    "PerformanceIndex",
    "RedisPerformanceIndex",
    "index_reports",
    "open_index",
    "within",
]

log = logging.getLogger(__name__)

REPORTS = Codec(PerformanceReport)
_FINGERPRINTS = frozenset(known_writer_schemas("PerformanceReport"))
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS[1] the version's hash, ARGV: window field, revision, report JSON. Kept only over an
# older revision: "<revision>|<json>".
_NEWER = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local revision = tonumber(string.match(current, '^(%d+)|'))
  if revision and revision >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""


class PerformanceIndex(ABC):
    """The latest revision of every window's report, per model version."""

    @abstractmethod
    async def put(self, report: PerformanceReport) -> bool:
        """Keep ``report`` unless a revision as new is kept; whether it was kept."""

    @abstractmethod
    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        """Every window's latest report of a version, by window start."""


class MemoryPerformanceIndex(PerformanceIndex):
    """In this process only (a registry run without Redis, e.g. on test adapters)."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str, datetime], PerformanceReport] = {}

    async def put(self, report: PerformanceReport) -> bool:
        key = (report.model_id, report.model_version, as_utc(report.window_start))
        if key in self.kept and self.kept[key].revision >= report.revision:
            return False
        self.kept[key] = report
        return True

    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        found = [r for (m, v, _), r in self.kept.items() if (m, v) == (model_id, version)]
        return sorted(found, key=lambda r: as_utc(r.window_start))


class RedisPerformanceIndex(PerformanceIndex):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._newer = redis.register_script(_NEWER)

    def _key(self, model_id: str, version: str) -> str:
        return f"{self.prefix}{model_id}/{version}"

    async def put(self, report: PerformanceReport) -> bool:
        field = str((as_utc(report.window_start) - _EPOCH) // _MICROSECOND)
        key = self._key(report.model_id, report.model_version)
        kept = await self._newer(
            keys=[key], args=[field, report.revision, report.model_dump_json()]
        )
        return bool(kept)

    async def windows(self, model_id: str, version: str) -> list[PerformanceReport]:
        found = cast(dict[bytes, bytes], await self.redis.hgetall(self._key(model_id, version)))
        reports = [
            PerformanceReport.model_validate_json(value.split(b"|", 1)[1])
            for value in found.values()
        ]
        return sorted(reports, key=lambda r: as_utc(r.window_start))


def within(
    reports: Sequence[PerformanceReport], since: datetime | None, until: datetime | None
) -> list[PerformanceReport]:
    """The reports of windows that end after ``since`` and start before ``until``."""
    return [
        r
        for r in reports
        if (since is None or as_utc(r.window_end) > as_utc(since))
        and (until is None or as_utc(r.window_start) < as_utc(until))
    ]


def is_performance_report(value: bytes | None) -> bool:
    """Whether a record of the metrics topic is a PerformanceReport (read without decoding)."""
    return value is not None and value[:2] == b"\xc3\x01" and value[2:10] in _FINGERPRINTS


async def index_reports(kafka: Kafka, topic: str, group: str, index: PerformanceIndex) -> None:
    """Keep ``index`` up to date with the performance reports of ``topic``, until cancelled."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await start_client(consumer, kafka)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    if not is_performance_report(record.value):
                        continue
                    try:
                        report = REPORTS.decode(record.value)
                    except DecodeError as exc:
                        log.warning("performance report at %d ignored: %s", record.offset, exc)
                        continue
                    await index.put(report)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


async def open_index(stack: AsyncExitStack, settings: Settings) -> PerformanceIndex:
    """The Redis index, with its indexer running until ``stack`` closes."""
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    stack.push_async_callback(redis.aclose)
    index = RedisPerformanceIndex(redis, settings.registry_performance_redis_prefix)
    task = asyncio.create_task(
        index_reports(
            settings.kafka,
            settings.registry_metrics_topic,
            settings.registry_performance_group,
            index,
        ),
        name="performance-index",
    )
    stack.push_async_callback(stop_tasks, [task])
    return index
