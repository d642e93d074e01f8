"""The prediction logger's adapters: events stored at most once, by id, on Kafka."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import cached_property

from prediction_logger import metrics
from prediction_logger.config import Settings
from prediction_logger.handlers import Event
from vigil.adapters.idempotency import scoped_id
from vigil.adapters.idempotent_topic import IdempotentTopic, IngestAdapters, Message
from vigil.wire.topics import PREDICTIONS

__all__ = ["Message", "PredictionLog"]


class PredictionLog(IngestAdapters):
    """The logger's adapters: the predictions bus, the model catalog, idempotency keys."""

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> PredictionLog:
        keys = (
            settings.prediction_logger_redis_prefix,
            settings.prediction_logger_dedup_window_seconds,
            settings.prediction_logger_pending_seconds,
        )
        return await cls.open_on(stack, settings, "vigil-prediction-logger", keys)

    @cached_property
    def predictions(self) -> IdempotentTopic:
        """The predictions topic, written at most once per (model_id, prediction_id)."""
        return IdempotentTopic(
            self.bus, self.keys, PREDICTIONS.name, "prediction_ids", metrics.REJECTED
        )

    async def store_once(
        self, events: list[Event], messages: list[Message], wait_seconds: float
    ) -> list[Event]:
        """Store the events (encoded as ``messages``) whose ids were not stored within the
        window; returns those. 503 if Kafka or Redis fails (see ``IdempotentTopic.write``)."""
        keys = [scoped_id(e["model_id"], e["prediction_id"]) for e in events]
        new = await self.predictions.write(keys, messages, wait_seconds)
        return [events[i] for i in new]
