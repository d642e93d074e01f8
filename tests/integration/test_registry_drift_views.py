"""Drift over time and the fleet through the registry app, on the real broker and Redis: window
and performance reports published to a metrics topic of the test's own are indexed by one
feed, replays and a second feed change nothing, keys see only what they may."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from registry.api import create_app
from registry.config import Settings
from registry.drift_redis import RedisDriftIndex
from registry.metrics_feed import index_reports
from registry.performance_index import RedisPerformanceIndex
from tests.access import SESSION, api_key, bearer, publish_keys
from tests.kafka_tools import end_offsets, private_copy
from tests.samples import PERFORMANCE, REPORT, loan_model
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import FeatureDrift, WindowReport, utcnow
from vigil.wire.topics import METRICS

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


def _feature(name: str, psi: float, drifted: bool = False) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        type="numeric",
        count=100,
        missing=5,
        statistics={"psi": psi},
        drift_statistic="psi",
        threshold=0.15,
        drifted=drifted,
        bin_counts=[10] * 10,
    )


def _window(model_id: str, start: datetime, events: int, psi: float, created: datetime) -> bytes:
    report = REPORT.model_copy(
        update={
            "report_id": f"{model_id}/1.0.0/{start.isoformat()}",
            "model_id": model_id,
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "event_count": events,
            "features": [_feature("income", psi, psi > 0.5), _feature("region", 0.01)],
            "outputs": [_feature("prediction", 0.02)],
            "drifted_features": ["income"] if psi > 0.5 else [],
            "dataset_drift": psi > 0.5,
            "created_at": created,
        }
    )
    return Codec(WindowReport).encode(report)


def _revision(model_id: str, start: datetime, revision: int, labelled: int) -> bytes:
    report = PERFORMANCE.model_copy(
        update={
            "model_id": model_id,
            "window_start": start,
            "window_end": start + HOUR,
            "revision": revision,
            "labelled": labelled,
            "created_at": start + revision * HOUR,
        }
    )
    return Codec(PerformanceReport).encode(report)


async def _publish(bootstrap: str, topic: str, key: str, values: list[bytes]) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def _replay(settings: Settings) -> None:
    """A second feed (another group: a replay, or another replica) over the same Redis."""
    redis = Redis.from_url(settings.redis_url)
    topic, group = settings.registry_metrics_topic, f"{settings.registry_metrics_group}-again"
    performance = RedisPerformanceIndex(redis, settings.registry_performance_redis_prefix)
    drift = RedisDriftIndex(redis, settings.registry_drift_redis_prefix, 7)
    task = asyncio.create_task(index_reports(settings.kafka, topic, group, performance, drift))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        ends = await end_offsets(settings.kafka_bootstrap, topic)
        for _ in range(300):
            done = await admin.list_consumer_group_offsets(group)
            if all(tp in done and done[tp].offset >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the second feed did not catch up")
    finally:
        await admin.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await redis.aclose()


@pytest.fixture(scope="module")
def setup(infra: VigilSettings) -> Iterator[tuple[TestClient, Settings, str, datetime]]:
    tag = uuid.uuid4().hex[:8]
    topic = private_copy(infra.kafka_bootstrap, METRICS, tag).name
    settings = Settings(
        registry_metrics_topic=topic,
        registry_metrics_group=f"test-metrics-{tag}",
        registry_performance_redis_prefix=f"test:performance:{tag}:",
        registry_drift_redis_prefix=f"test:drift:{tag}:",
    )
    model_id = f"drift-{tag}"
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    early, late = hour - 2 * HOUR, hour - HOUR
    windows = [_window(model_id, early + timedelta(minutes=m), 100, 0.1, early) for m in range(30)]
    windows.append(_window(model_id, late + timedelta(minutes=5), 500, 0.9, late))
    # A newer report of the first window replaces it; an older one does not.
    windows.append(_window(model_id, early, 150, 0.2, early + timedelta(seconds=1)))
    windows.append(_window(model_id, early, 999, 0.3, early - timedelta(seconds=1)))
    performance = [
        _revision(model_id, early, 1, 10),
        _revision(model_id, early, 2, 10),
        _revision(model_id, early, 3, 40),  # labels came: last_label_at
        _revision(model_id, late, 1, 0),  # the latest window, no labels yet
    ]
    records = windows + performance + [b"not a record"]
    asyncio.run(_publish(infra.kafka_bootstrap, topic, f"{model_id}/1.0.0", records * 2))
    with TestClient(create_app(settings), headers=SESSION) as client:
        assert client.post("/v1/models", json=loan_model(model_id)).status_code == 201
        yield client, settings, model_id, hour


def _heatmap(client: TestClient, model_id: str, **params: object) -> dict[str, object]:
    path = f"/v1/models/{model_id}/versions/1.0.0/drift/heatmap"
    for _ in range(200):
        answer = client.get(path, params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        columns = body["columns"]
        assert isinstance(columns, list)
        if sum(c["windows"] for c in columns) == 31:
            return body
        asyncio.run(asyncio.sleep(0.1))
    raise AssertionError(f"the heatmap holds {body}")


def test_the_heatmap_at_window_and_hour_resolution(
    setup: tuple[TestClient, Settings, str, datetime],
) -> None:
    client, settings, model_id, hour = setup
    since = (hour - 3 * HOUR).isoformat()
    windows = _heatmap(client, model_id, since=since)
    assert windows["features"] == ["income", "region", "output:prediction"]
    assert windows["resolution_seconds"] == 60
    assert windows["thresholds"] == {"income": 0.15, "region": 0.15, "output:prediction": 0.075}
    columns = windows["columns"]
    assert isinstance(columns, list) and len(columns) == 31
    assert [columns[0]["events"], columns[1]["events"], columns[-1]["events"]] == [150, 100, 500]
    assert columns[0]["values"] == [0.2, 0.01, 0.02]
    assert columns[-1]["drifted"] == [True, False, False] and columns[-1]["dataset_drift"]
    assert columns[0]["quality"]["missing_rate"] == 0.05

    asyncio.run(_replay(settings))  # everything indexed again: nothing counted twice
    hours = _heatmap(client, model_id, since=since, columns=5)
    assert hours["resolution_seconds"] == 3600
    early, late = hours["columns"]  # type: ignore[misc]
    assert (early["windows"], early["events"], early["values"][0]) == (30, 3050, 0.2)
    assert (late["windows"], late["events"], late["values"][0]) == (1, 500, 0.9)
    assert early["window_start"] == (hour - 2 * HOUR).isoformat()


def test_a_windows_latest_report_or_404(
    setup: tuple[TestClient, Settings, str, datetime],
) -> None:
    client, _, model_id, hour = setup
    _heatmap(client, model_id, since=(hour - 3 * HOUR).isoformat())
    path = f"/v1/models/{model_id}/versions/1.0.0/drift/windows"
    found = client.get(f"{path}/{(hour - 2 * HOUR).isoformat()}")
    assert found.status_code == 200, found.text
    assert found.json()["event_count"] == 150
    assert found.json()["features"][0]["bin_counts"] == [10] * 10
    missing = client.get(f"{path}/{(hour - 10 * HOUR).isoformat()}")
    assert missing.status_code == 404
    assert (hour - 10 * HOUR).isoformat() in missing.text
    assert client.get("/v1/models/nope/versions/1.0.0/drift/heatmap").status_code == 404


def test_the_fleet_shows_traffic_drift_and_performance_to_whom_may_read_it(
    setup: tuple[TestClient, Settings, str, datetime], infra: VigilSettings
) -> None:
    client, _, model_id, hour = setup
    _heatmap(client, model_id, since=(hour - 3 * HOUR).isoformat())
    mine = next(v for v in client.get("/v1/fleet").json()["versions"] if v["model_id"] == model_id)
    assert mine["traffic"]["since"] == (hour - 23 * HOUR).isoformat()
    assert mine["traffic"]["counts"][21:] == [3050, 500, 0]
    assert mine["drift"]["dataset_drift"] and mine["drift"]["drifted_features"] == ["income"]
    assert mine["drift"]["window_end"] == (hour - HOUR + timedelta(minutes=6)).isoformat()
    assert mine["performance"]["window_end"] == hour.isoformat().replace("+00:00", "Z")
    assert mine["performance"]["metric"] == "accuracy"
    assert mine["last_label_at"] == (hour - 2 * HOUR + 3 * HOUR).isoformat()

    producer, producer_record = api_key("app", ["producer"], [model_id])
    other, other_record = api_key("sme-b", ["sme"], ["another-model"])
    expiry = {"expires_at": utcnow() + HOUR}
    records = [r.model_copy(update=expiry) for r in (producer_record, other_record)]
    asyncio.run(publish_keys(infra.kafka_bootstrap, *records))
    for _ in range(100):  # the keyring follows the keys topic
        if client.get("/v1/fleet", headers=bearer(producer)).status_code == 200:
            break
        asyncio.run(asyncio.sleep(0.1))
    seen = client.get("/v1/fleet", headers=bearer(producer)).json()["versions"]
    assert [v["model_id"] for v in seen] == [model_id]
    assert seen[0]["performance"] is None and not seen[0]["performance_readable"]
    assert seen[0]["traffic"]["counts"][21] == 3050
    elsewhere = client.get("/v1/fleet", headers=bearer(other)).json()["versions"]
    assert model_id not in [v["model_id"] for v in elsewhere]
    path = f"/v1/models/{model_id}/versions/1.0.0/drift/heatmap"
    assert client.get(path, headers=bearer(other)).status_code == 403
    assert client.get(path, headers=bearer(producer)).status_code == 200
