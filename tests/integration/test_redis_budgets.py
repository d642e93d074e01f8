"""Each use of Redis within its own budget: the prediction logger's de-duplication keys on
the idempotency Redis (evicting the keys nearest expiry), resolved alerts pruned from the
state Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from alerting.store import RedisAlertStore
from prediction_logger.api import PredictionLog
from prediction_logger.config import Settings
from vigil.adapters.idempotency import scoped_id
from vigil.adapters.settings import VigilSettings
from vigil.wire.records import Alert, AlertStatus

LOCAL_STATE = VigilSettings.model_fields["redis_url"].default
# deploy/redis.sh's idempotency server, unless the environment names another.
IDEMPOTENCY_URL = os.environ.get("VIGIL_IDEMPOTENCY_REDIS_URL", "redis://127.0.0.1:6380/0")


@pytest.fixture
def idempotency_url(infra: VigilSettings) -> str:
    if infra.redis_url != LOCAL_STATE and "VIGIL_IDEMPOTENCY_REDIS_URL" not in os.environ:
        pytest.skip("Redis runs in a container: there is no idempotency Redis beside it")
    return IDEMPOTENCY_URL


async def _config(url: str, name: str) -> str:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        return str((await redis.config_get(name))[name])
    finally:
        await redis.aclose()


def test_the_idempotency_redis_has_a_budget_and_evicts_the_keys_nearest_expiry(
    idempotency_url: str,
) -> None:
    assert asyncio.run(_config(idempotency_url, "maxmemory-policy")) == "volatile-ttl"
    assert int(asyncio.run(_config(idempotency_url, "maxmemory"))) > 0


def test_the_prediction_logger_keeps_its_keys_on_the_idempotency_redis(
    idempotency_url: str,
) -> None:
    prefix = f"test:budget-{uuid.uuid4().hex[:8]}"
    # The shared Redis does not answer: the keys work only if they are on the other one.
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0",
        idempotency_redis_url=idempotency_url,
        prediction_logger_redis_prefix=prefix,
    )
    key = f"{prefix}:{scoped_id('credit-risk', 'p-1')}"

    async def run() -> tuple[list[str], list[str], str | None, int]:
        async with AsyncExitStack() as stack:
            log = await PredictionLog.open(stack, settings)
            first = list(await log.keys.claim([scoped_id("credit-risk", "p-1")]))
            await log.keys.confirm([scoped_id("credit-risk", "p-1")])
            again = list(await log.keys.claim([scoped_id("credit-risk", "p-1")]))
        redis = Redis.from_url(idempotency_url, decode_responses=True)
        try:
            found = await redis.get(key), await redis.ttl(key)
            await redis.delete(key)
        finally:
            await redis.aclose()
        return first, again, *found

    first, again, value, ttl = asyncio.run(run())
    assert (first, again, value) == (["new"], ["stored"], "stored")
    assert 0 < ttl <= settings.prediction_logger_dedup_window_seconds


NOW = datetime.now(UTC)


def _alert(fingerprint: str, status: AlertStatus, days_ago: float) -> Alert:
    return Alert.model_validate(
        {
            "fingerprint": fingerprint,
            "status": status,
            "severity": "high",
            "model_id": "credit-risk",
            "model_version": "1.0.0",
            "rule": "feature_drift",
            "feature": fingerprint,
            "summary": "drift",
            "starts_at": NOW - timedelta(days=days_ago + 1),
            "updated_at": NOW - timedelta(days=days_ago),
        }
    )


def test_resolved_alerts_past_the_retention_leave_the_hash_and_its_index(
    infra: VigilSettings,
) -> None:
    async def run() -> tuple[int, list[str], list[str], int]:
        async with AsyncExitStack() as stack:
            store = await RedisAlertStore.open(stack, infra.redis_url, f"test:{uuid.uuid4().hex}")
            old = [_alert(f"old-{n}", "resolved", 40 + n / 1000) for n in range(1_200)]
            await store.save_alerts(
                [
                    *old,
                    _alert("old-firing", "firing", 50),
                    _alert("old-acknowledged", "acknowledged", 50),
                    _alert("recent", "resolved", 1),
                ]
            )
            await store.redis.zadd(
                store._by_update, {"lost": _alert("x", "resolved", 60).updated_at.timestamp()}
            )
            removed = await store.prune(NOW - timedelta(days=30))
            left = sorted(await store.alerts())
            indexed = sorted(await store.redis.zrange(store._by_update, 0, -1))
            again = await store.prune(NOW - timedelta(days=30))
            await store.redis.delete(store._alerts, store._by_update)
            return removed, left, indexed, again

    removed, left, indexed, again = asyncio.run(run())
    assert removed == 1_200
    assert left == indexed == ["old-acknowledged", "old-firing", "recent"]
    assert again == 0
