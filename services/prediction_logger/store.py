"""The prediction logger's adapters: events stored at most once, by id, on Kafka."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from redis.asyncio import Redis

from prediction_logger import metrics
from prediction_logger.config import Settings
from prediction_logger.handlers import Event
from vigil.adapters.bus import KafkaBus, PerMessageBus, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected
from vigil.adapters.idempotency import IdempotencyKeys, scoped_id
from vigil.adapters.ports import Catalog, IdempotencyStore, Unavailable
from vigil.wire.topics import PREDICTIONS

__all__ = ["MAX_BATCH_BYTES", "Message", "PredictionLog", "partly_stored", "unavailable"]

# One record batch per partition per request: 1,000 events of 20 features take ~330 kB in all.
# Below the broker's default 1 MB message.max.bytes.
MAX_BATCH_BYTES = 512 * 1024
Message = tuple[bytes, bytes]


@dataclass(frozen=True)
class PredictionLog:
    """The logger's adapters: the predictions bus, the model catalog, idempotency keys."""

    bus: PerMessageBus
    catalog: Catalog
    keys: IdempotencyStore
    _settling: set[asyncio.Future[None]] = field(default_factory=set)

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> PredictionLog:
        redis = Redis.from_url(settings.idempotency_url)
        stack.push_async_callback(redis.aclose)
        keys = IdempotencyKeys(
            redis,
            settings.prediction_logger_redis_prefix,
            settings.prediction_logger_dedup_window_seconds,
            pending_seconds=settings.prediction_logger_pending_seconds,
        )
        bus = await KafkaBus.open(stack, settings.kafka, "vigil-prediction-logger", MAX_BATCH_BYTES)
        return cls(bus, await started(stack, ModelCatalogFollower(settings.kafka)), keys)

    async def store_once(
        self, events: list[Event], messages: list[Message], wait_seconds: float
    ) -> list[Event]:
        """Store the events (encoded as ``messages``) whose ids were not stored within the
        window; returns those.

        Answers 503 if Kafka has not acknowledged them all within ``wait_seconds``; the ids
        of those it did acknowledge are confirmed all the same, so a resend stores the others.
        """
        keys = [scoped_id(e["model_id"], e["prediction_id"]) for e in events]
        new = await self._claim(keys)
        keys = [keys[i] for i in new]
        write = asyncio.ensure_future(
            self.bus.send_each(PREDICTIONS.name, [messages[i] for i in new])
        )
        try:
            stored = await asyncio.wait_for(asyncio.shield(write), wait_seconds)
        except TimeoutError:
            # The producer keeps retrying; its outcome settles the keys, so a resend of these
            # ids meanwhile is told to retry, and afterwards is stored or reported a duplicate.
            write.add_done_callback(lambda done: self._settle_later(keys, done))
            metrics.REJECTED.labels("kafka_unavailable").inc(len(keys))
            raise InputRejected(
                f"Kafka has not acknowledged the write within {wait_seconds:g} s; resend the same"
                " prediction_ids after Retry-After: they are stored at most once",
                [],
                503,
                {"Retry-After": "5"},
            ) from None
        except Unavailable as exc:
            await self.keys.release(keys)
            raise unavailable(exc, len(keys)) from exc
        await self._settle(keys, stored)
        if not all(stored):
            raise partly_stored(stored.count(False), len(stored))
        return [events[i] for i in new]

    async def _claim(self, keys: list[str]) -> list[int]:
        """Which keys are now this request's to store, by index; 503 if any is in flight."""
        try:
            claims = await self.keys.claim(keys)
        except Unavailable as exc:
            raise unavailable(exc, len(keys)) from exc
        new = [i for i, c in enumerate(claims) if c == "new"]
        if "pending" in claims:
            await self.keys.release([keys[i] for i in new])
            raise InputRejected(
                "some prediction ids are being stored by another request; retry shortly",
                [],
                503,
                {"Retry-After": "1"},
            )
        return new

    async def _settle(self, keys: list[str], stored: list[bool]) -> None:
        """Confirm the keys of the events Kafka stored; give back the others'."""
        if all(stored):
            await self.keys.confirm(keys)
            return
        await self.keys.confirm([k for k, ok in zip(keys, stored, strict=True) if ok])
        await self.keys.release([k for k, ok in zip(keys, stored, strict=True) if not ok])

    def _settle_later(self, keys: list[str], write: asyncio.Future[list[bool]]) -> None:
        failed = write.cancelled() or write.exception() is not None
        stored = [False] * len(keys) if failed else write.result()
        task = asyncio.ensure_future(self._settle(keys, stored))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


def partly_stored(failed: int, sent: int) -> InputRejected:
    """The 503 answer when Kafka stored only some of the events, counted."""
    metrics.REJECTED.labels("kafka_unavailable").inc(failed)
    return InputRejected(
        f"Kafka did not store {failed} of {sent} event(s); resend the same prediction_ids"
        " after Retry-After: those already stored are counted as duplicates",
        [],
        503,
        {"Retry-After": "5"},
    )


def unavailable(exc: Unavailable, events: int) -> InputRejected:
    """The 503 answer when Kafka or Redis is down, counted."""
    metrics.REJECTED.labels(f"{exc.backend.lower()}_unavailable").inc(events)
    return InputRejected(f"{exc}; nothing was stored, retry later", [], 503, {"Retry-After": "5"})
