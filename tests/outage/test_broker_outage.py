"""A broker stopped and restarted under load: nothing accepted is lost, nothing false is said.

Runs only against the broker `make up-infra` started (it stops and starts it with
deploy/kafka.sh), after every other suite that needs Kafka.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prediction_logger.api import create_app as logger_app
from prediction_logger.config import Settings
from registry.api import create_app as registry_app
from tests.access import SESSION
from tests.kafka_tools import Message, end_offsets, read_from
from tests.samples import one_feature_model
from vigil.adapters.settings import VigilSettings
from vigil.sdk import DeliveryPolicy, PredictionLogger
from vigil.wire.topics import PREDICTIONS

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("VIGIL_RUN_DIR", ROOT / ".run"))

pytestmark = pytest.mark.skipif(
    not (RUN_DIR / "kafka.pid").exists(), reason="needs the broker started by make up-infra"
)


def kafka(command: str) -> None:
    subprocess.run([str(ROOT / "deploy/kafka.sh"), command], check=True, capture_output=True)


@pytest.fixture
def broker_outage() -> Iterator[None]:
    """The broker is running again after the test, whatever happens in it."""
    try:
        yield
    finally:
        kafka("start")


def _prediction(model: str, name: str) -> dict[str, object]:
    return {
        "prediction_id": f"{model}-{name}",
        "model_id": model,
        "model_version": "1",
        "features": {"x": 1.0},
        "prediction": 1.0,
    }


def test_sdk_and_http_ingest_through_a_broker_restart(
    infra: VigilSettings, tmp_path: Path, broker_outage: None
) -> None:
    model = f"outage-{uuid.uuid4().hex[:8]}"
    with TestClient(registry_app(), headers=SESSION) as registry:
        registry.post("/v1/models", json=one_feature_model(model)).raise_for_status()
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    policy = DeliveryPolicy(
        send_timeout_seconds=5, retry_interval_seconds=1, attempts=2, backoff_seconds=0.1
    )
    sdk = PredictionLogger(f"kafka://{infra.kafka_bootstrap}", spool_dir=tmp_path, policy=policy)

    def log(batch: str, n: int) -> list[str]:
        return [
            sdk.log(model, "1", {"x": float(i)}, 1.0, prediction_id=f"{model}-{batch}{i}")
            for i in range(n)
        ]

    settings = Settings(prediction_logger_write_timeout_seconds=3)
    with TestClient(logger_app(settings), headers=SESSION) as http:
        ids = log("a", 2000)
        assert http.post("/v1/predictions", json=_prediction(model, "h1")).status_code == 200
        assert sdk.flush(within=60)

        kafka("stop")
        ids += log("b", 2000)
        refused = http.post("/v1/predictions", json=_prediction(model, "h2"))
        assert refused.status_code == 503, refused.text  # never 200 for an event not stored
        assert refused.headers["retry-after"]
        assert http.get("/readyz").status_code == 503
        assert not sdk.flush(within=8)
        assert sdk.stats().spooled > 0

        kafka("start")
        ids += log("c", 1000)
        assert sdk.close(within=120), sdk.stats()
        # The client resends h2 until it gets an answer: stored now, or stored meanwhile.
        for _ in range(60):
            resent = http.post("/v1/predictions", json=_prediction(model, "h2"))
            if resent.status_code == 200:
                break
            assert resent.status_code == 503
            time.sleep(1)
        assert resent.json()["accepted"] + resent.json()["duplicates"] == 1

    def mine(ms: list[Message]) -> list[str]:
        return [m.key.decode() for m in ms if m.key.decode().startswith(model)]

    expected = set(ids) | {f"{model}-h1", f"{model}-h2"}
    seen = mine(
        asyncio.run(
            read_from(infra.kafka_bootstrap, start, lambda ms: set(mine(ms)) >= expected, 60)
        )
    )
    assert set(seen) == expected  # every SDK event delivered (at least once)
    assert sdk.stats().dropped == 0
    # Events accepted over HTTP are on the topic exactly once.
    assert (seen.count(f"{model}-h1"), seen.count(f"{model}-h2")) == (1, 1)
