"""Against the real broker and Redis: a feature suddenly 30 % missing pages once, and a model
that stops receiving traffic pages once (from alerting's clock, nothing arriving), each at its
risk tier's severity."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from tests.access import SESSION
from tests.kafka_tools import private_copy
from tests.samples import MODEL, REPORT
from tests.webhook import webhook_inbox
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import Record, TrafficReport, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS


async def _publish(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


def _encoded(record: Record) -> bytes:
    return Codec(type(record)).encode(record)


def test_missing_values_and_silence_each_page_once_at_the_tiers_severity(
    infra: VigilSettings,
) -> None:
    model_id = f"lively-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    # A high-risk version that should see traffic at least every 2 s.
    version = MODEL.model_copy(
        update={"model_id": model_id, "expected_interval": 2.0, "status": "champion"}
    )
    asyncio.run(_publish(infra.kafka_bootstrap, MODELS.name, [(version.key, _encoded(version))]))
    reports = private_copy(infra.kafka_bootstrap, METRICS, model_id)
    settings = Settings(
        alerting_reports_topic=reports.name,
        alerting_group_id=f"test-{model_id}",
        alerting_redis_prefix=f"test:{model_id}",
        alerting_events_topic=f"test.alerts.{model_id}",
        alerting_allowed_networks=["127.0.0.0/8"],
        alerting_group_wait_seconds=0,
        alerting_group_interval_seconds=0.5,
        alerting_liveness_check_seconds=0.5,
    )
    gappy = REPORT.features[0].model_copy(update={"missing": 300, "drifted": False})
    window = WindowReport.model_validate(
        REPORT.model_dump()
        | {
            "report_id": f"{model_id}/1.0.0/0",
            "model_id": model_id,
            "window_start": now - timedelta(minutes=1),
            "window_end": now,
            "features": [gappy],
            "drifted_features": [],
        }
    )
    traffic = TrafficReport(
        report_id=f"{model_id}/1.0.0/traffic/0",
        model_id=model_id,
        model_version="1.0.0",
        window_start=now - timedelta(seconds=30),
        window_end=now,
        event_count=1000,
        created_at=now,
    )
    with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
        made = client.post(
            "/v1/subscriptions",
            json={"name": "oncall", "channel": "webhook", "url": inbox.url, "models": [model_id]},
        )
        assert made.status_code == 201, made.text
        key = f"{model_id}/1.0.0"
        asyncio.run(
            _publish(
                infra.kafka_bootstrap,
                reports.name,
                [(key, _encoded(traffic)), (key, _encoded(window))],
            )
        )

        def rules(alerts: list[dict[str, object]]) -> list[object]:
            return sorted(a["rule"] for a in alerts if a["model_id"] == model_id)

        assert inbox.wait_for(lambda alerts: "model_silent" in rules(alerts), 60), inbox.bodies
        time.sleep(3)  # more silence: no second page
        firing = [a for a in inbox.alerts() if a["status"] == "firing"]
        told = sorted((a["rule"], a["feature"], a["severity"]) for a in firing)
        # Each message lists the group's firing alerts: count the distinct pages per rule.
        pages = {
            (a["rule"], body["delivery_id"])
            for body in inbox.bodies
            for a in body["alerts"]
            if a["status"] == "firing"
        }
        assert sorted({rule for rule, _ in pages}) == ["missing_rate", "model_silent"]
        assert ("missing_rate", "income", "high") in told
        assert ("model_silent", None, "high") in told
        (silent,) = [a for a in firing if a["rule"] == "model_silent"]
        assert "no predictions for" in str(silent["summary"])
        # The silent model inhibits its data-quality alert's repeats; nothing pages twice.
        assert sum(1 for rule, _ in pages if rule == "model_silent") == 1
