"""The feedback service's adapters: feedback stored at most once, by id, on Kafka; the review
queue beside it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from functools import cached_property

from feedback import metrics, review_worker
from feedback.config import Settings
from feedback.review_worker import ReviewDesk
from vigil.adapters.idempotent_topic import IdempotentTopic, IngestAdapters
from vigil.wire.topics import FEEDBACK

__all__ = ["FeedbackLog"]


@dataclass(frozen=True)
class FeedbackLog(IngestAdapters):
    """The feedback service's adapters: the feedback bus, the model catalog, idempotency keys,
    and the review queue (None when it is not running)."""

    review: ReviewDesk | None = None

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> FeedbackLog:
        keys = (
            settings.feedback_redis_prefix,
            settings.feedback_dedup_window_seconds,
            settings.feedback_pending_seconds,
        )
        log = await cls.open_on(stack, settings, "vigil-feedback", keys)
        if not settings.feedback_review_enabled:
            return log
        review = await review_worker.start(stack, settings, log.catalog, log.bus)
        return replace(log, review=review)

    @cached_property
    def feedback(self) -> IdempotentTopic:
        """The feedback topic, written at most once per (prediction_id, feedback_id)."""
        return IdempotentTopic(self.bus, self.keys, FEEDBACK.name, "feedback_ids", metrics.REJECTED)
