"""Registry views: the drift heatmap, a window's report and the fleet, served from Redis.

Against the local Redis (``VIGIL_REDIS_URL``), under a prefix of the run's own (deleted at the
end), the indexes are filled directly (``put``, as the metrics feed does, without Kafka):

1. one model version of 50 numeric features with 30 days of one-minute windows (43,200
   reports): the time to index them, the Redis memory the version takes, and the server time
   of ``GET …/drift/heatmap`` over the 30 days (columns=200) and over the last 24 hours, and of
   ``GET …/drift/windows/{start}``;
2. 1,000 model versions of 20 features, each with 24 hourly windows and a performance report:
   the server time of ``GET /v1/fleet``.

Server time: a request through the registry's FastAPI app in this process
(``httpx.ASGITransport``: routing, the key check, the Redis reads, building and serialising the
answer; no network, no HTTP parsing), median and p95 of 20 requests after 2 warm-ups.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from redis.asyncio import Redis
from tests.access import ADMIN, fake_guard
from tests.samples import PERFORMANCE
from tests.unit.fakes import FakeBus

from benchmarks.common import machine
from registry.api import Registry, create_app
from registry.drift_redis import RedisDriftIndex
from registry.performance_index import RedisPerformanceIndex
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.settings import VigilSettings
from vigil.wire.records import (
    FeatureDrift,
    FeatureSpec,
    ModelVersion,
    RiskAssessment,
    WindowReport,
)

STATISTICS = ("psi", "js", "ks", "ks_pvalue", "wasserstein", "out_of_range_rate", "mean", "std")
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _version(model_id: str, features: int) -> ModelVersion:
    return ModelVersion(
        model_id=model_id,
        version="1",
        task="binary",
        features=[FeatureSpec(name=f"f{i}", type="numeric") for i in range(features)],
        owner="bench",
        risk=RiskAssessment(probability=2, impact=2, severity="low"),
        created_at=NOW,
        updated_at=NOW,
    )


def _report(model_id: str, features: int, start: datetime, seconds: int, i: int) -> WindowReport:
    drift = [
        FeatureDrift(
            feature=f"f{f}",
            type="numeric",
            count=1000,
            missing=i % 7,
            out_of_range=i % 3,
            statistics={s: ((i * 31 + f * 17 + k) % 997) / 997 for k, s in enumerate(STATISTICS)},
            drift_statistic="psi",
            threshold=0.25,
            drifted=(i + f) % 97 == 0,
            bin_counts=[100 + (i + f + b) % 9 for b in range(10)],
        )
        for f in range(features)
    ]
    return WindowReport(
        report_id=f"{model_id}/1/{i}",
        model_id=model_id,
        model_version="1",
        window_start=start,
        window_end=start + timedelta(seconds=seconds),
        event_count=1000,
        reference_source="uploaded",
        features=drift,
        drifted_features=[d.feature for d in drift if d.drifted],
        created_at=start + timedelta(seconds=seconds + 5),
    )


async def _timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, float, int]:
    for _ in range(2):
        (await call()).raise_for_status()
    took = []
    for _ in range(20):
        began = time.perf_counter()
        answer = await call()
        took.append(time.perf_counter() - began)
    answer.raise_for_status()
    p50, p95 = np.percentile(took, [50, 95])
    return float(p50), float(p95), len(answer.content)


async def _memory(redis: Redis, prefix: str) -> int:
    total = 0
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        total += await redis.memory_usage(key) or 0
    return total


async def main() -> None:
    settings = VigilSettings()
    redis = Redis.from_url(settings.redis_url)
    run = uuid.uuid4().hex[:8]
    prefix = f"bench:views:{run}:"
    drift = RedisDriftIndex(redis, f"{prefix}drift:", 7)
    performance = RedisPerformanceIndex(redis, f"{prefix}performance:")
    catalog = ModelCatalog()
    registry = Registry(FakeBus(), catalog, performance=performance, drift=drift)
    app = create_app(adapters=registry, guard=fake_guard())
    print(f"registry views ({machine()}); server time through the app in process (ASGI)")
    try:
        async with (
            app.router.lifespan_context(app),  # what a server runs at start-up (the guard)
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://registry", headers=ADMIN
            ) as client,
        ):
            await _model_page(client, catalog, drift, redis, f"{prefix}drift:")
            await _fleet(client, catalog, drift, performance)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.unlink(*keys[start : start + 1000])
        await redis.aclose()


async def _model_page(
    client: httpx.AsyncClient,
    catalog: ModelCatalog,
    drift: RedisDriftIndex,
    redis: Redis,
    prefix: str,
) -> None:
    model_id = f"bench-{uuid.uuid4().hex[:6]}"
    catalog.apply(_version(model_id, 50))
    first = NOW - timedelta(days=30)
    windows = 30 * 1440
    began = time.perf_counter()
    for i in range(windows):
        await drift.put(_report(model_id, 50, first + timedelta(minutes=i), 60, i))
    took = time.perf_counter() - began
    print(
        f"  indexed {windows:,} one-minute windows of 50 features in {took:.0f} s"
        f" ({windows / took:,.0f} windows/s, one at a time)"
    )
    used = await _memory(redis, prefix)
    print(
        f"  Redis memory of the version: {used / 2**20:.0f} MiB (whole reports and rows of the"
        f" last {drift.keep // 86_400_000_000} days + rollups of 30 days)"
    )
    path = f"/v1/models/{model_id}/versions/1/drift"
    month = {"since": first.isoformat(), "until": NOW.isoformat(), "columns": 200}
    for label, params in (("30 days, columns=200", month), ("last 24 h (default)", {})):
        p50, p95, size = await _timed(lambda p=params: client.get(f"{path}/heatmap", params=p))  # type: ignore[misc]
        print(f"  heatmap {label}: p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, {size:,} bytes")
    start = (NOW - timedelta(hours=1)).isoformat()
    p50, p95, size = await _timed(lambda: client.get(f"{path}/windows/{start}"))
    print(f"  window detail: p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, {size:,} bytes")


async def _fleet(
    client: httpx.AsyncClient,
    catalog: ModelCatalog,
    drift: RedisDriftIndex,
    performance: RedisPerformanceIndex,
) -> None:
    hour = NOW.replace(minute=0)
    began = time.perf_counter()
    for v in range(1000):
        model_id = f"bench-fleet-{v:04d}"
        catalog.apply(_version(model_id, 20))
        for h in range(24):
            await drift.put(_report(model_id, 20, hour - timedelta(hours=23 - h), 3600, h))
        window = {"window_start": hour - timedelta(hours=1), "window_end": hour}
        report = PERFORMANCE.model_copy(
            update={"model_id": model_id, "model_version": "1", **window}
        )
        await performance.put(report)
    print(f"  indexed 1,000 versions x 24 hourly windows in {time.perf_counter() - began:.0f} s")
    p50, p95, size = await _timed(lambda: client.get("/v1/fleet"))
    print(
        f"  fleet of 1,000 versions: p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, {size:,} bytes"
    )


if __name__ == "__main__":
    asyncio.run(main())
