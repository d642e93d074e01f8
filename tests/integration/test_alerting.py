"""Alerting against the real broker and Redis: one precise webhook call per state change."""

from __future__ import annotations

import asyncio
import uuid

from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from tests.access import SESSION
from tests.kafka_tools import end_offsets, private_copy, read_from
from tests.samples import report_at
from tests.webhook import webhook_inbox
from vigil.adapters.bus import new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import WindowReport
from vigil.wire.topics import DEADLETTER, METRICS, Topic


async def _send(
    bootstrap: str, topic: Topic, reports: list[WindowReport], garbage: bytes | None = None
) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        await publish(producer, topic, Codec(WindowReport), reports, lambda r: r.key)
        if garbage is not None:
            await producer.send_and_wait(topic.name, key=garbage, value=garbage)
    finally:
        await producer.stop()


def test_drift_fires_once_resolves_once_and_bad_reports_are_dead_lettered(
    infra: VigilSettings,
) -> None:
    model_id = f"alerted-{uuid.uuid4().hex[:8]}"
    garbage = f"not a report {model_id}".encode()
    reports_topic = private_copy(infra.kafka_bootstrap, METRICS, model_id)
    settings = Settings(
        alerting_reports_topic=reports_topic.name,
        alerting_group_id=f"test-{model_id}",
        alerting_redis_prefix=f"test:{model_id}",
        alerting_allowed_networks=["127.0.0.0/8"],  # the receiver is on this machine
        # A new group is told at once, its changes half a second later.
        alerting_group_wait_seconds=0,
        alerting_group_interval_seconds=0.5,
    )
    dead_start = asyncio.run(end_offsets(infra.kafka_bootstrap, DEADLETTER.name))
    with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
        for models, severity in (([model_id], "low"), (["*"], "critical"), (["other"], "low")):
            response = client.post(
                "/v1/subscriptions",
                json={
                    "name": f"{models}",
                    "channel": "webhook",
                    "url": inbox.url,
                    "models": models,
                    "min_severity": severity,
                },
            )
            assert response.status_code == 201, response.text
        drifting = [report_at(model_id, 0, True), report_at(model_id, 1, True)]
        asyncio.run(_send(infra.kafka_bootstrap, reports_topic, drifting, garbage))

        def mine(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
            return [a for a in alerts if a["model_id"] == model_id]

        assert inbox.wait_for(lambda alerts: len(mine(alerts)) >= 1, 30), inbox.bodies
        calm = [report_at(model_id, 2, False)]
        asyncio.run(_send(infra.kafka_bootstrap, reports_topic, calm))
        assert inbox.wait_for(lambda alerts: len(mine(alerts)) >= 2, 30), inbox.bodies
        # The model is not registered, so its alerts are "medium": only the first subscription.
        assert [(a["status"], a["feature"], a["severity"]) for a in mine(inbox.alerts())] == [
            ("firing", "income", "medium"),
            ("resolved", "income", "medium"),
        ]
        listed = client.get("/v1/alerts", params={"model_id": model_id}).json()
        assert [a["status"] for a in listed] == ["resolved"]
        assert client.get("/v1/subscriptions").status_code == 200

    letters = asyncio.run(
        read_from(
            infra.kafka_bootstrap, dead_start, lambda ms: any(m.key == garbage for m in ms), 10
        )
    )
    (letter,) = [m for m in letters if m.key == garbage]
    assert letter.value == garbage
    assert b"unknown encoding" in dict(letter.headers)["vigil.reason"]
