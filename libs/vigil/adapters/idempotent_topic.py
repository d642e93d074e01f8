"""Events written to a topic at most once per id within a window (the prediction logger's and
the feedback service's writes), and the adapters such an ingest API opens.

Each id is claimed in the ``IdempotencyStore`` before its event is sent, confirmed once Kafka
acknowledged it, and released if Kafka did not store it, so that a resend is stored rather
than taken for a duplicate. Every way a write can fail answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Self

from prometheus_client import Counter
from redis.asyncio import Redis

from vigil.adapters.bus import KafkaBus, PerMessageBus, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected
from vigil.adapters.idempotency import IdempotencyKeys
from vigil.adapters.ports import Catalog, IdempotencyStore, Unavailable
from vigil.adapters.settings import VigilSettings

__all__ = ["MAX_BATCH_BYTES", "IdempotentTopic", "IngestAdapters", "Message"]

# One record batch per partition per request: 1,000 events of 20 features take ~330 kB in all.
# Below the broker's default 1 MB message.max.bytes.
MAX_BATCH_BYTES = 512 * 1024

Message = tuple[bytes, bytes]


@dataclass(frozen=True)
class IdempotentTopic:
    """``topic`` on ``bus``, written at most once per id claimed in ``keys``.

    ``ids`` is what the ids are called in the answers ("prediction_ids"); ``rejected``, a
    counter with a ``reason`` label, counts the events a failed write leaves unstored
    ("kafka_unavailable", "redis_unavailable").
    """

    bus: PerMessageBus
    keys: IdempotencyStore
    topic: str
    ids: str = "ids"
    rejected: Counter | None = None
    _settling: set[asyncio.Future[None]] = field(default_factory=set)

    def _count(self, reason: str, events: int) -> None:
        if self.rejected is not None:
            self.rejected.labels(reason).inc(events)

    async def write(
        self, keys: Sequence[str | None], messages: Sequence[Message], wait_seconds: float
    ) -> list[int]:
        """Write the messages whose key was not stored within the window; their indices.

        A key of None is never claimed: its message is always written (an id just generated
        cannot have been sent before). Keys must be distinct. Answers 503 if Kafka has not
        acknowledged every message within ``wait_seconds``; the keys of those it did
        acknowledge are confirmed all the same, so a resend stores only the others.
        """
        claimable = [(i, k) for i, k in enumerate(keys) if k is not None]
        fresh = await self._claim([k for _, k in claimable])
        if len(claimable) == len(keys):
            new = fresh
        else:
            taken = {claimable[j][0] for j in fresh}
            new = [i for i, k in enumerate(keys) if k is None or i in taken]
        if not new:
            return []
        new_keys = [keys[i] for i in new]
        write = asyncio.ensure_future(self.bus.send_each(self.topic, [messages[i] for i in new]))
        try:
            stored = await asyncio.wait_for(asyncio.shield(write), wait_seconds)
        except TimeoutError:
            # The producer keeps retrying; its outcome settles the keys, so a resend of these
            # ids meanwhile is told to retry, and afterwards is stored or reported a duplicate.
            write.add_done_callback(lambda done: self._settle_later(new_keys, done))
            self._count("kafka_unavailable", len(new))
            raise InputRejected(
                f"Kafka has not acknowledged the write within {wait_seconds:g} s; resend the"
                f" same {self.ids} after Retry-After: they are stored at most once",
                [],
                503,
                {"Retry-After": "5"},
            ) from None
        except Unavailable as exc:
            await self.keys.release([k for k in new_keys if k is not None])
            raise self.unavailable(exc, len(new)) from exc
        await self._settle(new_keys, stored)
        if not all(stored):
            failed = stored.count(False)
            self._count("kafka_unavailable", failed)
            raise InputRejected(
                f"Kafka did not store {failed} of {len(stored)} event(s); resend the same"
                f" {self.ids} after Retry-After: those already stored are counted as duplicates",
                [],
                503,
                {"Retry-After": "5"},
            )
        return new

    def unavailable(self, exc: Unavailable, events: int) -> InputRejected:
        """The 503 answer when Kafka or Redis is down, counted."""
        self._count(f"{exc.backend.lower()}_unavailable", events)
        return InputRejected(
            f"{exc}; nothing was stored, retry later", [], 503, {"Retry-After": "5"}
        )

    async def _claim(self, keys: list[str]) -> list[int]:
        """Which keys are now this request's to store, by index; 503 if any is in flight."""
        try:
            claims = await self.keys.claim(keys)
        except Unavailable as exc:
            raise self.unavailable(exc, len(keys)) from exc
        new = [i for i, c in enumerate(claims) if c == "new"]
        if "pending" in claims:
            await self.keys.release([keys[i] for i in new])
            raise InputRejected(
                f"some {self.ids} are being stored by another request; retry shortly",
                [],
                503,
                {"Retry-After": "1"},
            )
        return new

    async def _settle(self, keys: Sequence[str | None], stored: list[bool]) -> None:
        """Confirm the keys of the events Kafka stored; give back the others'."""
        pairs = [(k, ok) for k, ok in zip(keys, stored, strict=True) if k is not None]
        await self.keys.confirm([k for k, ok in pairs if ok])
        failed = [k for k, ok in pairs if not ok]
        if failed:
            await self.keys.release(failed)

    def _settle_later(self, keys: list[str | None], write: asyncio.Future[list[bool]]) -> None:
        failed = write.cancelled() or write.exception() is not None
        stored = [False] * len(keys) if failed else write.result()
        task = asyncio.ensure_future(self._settle(keys, stored))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


@dataclass(frozen=True)
class IngestAdapters:
    """An ingest API's adapters: the bus it writes to, the model catalog it checks against,
    the idempotency keys of what it stored."""

    bus: PerMessageBus
    catalog: Catalog
    keys: IdempotencyStore

    @classmethod
    async def open_on(
        cls,
        stack: AsyncExitStack,
        settings: VigilSettings,
        client_id: str,
        keys: tuple[str, int, int],
    ) -> Self:
        """Open them on Kafka and the idempotency Redis, closed with ``stack``; ``keys`` is the
        Redis prefix, the de-duplication window and the pending time (seconds)."""
        redis = Redis.from_url(settings.idempotency_url)
        stack.push_async_callback(redis.aclose)
        prefix, window_seconds, pending_seconds = keys
        store = IdempotencyKeys(redis, prefix, window_seconds, pending_seconds=pending_seconds)
        bus = await KafkaBus.open(stack, settings.kafka, client_id, MAX_BATCH_BYTES)
        return cls(bus, await started(stack, ModelCatalogFollower(settings.kafka)), store)
