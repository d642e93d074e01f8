"""Idempotency keys in Redis: an id resent within the window is stored once.

An id is first claimed as ``pending`` for a short time, and marked ``stored`` for the whole
window only after Kafka acknowledged its event. A crash between the two leaves a pending claim
that expires, so a retry is stored rather than lost; a resend while the first request is still
in flight sees ``pending`` and is asked to retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from redis.asyncio import Redis

__all__ = ["Claim", "IdempotencyKeys"]

Claim = Literal["new", "stored", "pending"]


class IdempotencyKeys:
    def __init__(
        self, redis: Redis, prefix: str, window_seconds: int, pending_seconds: int = 30
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window_seconds = window_seconds
        self.pending_seconds = pending_seconds

    def _key(self, id_: str) -> str:
        return f"{self.prefix}:{id_}"

    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        """Claim each id; "new" ones are now this caller's to store, then confirm or release."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for id_ in ids:
                pipe.set(self._key(id_), "pending", nx=True, ex=self.pending_seconds)
            claimed = await pipe.execute()
        taken = [id_ for id_, ok in zip(ids, claimed, strict=True) if not ok]
        states = (
            dict(zip(taken, await self.redis.mget([self._key(i) for i in taken]), strict=True))
            if taken
            else {}
        )
        result: list[Claim] = []
        for id_, ok in zip(ids, claimed, strict=True):
            if ok:
                result.append("new")
            else:
                # A claim that expired between SET and GET is treated as in flight: retry.
                result.append("stored" if states.get(id_) in ("stored", b"stored") else "pending")
        return result

    async def confirm(self, ids: Sequence[str]) -> None:
        """Mark ids stored for the whole window."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for id_ in ids:
                pipe.set(self._key(id_), "stored", ex=self.window_seconds)
            await pipe.execute()

    async def release(self, ids: Sequence[str]) -> None:
        """Give claims back after a failed write, so a retry is not taken for a duplicate."""
        if ids:
            await self.redis.delete(*[self._key(i) for i in ids])
