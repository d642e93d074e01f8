"""Alert state you cannot lose: Redis flushed, alerting restarted, the same state rebuilt from
the alerts topic (a private one here), against the real broker and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from redis.asyncio import Redis

from alerting.api import create_app
from alerting.config import Settings
from tests.access import SESSION
from tests.kafka_tools import private_copy, publish_reports
from tests.samples import report_at
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import METRICS


async def _flush(url: str, prefix: str) -> int:
    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        return int(await redis.delete(*keys)) if keys else 0
    finally:
        await redis.aclose()


def _state(client: TestClient, model_id: str) -> dict[str, Any]:
    alerts = client.get("/v1/alerts", params={"model_id": model_id}).json()
    return {
        "alerts": alerts,
        "history": {
            a["fingerprint"]: client.get(f"/v1/alerts/{a['fingerprint']}/history").json()
            for a in alerts
        },
        "silences": [
            s for s in client.get("/v1/silences").json() if s["comment"] == f"quiet {model_id}"
        ],
        "subscriptions": client.get("/v1/subscriptions").json(),
    }


def test_flushed_redis_is_rebuilt_from_the_alerts_topic(infra: VigilSettings) -> None:
    model_id = f"rebuilt-{uuid.uuid4().hex[:8]}"
    prefix = f"test:{model_id}"
    reports_topic = private_copy(infra.kafka_bootstrap, METRICS, model_id)
    settings = Settings(
        alerting_reports_topic=reports_topic.name,
        alerting_group_id=f"test-{model_id}",
        alerting_redis_prefix=prefix,
        alerting_events_topic=f"test.alerts.{model_id}",
    )
    with TestClient(create_app(settings), headers=SESSION) as client:
        subscribed = client.post(
            "/v1/subscriptions",
            json={
                "name": "kept",
                "channel": "webhook",
                "url": "https://hooks.example.com/kept",
                "models": [model_id],
                "group_by": ["model_id"],
            },
        )
        assert subscribed.status_code == 201, subscribed.text
        silence = client.post(
            "/v1/silences",
            json={
                "matchers": [{"name": "model_id", "value": f"{model_id}-other", "op": "="}],
                "ends_at": "2999-01-01T00:00:00Z",
                "comment": f"quiet {model_id}",
            },
        )
        assert silence.status_code == 201, silence.text
        reports = [report_at(model_id, 0, True), report_at(f"{model_id}-b", 0, True)]
        asyncio.run(publish_reports(infra.kafka_bootstrap, reports_topic, reports))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listed = client.get("/v1/alerts", params={"model_id": model_id}).json()
            if listed:
                break
            time.sleep(0.2)
        alert = listed[0]
        acked = client.post(f"/v1/alerts/{alert['fingerprint']}/ack", json={"comment": "mine"})
        assert acked.status_code == 200, acked.text
        before = _state(client, model_id)
    (acked_alert,) = [a for a in before["alerts"] if a["fingerprint"] == alert["fingerprint"]]
    assert acked_alert["acknowledged_by"] == "tests"  # the session key's principal
    assert [e["kind"] for e in before["history"][alert["fingerprint"]]] == ["state", "ack"]

    assert [s["name"] for s in before["subscriptions"]] == ["kept"]
    assert asyncio.run(_flush(settings.redis_url, prefix)) > 0
    with TestClient(create_app(settings), headers=SESSION) as client:
        assert _state(client, model_id) == before
    asyncio.run(_flush(settings.redis_url, prefix))
