"""Alert state and subscriptions in Redis: the AlertStore the alerting service runs on."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from alerting.handlers import Subscription
from alerting.ports import AlertStore
from vigil.wire.records import Alert

__all__ = ["RedisAlertStore"]


class RedisAlertStore(AlertStore):
    """Current alerts by fingerprint and subscriptions by id, as JSON in two Redis hashes."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self._alerts = f"{prefix}:alerts"
        self._subscriptions = f"{prefix}:subscriptions"

    @classmethod
    async def open(cls, stack: AsyncExitStack, url: str, prefix: str) -> RedisAlertStore:
        """A store on a new Redis client, checked to answer, closed when ``stack`` closes."""
        redis = Redis.from_url(url, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        return cls(redis, prefix)

    async def alerts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Alert]:
        values: list[str | bytes | None]
        if fingerprints is None:
            raw = await self.redis.hgetall(self._alerts)
            values = list(raw.values())
        else:
            keys = list(fingerprints)
            values = await self.redis.hmget(self._alerts, keys) if keys else []
        alerts = [Alert.model_validate_json(v) for v in values if v is not None]
        return {a.fingerprint: a for a in alerts}

    async def save_alerts(self, alerts: Iterable[Alert]) -> None:
        mapping: dict[FieldT, EncodableT] = {a.fingerprint: a.model_dump_json() for a in alerts}
        if mapping:
            await self.redis.hset(self._alerts, mapping=mapping)

    async def subscriptions(self) -> list[Subscription]:
        raw = await self.redis.hgetall(self._subscriptions)
        subs = [Subscription.model_validate_json(v) for v in raw.values()]
        return sorted(subs, key=lambda s: s.created_at)

    async def add_subscription(self, sub: Subscription) -> None:
        await self.redis.hset(self._subscriptions, sub.id, sub.model_dump_json())

    async def remove_subscription(self, sub_id: str) -> bool:
        return bool(await self.redis.hdel(self._subscriptions, sub_id))
