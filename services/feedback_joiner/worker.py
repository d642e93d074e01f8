"""The joiner's stream edge: predictions and feedback in, outcomes and the changelog out, in
one transaction with the consumed offsets (``feedback_joiner.handlers`` is the logic)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta

from feedback_joiner.config import Settings
from feedback_joiner.handlers import Joining, Topics
from feedback_joiner.store import RocksJoinStore
from vigil.adapters.bus import ensure_topics, started
from vigil.adapters.stage import Stage, StageConfig
from vigil.wire.topics import FEEDBACK, JOINS, OUTCOMES, PREDICTIONS

__all__ = ["joiner_stage", "main"]


def joiner_stage(settings: Settings, store: RocksJoinStore) -> Stage:
    """The joiner as a transactional stage with a changelog."""
    topics = Topics(
        predictions=settings.joiner_predictions_topic,
        feedback=settings.joiner_feedback_topic,
        outcomes=settings.joiner_outcomes_topic,
        changelog=settings.joiner_changelog_topic,
    )
    config = StageConfig(
        name="feedback-joiner",
        kafka=settings.kafka,
        group_id=settings.joiner_group_id,
        topics=(topics.predictions, topics.feedback),
        transactional_id=f"{settings.joiner_group_id}-{settings.joiner_worker_id}-join",
        changelog=topics.changelog,
        auto_offset_reset="earliest",
    )
    logic = Joining(
        store,
        topics,
        timedelta(seconds=settings.joiner_label_horizon_seconds),
        flush_seconds=settings.joiner_flush_seconds,
        sweep_seconds=settings.joiner_sweep_seconds,
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
        ],
    )
    async with AsyncExitStack() as stack:
        store = RocksJoinStore(settings.joiner_state_dir)
        stack.callback(store.close)
        stage = await started(stack, joiner_stage(settings, store))
        await stage.run()
