"""Resolved alerts are forgotten after the retention; firing ones stay, and a full Redis is
an outage to retry, not a reason to drop a report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from alerting.config import Settings
from alerting.store import RedisAlertStore
from alerting.subscriptions import Subscription
from alerting.worker import prune_forever
from tests.unit.fakes import FakeAlertStore
from vigil.adapters.ports import Unavailable
from vigil.wire.records import Alert, AlertStatus

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


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


async def test_prune_forgets_only_resolved_alerts_updated_before_the_cutoff() -> None:
    store = FakeAlertStore()
    await store.save_alerts(
        [
            _alert("old-resolved", "resolved", 40),
            _alert("old-firing", "firing", 40),
            _alert("old-acknowledged", "acknowledged", 40),
            _alert("recent-resolved", "resolved", 1),
        ]
    )
    assert await store.prune(NOW - timedelta(days=30)) == 1
    assert sorted(await store.alerts()) == ["old-acknowledged", "old-firing", "recent-resolved"]
    assert await store.prune(NOW - timedelta(days=30)) == 0


class _Stop(Exception):
    """Ends the pruning loop after a given number of rounds."""


async def test_the_worker_prunes_at_start_then_every_interval_through_outages() -> None:
    store = FakeAlertStore()
    await store.save_alerts([_alert("a", "resolved", 40), _alert("b", "resolved", 20)])
    clock = iter([NOW, NOW, NOW + timedelta(days=15)])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            store.down = True  # the second round finds Redis down...
        elif len(slept) == 2:
            store.down = False  # ...and the third prunes again
        else:
            raise _Stop

    with pytest.raises(_Stop):
        await prune_forever(store, timedelta(days=30), 3600, lambda: next(clock), sleep)
    assert slept == [3600, 3600, 3600]
    assert await store.alerts() == {}  # "a" at start, "b" once 30 days old


def test_retention_is_thirty_days_and_must_be_positive() -> None:
    assert Settings().alerting_retention_days == 30
    with pytest.raises(ValueError, match="alerting_retention_days"):
        Settings(alerting_retention_days=0)


class _FullRedis(Redis):
    """A Redis at its maxmemory with noeviction: every write is refused."""

    async def hset(self, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")


async def test_a_full_redis_is_unavailable_so_the_api_answers_503_and_the_worker_retries() -> None:
    redis = _FullRedis()  # never connects: hset is refused before any I/O
    sub = Subscription.model_validate(
        {
            "id": "s",
            "name": "team",
            "channel": "webhook",
            "url": "http://127.0.0.1:1/hook",
            "models": ["*"],
            "created_at": NOW,
        }
    )
    with pytest.raises(Unavailable, match="OutOfMemoryError"):
        await RedisAlertStore(redis, "test").add_subscription(sub)
