"""The feedback service's adapters: feedback stored at most once, by id, on Kafka."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import cached_property

from feedback import metrics
from feedback.config import Settings
from vigil.adapters.idempotent_topic import IdempotentTopic, IngestAdapters
from vigil.wire.topics import FEEDBACK

__all__ = ["FeedbackLog"]


class FeedbackLog(IngestAdapters):
    """The feedback service's adapters: the feedback bus, the model catalog, idempotency keys."""

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> FeedbackLog:
        keys = (
            settings.feedback_redis_prefix,
            settings.feedback_dedup_window_seconds,
            settings.feedback_pending_seconds,
        )
        return await cls.open_on(stack, settings, "vigil-feedback", keys)

    @cached_property
    def feedback(self) -> IdempotentTopic:
        """The feedback topic, written at most once per (prediction_id, feedback_id)."""
        return IdempotentTopic(self.bus, self.keys, FEEDBACK.name, "feedback_ids", metrics.REJECTED)
