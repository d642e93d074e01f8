"""The registry's performance index on the real broker and Redis: the latest revision of each
window, whatever order revisions come in, and nothing else of the metrics topic."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from registry.metrics_feed import index_reports
from registry.performance_index import RedisPerformanceIndex
from tests.kafka_tools import private_copy
from tests.samples import PERFORMANCE, REPORT
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import WindowReport
from vigil.wire.topics import METRICS

pytestmark = pytest.mark.integration


def _revision(window: int, revision: int) -> PerformanceReport:
    start = PERFORMANCE.window_start + timedelta(hours=window)
    return PERFORMANCE.model_copy(
        update={
            "window_start": start,
            "window_end": start + timedelta(hours=1),
            "revision": revision,
            "labelled": 100 * revision,
        }
    )


async def _run(settings: VigilSettings, topic: str, prefix: str) -> list[PerformanceReport]:
    records = [
        Codec(PerformanceReport).encode(_revision(0, 1)),
        Codec(PerformanceReport).encode(_revision(0, 3)),
        Codec(WindowReport).encode(REPORT),  # a drift report: not indexed
        Codec(PerformanceReport).encode(_revision(1, 2)),
        Codec(PerformanceReport).encode(_revision(0, 2)),  # late: an older revision
        b"not a record",
    ]
    producer = new_producer(settings.kafka_bootstrap, "test")
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(topic, value, key=b"credit-risk/1.0.0")
    finally:
        await producer.stop()
    redis = Redis.from_url(settings.redis_url)
    index = RedisPerformanceIndex(redis, prefix)
    group = f"test-performance-{uuid.uuid4().hex}"
    task = asyncio.create_task(index_reports(settings.kafka, topic, group, index))
    try:
        for _ in range(200):
            found = await index.windows("credit-risk", "1.0.0")
            if len(found) == 2 and found[0].revision == 3:
                await asyncio.sleep(1)  # and the late revision has been read too
                return await index.windows("credit-risk", "1.0.0")
            await asyncio.sleep(0.1)
        raise AssertionError(f"the index holds {await index.windows('credit-risk', '1.0.0')}")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()


def test_the_index_keeps_the_latest_revision_of_each_window(infra: VigilSettings) -> None:
    topic = private_copy(infra.kafka_bootstrap, METRICS, uuid.uuid4().hex[:8]).name
    found = asyncio.run(_run(infra, topic, f"test:performance:{uuid.uuid4().hex}:"))
    assert [(r.window_start, r.revision, r.labelled) for r in found] == [
        (_revision(0, 3).window_start, 3, 300),
        (_revision(1, 2).window_start, 2, 200),
    ]
    assert found[0] == _revision(0, 3)
