"""Against the real broker and Redis: the SDK's report of a host serving a version with another
package version than it was validated with pages once (``environment_mismatch``), naming the
host and the difference, through the same subscription as every other alert."""

from __future__ import annotations

import asyncio
import uuid

from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from tests.access import SESSION
from tests.kafka_tools import private_copy
from tests.samples import MODEL
from tests.webhook import webhook_inbox
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport
from vigil.wire.records import Environment, Lineage, ModelVersion, utcnow
from vigil.wire.topics import ENVIRONMENTS, METRICS, MODELS


async def _publish(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    producer = new_producer(bootstrap, "test-environments")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


def test_a_host_serving_another_environment_pages_once(infra: VigilSettings) -> None:
    model_id = f"served-{uuid.uuid4().hex[:8]}"
    validated = Environment(python="3.11.9", packages={"scikit-learn": "1.5.2"})
    version = MODEL.model_copy(
        update={"model_id": model_id, "lineage": Lineage(validated_environment=validated)}
    )
    bootstrap = infra.kafka_bootstrap
    asyncio.run(_publish(bootstrap, MODELS.name, version.key, Codec(ModelVersion).encode(version)))
    reports = private_copy(bootstrap, METRICS, model_id)
    environments = private_copy(bootstrap, ENVIRONMENTS, model_id)
    settings = Settings(
        alerting_reports_topic=reports.name,
        alerting_environments_topic=environments.name,
        alerting_group_id=f"test-{model_id}",
        alerting_redis_prefix=f"test:{model_id}",
        alerting_events_topic=f"test.alerts.{model_id}",
        alerting_allowed_networks=["127.0.0.0/8"],
        alerting_group_wait_seconds=0,
        alerting_group_interval_seconds=0.5,
    )
    served = EnvironmentReport(
        model_id=model_id,
        model_version=version.version,
        host="web-7",
        python="3.11.9",
        packages={"scikit-learn": "1.4.0", "numpy": "2.1.0"},
        reported_at=utcnow(),
    )
    with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
        made = client.post(
            "/v1/subscriptions",
            json={"name": "oncall", "channel": "webhook", "url": inbox.url, "models": [model_id]},
        )
        assert made.status_code == 201, made.text
        encoded = Codec(EnvironmentReport).encode(served)
        asyncio.run(_publish(bootstrap, environments.name, served.key, encoded))

        def ours(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
            return [a for a in alerts if a["model_id"] == model_id and a["status"] == "firing"]

        assert inbox.wait_for(lambda alerts: bool(ours(alerts)), 60), inbox.bodies
        (alert,) = ours(inbox.alerts())
        assert (alert["rule"], alert["feature"]) == ("environment_mismatch", "web-7")
        assert "scikit-learn is 1.4.0, validated with 1.5.2" in str(alert["details"])
        listed = client.get("/v1/alerts", params={"model_id": model_id}).json()
        assert [(a["rule"], a["status"]) for a in listed] == [("environment_mismatch", "firing")]
