"""Alert state and subscriptions in Redis: the AlertStore the alerting service runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from alerting.grouping import Group
from alerting.history import folded
from alerting.outbox import Delivery
from alerting.ports import HISTORY_LIMIT, AlertPage, AlertStore, GroupChange
from alerting.subscriptions import Subscription
from vigil.adapters.ports import Unavailable
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.records import Alert

__all__ = ["RedisAlertStore"]

# Forgets each alert (ARGV: fingerprint, JSON as read) unless it changed since it was read; an
# index entry without an alert (JSON "") goes too. Deletions need no memory: this runs even
# when Redis is at its maxmemory and refuses writes.
_PRUNE = """
local removed = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    removed = removed + 1
  elseif current == false and ARGV[i + 1] == '' then
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return removed
"""
_PRUNE_PAGE = 500
# Claims a delivery (KEYS: claim, outbox, outbox due; ARGV: id, owner, ttl ms, now) if it is
# still in the outbox, due, and nobody holds it: returns it as stored, else nil. Checked and
# taken at once, so two replicas never both send one attempt.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local due = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[4]) then return false end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return redis.call('HGET', KEYS[2], ARGV[1])
"""


@asynccontextmanager
async def _redis_unavailable() -> AsyncIterator[None]:
    """Redis not answering, or full, becomes Unavailable (503 in the API, a retry in the
    worker): alert state is never dropped, nor a report dead-lettered, for want of memory."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OutOfMemoryError) as exc:
        raise Unavailable("Redis", type(exc).__name__) from exc


class RedisAlertStore(AlertStore):
    """Alerts by fingerprint and subscriptions by id, as JSON in two Redis hashes.

    A sorted set indexes the alerts by ``updated_at``, so they are listed a page at a time.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self._alerts = f"{prefix}:alerts"
        self._by_update = f"{prefix}:alerts:by_update"
        self._subscriptions = f"{prefix}:subscriptions"
        self._silences = f"{prefix}:silences"
        self._history = f"{prefix}:history:"
        # Set once the cache holds the alerts topic; missing after Redis lost its data.
        self._rebuilt = f"{prefix}:rebuilt"
        self._rule_state = f"{prefix}:rule_state"  # by model_id/version, as JSON
        self._traffic = f"{prefix}:traffic"  # by model_id/version, as JSON
        self._group = f"{prefix}:group:"  # one key per notification group, as JSON
        self._groups_due = f"{prefix}:groups:due"  # group key -> when it next notifies
        self._outbox = f"{prefix}:outbox"  # delivery id -> Delivery as JSON
        self._outbox_due = f"{prefix}:outbox:due"  # delivery id -> next attempt
        self._claim = f"{prefix}:claim:"
        self._turn = f"{prefix}:turn:"
        self._prune_script = redis.register_script(_PRUNE)
        self._claim_script = redis.register_script(_CLAIM)

    @classmethod
    async def open(cls, stack: AsyncExitStack, url: str, prefix: str) -> RedisAlertStore:
        """A store on a new Redis client, checked to answer, closed when ``stack`` closes."""
        redis = Redis.from_url(url, decode_responses=True)
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        store = cls(redis, prefix)
        await store.index_alerts()
        return store

    async def index_alerts(self) -> None:
        """Index alerts stored before the index existed (or by an older version)."""
        if await self.redis.zcard(self._by_update) == await self.redis.hlen(self._alerts):
            return
        async for _, value in self.redis.hscan_iter(self._alerts, count=1000):
            alert = Alert.model_validate_json(value)
            await self.redis.zadd(self._by_update, {alert.fingerprint: _score(alert)})

    async def alerts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Alert]:
        values: list[str | bytes | None]
        async with _redis_unavailable():
            if fingerprints is None:
                values = list((await self.redis.hgetall(self._alerts)).values())
            else:
                keys = list(fingerprints)
                values = await self.redis.hmget(self._alerts, keys) if keys else []
        alerts = [Alert.model_validate_json(v) for v in values if v is not None]
        return {a.fingerprint: a for a in alerts}

    async def alerts_page(
        self,
        position: int,
        limit: int,
        model_id: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
    ) -> AlertPage:
        chosen: list[Alert] = []
        async with _redis_unavailable():
            while len(chosen) < limit:
                end = position + limit - 1
                fps = cast(list[str], await self.redis.zrevrange(self._by_update, position, end))
                if not fps:
                    return AlertPage(chosen, None)
                found = await self.alerts(fps)
                for fp in fps:
                    position += 1
                    alert = found.get(fp)
                    if alert is not None and since is not None and alert.updated_at < since:
                        return AlertPage(chosen, None)  # newest first: the rest are older
                    if alert is not None and _matches(alert, model_id, status, severity):
                        chosen.append(alert)
                        if len(chosen) == limit:
                            break
            more = await self.redis.zcard(self._by_update) > position
        return AlertPage(chosen, position if more else None)

    async def save_alerts(self, alerts: Iterable[Alert]) -> None:
        chosen = list(alerts)
        mapping: dict[FieldT, EncodableT] = {a.fingerprint: a.model_dump_json() for a in chosen}
        if mapping:
            async with _redis_unavailable(), self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._alerts, mapping=mapping)
                pipe.zadd(self._by_update, {a.fingerprint: _score(a) for a in chosen})
                await pipe.execute()

    async def prune(self, before: datetime) -> int:
        removed, position = 0, 0
        async with _redis_unavailable():
            while True:
                fps = cast(
                    list[str],
                    await self.redis.zrangebyscore(
                        self._by_update, "-inf", f"({before.timestamp()}", position, _PRUNE_PAGE
                    ),
                )
                if not fps:
                    return removed
                values = await self.redis.hmget(self._alerts, fps)
                args: list[str | bytes] = []
                for fp, value in zip(fps, values, strict=True):
                    if value is None:
                        args += [fp, ""]
                    elif Alert.model_validate_json(value).status == "resolved":
                        args += [fp, value]
                keys = [self._alerts, self._by_update]
                gone = int(await self._prune_script(keys=keys, args=args)) if args else 0
                removed += gone
                # The entries kept in this page are still ahead of the next page.
                position += len(fps) - gone - values.count(None)

    async def cache(self, events: Sequence[AlertEvent]) -> None:
        alerts, silences, subscriptions = folded(events)
        async with _redis_unavailable(), self.redis.pipeline(transaction=True) as pipe:
            for sub_id, sub in subscriptions.items():
                if sub is None:
                    pipe.hdel(self._subscriptions, sub_id)
                else:
                    pipe.hset(self._subscriptions, sub_id, sub.model_dump_json())
            if alerts:
                pipe.hset(self._alerts, mapping={f: a.model_dump_json() for f, a in alerts.items()})
                pipe.zadd(self._by_update, {f: _score(a) for f, a in alerts.items()})
            if silences:
                pipe.hset(
                    self._silences, mapping={i: s.model_dump_json() for i, s in silences.items()}
                )
            for e in events:
                if e.fingerprint is not None:
                    pipe.rpush(self._history + e.fingerprint, e.model_dump_json())
            for fp in {e.fingerprint for e in events if e.fingerprint is not None}:
                pipe.ltrim(self._history + fp, -HISTORY_LIMIT, -1)
            await pipe.execute()

    async def silences(self) -> list[Silence]:
        async with _redis_unavailable():
            raw = await self.redis.hgetall(self._silences)
        return sorted(
            (Silence.model_validate_json(v) for v in raw.values()),
            key=lambda s: (s.starts_at, s.id),
        )

    async def history(self, fingerprint: str) -> list[AlertEvent]:
        async with _redis_unavailable():
            raw = await self.redis.lrange(self._history + fingerprint, 0, -1)
        return [AlertEvent.model_validate_json(v) for v in raw]

    async def is_rebuilt(self) -> bool:
        async with _redis_unavailable():
            return bool(await self.redis.exists(self._rebuilt))

    async def mark_rebuilt(self) -> None:
        async with _redis_unavailable():
            await self.redis.set(self._rebuilt, "1")

    async def rule_state(self, key: str) -> dict[str, Any] | None:
        async with _redis_unavailable():
            raw = await self.redis.hget(self._rule_state, key)
        return cast(dict[str, Any], orjson.loads(raw)) if raw else None

    async def save_rule_state(self, key: str, state: dict[str, Any]) -> None:
        async with _redis_unavailable():
            await self.redis.hset(self._rule_state, key, orjson.dumps(state).decode())

    async def traffic(self) -> dict[str, dict[str, Any]]:
        async with _redis_unavailable():
            raw = await self.redis.hgetall(self._traffic)
        return {str(k): cast(dict[str, Any], orjson.loads(v)) for k, v in raw.items()}

    async def save_traffic(self, key: str, seen: dict[str, Any]) -> None:
        async with _redis_unavailable():
            await self.redis.hset(self._traffic, key, orjson.dumps(seen).decode())

    async def forget_traffic(self, key: str) -> None:
        async with _redis_unavailable():
            await self.redis.hdel(self._traffic, key)

    async def change_group(
        self, key: str, change: Callable[[Group | None], GroupChange]
    ) -> GroupChange:
        name = self._group + key
        async with _redis_unavailable():
            while True:
                async with self.redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(name)
                        raw = await pipe.get(name)
                        applied = change(Group.model_validate_json(raw) if raw else None)
                        pipe.multi()  # type: ignore[no-untyped-call]
                        if applied.group is None:
                            pipe.delete(name)
                        else:
                            pipe.set(name, applied.group.model_dump_json())
                        if applied.group is None or applied.due is None:
                            pipe.zrem(self._groups_due, key)
                        else:
                            pipe.zadd(self._groups_due, {key: applied.due.timestamp()})
                        if applied.delivery is not None:
                            self._queue(pipe, applied.delivery)
                        await pipe.execute()
                        return applied
                    except WatchError:
                        continue  # changed by another process meanwhile: decide again

    def _queue(self, pipe: Any, delivery: Delivery) -> None:
        pipe.hset(self._outbox, delivery.delivery_id, delivery.model_dump_json())
        pipe.zadd(self._outbox_due, {delivery.delivery_id: delivery.next_attempt_at.timestamp()})

    async def groups(self) -> list[Group]:
        async with _redis_unavailable():
            names = [n async for n in self.redis.scan_iter(match=self._group + "*", count=1000)]
            raw = await self.redis.mget(names) if names else []
        return [Group.model_validate_json(r) for r in raw if r]

    async def due_groups(self, now: datetime, limit: int) -> list[str]:
        async with _redis_unavailable():
            found = await self.redis.zrangebyscore(
                self._groups_due, "-inf", now.timestamp(), 0, limit
            )
        return cast(list[str], found)

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        async with _redis_unavailable():
            ids = cast(
                list[str],
                await self.redis.zrangebyscore(self._outbox_due, "-inf", now.timestamp(), 0, limit),
            )
            raw = await self.redis.hmget(self._outbox, ids) if ids else []
        return [Delivery.model_validate_json(r) for r in raw if r]

    async def deliveries(self) -> list[Delivery]:
        async with _redis_unavailable():
            raw = await self.redis.hgetall(self._outbox)
        found = [Delivery.model_validate_json(v) for v in raw.values()]
        return sorted(found, key=lambda d: d.next_attempt_at)

    async def put_delivery(self, delivery: Delivery) -> None:
        async with _redis_unavailable(), self.redis.pipeline(transaction=True) as pipe:
            self._queue(pipe, delivery)
            await pipe.execute()

    async def claim_delivery(
        self, delivery_id: str, owner: str, now: datetime, ttl_seconds: float
    ) -> Delivery | None:
        keys = [self._claim + delivery_id, self._outbox, self._outbox_due]
        args: list[str | float] = [
            delivery_id,
            owner,
            max(1, int(ttl_seconds * 1000)),
            now.timestamp(),
        ]
        async with _redis_unavailable():
            raw = await self._claim_script(keys=keys, args=args)
        return Delivery.model_validate_json(raw) if raw else None

    async def settle_delivery(self, delivery_id: str, retry: Delivery | None) -> None:
        async with _redis_unavailable(), self.redis.pipeline(transaction=True) as pipe:
            if retry is None:
                pipe.hdel(self._outbox, delivery_id)
                pipe.zrem(self._outbox_due, delivery_id)
            else:
                self._queue(pipe, retry)
            pipe.delete(self._claim + delivery_id)
            await pipe.execute()

    async def take_turn(self, name: str, owner: str, ttl_seconds: float) -> bool:
        async with _redis_unavailable():
            ttl = max(1, int(ttl_seconds * 1000))
            return bool(await self.redis.set(self._turn + name, owner, px=ttl, nx=True))

    async def subscriptions(self) -> list[Subscription]:
        async with _redis_unavailable():
            raw = await self.redis.hgetall(self._subscriptions)
        subs = [Subscription.model_validate_json(v) for v in raw.values()]
        return sorted(subs, key=lambda s: s.created_at)

    async def add_subscription(self, sub: Subscription) -> None:
        async with _redis_unavailable():
            await self.redis.hset(self._subscriptions, sub.id, sub.model_dump_json())

    async def remove_subscription(self, sub_id: str) -> bool:
        async with _redis_unavailable():
            return bool(await self.redis.hdel(self._subscriptions, sub_id))


def _score(alert: Alert) -> float:
    return alert.updated_at.timestamp()


def _matches(alert: Alert, model_id: str | None, status: str | None, severity: str | None) -> bool:
    return (
        (model_id is None or alert.model_id == model_id)
        and (status is None or alert.status == status)
        and (severity is None or alert.severity == severity)
    )
