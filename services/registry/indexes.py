"""The registry's indexes of the metrics topic, in Redis, fed by one consumer."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from redis.asyncio import Redis

from registry.config import Settings
from registry.drift_index import DriftIndex
from registry.drift_redis import RedisDriftIndex
from registry.metrics_feed import index_reports
from registry.performance_index import PerformanceIndex, RedisPerformanceIndex
from vigil.adapters.tasks import stop_tasks

__all__ = ["open_indexes"]


async def open_indexes(
    stack: AsyncExitStack, settings: Settings
) -> tuple[PerformanceIndex, DriftIndex]:
    """The performance and drift indexes, with their feed running until ``stack`` closes."""
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    stack.push_async_callback(redis.aclose)
    performance = RedisPerformanceIndex(redis, settings.registry_performance_redis_prefix)
    drift = RedisDriftIndex(
        redis, settings.registry_drift_redis_prefix, settings.registry_drift_window_days
    )
    feed = index_reports(
        settings.kafka,
        settings.registry_metrics_topic,
        settings.registry_metrics_group,
        performance,
        drift,
    )
    task = asyncio.create_task(feed, name="metrics-feed")
    stack.push_async_callback(stop_tasks, [task])
    return performance, drift
