"""The joiner's stream edges: the join (predictions and feedback in; outcomes, the changelog
and performance deltas out, in one transaction with the consumed offsets) and the reporter
(deltas in, PerformanceReports and window states out). ``feedback_joiner.handlers`` and
``feedback_joiner.reporting`` are the logic."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta

from feedback_joiner.config import Settings
from feedback_joiner.handlers import Joining, Topics
from feedback_joiner.reporting import Reporting
from feedback_joiner.store import MIB, RocksJoinStore
from vigil.adapters.bus import ensure_topics, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.ports import Catalog
from vigil.adapters.stage import Stage, StageConfig
from vigil.adapters.tasks import stop_tasks
from vigil.wire.topics import (
    FEEDBACK,
    JOINS,
    METRICS,
    OUTCOMES,
    PERFORMANCE_PARTIALS,
    PERFORMANCE_WINDOWS,
    PREDICTIONS,
)

__all__ = ["joiner_stage", "main", "reporter_stage"]


def joiner_stage(settings: Settings, store: RocksJoinStore, versions: Catalog) -> Stage:
    """The joiner as a transactional stage with a changelog."""
    topics = Topics(
        predictions=settings.joiner_predictions_topic,
        feedback=settings.joiner_feedback_topic,
        outcomes=settings.joiner_outcomes_topic,
        changelog=settings.joiner_changelog_topic,
        partials=settings.joiner_partials_topic,
    )
    config = StageConfig(
        name="feedback-joiner",
        kafka=settings.kafka,
        group_id=settings.joiner_group_id,
        topics=(topics.predictions, topics.feedback),
        transactional_id=f"{settings.joiner_group_id}-{settings.joiner_worker_id}-join",
        changelog=topics.changelog,
        changelog_streamed=True,
        auto_offset_reset=settings.joiner_auto_offset_reset,
        session_timeout_ms=round(settings.joiner_session_timeout_seconds * 1000),
    )
    logic = Joining(
        store,
        topics,
        timedelta(seconds=settings.joiner_label_horizon_seconds),
        flush_seconds=settings.joiner_flush_seconds,
        sweep_seconds=settings.joiner_sweep_seconds,
        versions=versions,
        window_seconds=settings.joiner_window_seconds,
    )
    return Stage(config, logic)


def reporter_stage(settings: Settings, versions: Catalog) -> Stage:
    """The performance reporter as a transactional stage with a changelog."""
    config = StageConfig(
        name="performance-reporter",
        kafka=settings.kafka,
        group_id=f"{settings.joiner_group_id}-report",
        topics=(settings.joiner_partials_topic,),
        transactional_id=f"{settings.joiner_group_id}-{settings.joiner_worker_id}-report",
        changelog=settings.joiner_windows_topic,
        auto_offset_reset="earliest",
    )
    logic = Reporting(
        settings.joiner_metrics_topic,
        settings.joiner_windows_topic,
        report_seconds=settings.joiner_report_seconds,
        versions=versions,
    )
    return Stage(config, logic)


async def main(settings: Settings) -> None:
    """Join until cancelled."""
    await ensure_topics(
        settings.kafka,
        [
            replace(PREDICTIONS, name=settings.joiner_predictions_topic),
            replace(FEEDBACK, name=settings.joiner_feedback_topic),
            replace(OUTCOMES, name=settings.joiner_outcomes_topic),
            replace(JOINS, name=settings.joiner_changelog_topic),
            replace(PERFORMANCE_PARTIALS, name=settings.joiner_partials_topic),
            replace(PERFORMANCE_WINDOWS, name=settings.joiner_windows_topic),
            replace(METRICS, name=settings.joiner_metrics_topic),
        ],
    )
    async with AsyncExitStack() as stack:
        store = RocksJoinStore(settings.joiner_state_dir, settings.joiner_block_cache_mb * MIB)
        stack.callback(store.close)
        versions = await started(stack, ModelCatalogFollower(settings.kafka))
        joiner = await started(stack, joiner_stage(settings, store, versions))
        reporter = await started(stack, reporter_stage(settings, versions))
        tasks = [
            asyncio.create_task(joiner.run(), name="feedback-joiner"),
            asyncio.create_task(reporter.run(), name="performance-reporter"),
        ]
        try:
            # Either stopping stops both: the process exits and is restarted whole.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            await stop_tasks(tasks)
