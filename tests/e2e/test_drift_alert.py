"""The whole system, each service its own process, driven as a user would: HTTP and Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.access import SESSION, SESSION_KEY, bearer
from tests.e2e.stack import Stack, stack_env
from tests.kafka_tools import Message, end_offsets, is_window_report, read_from
from tests.samples import one_feature_model
from tests.webhook import WebhookInbox, webhook_inbox
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, WindowReport
from vigil.wire.topics import DEADLETTER, METRICS, PREDICTIONS

pytestmark = pytest.mark.e2e
MINUTE = 60


@pytest.fixture(scope="module")
def stack(infra: VigilSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = stack_env(
        VIGIL_DRIFT_WINDOW_SECONDS="60",
        VIGIL_DRIFT_LATENESS_SECONDS="5",
        VIGIL_DRIFT_IDLE_CLOSE_SECONDS="3",
    )
    running = Stack(Path(tmp_path_factory.mktemp("logs")), env)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def inbox() -> Iterator[WebhookInbox]:
    with webhook_inbox() as hook:
        yield hook


def _vigil_key(stack: Stack, role: str, model_id: str) -> str:
    """A key made with the installed `vigil` command, as the README shows."""
    made = subprocess.run(
        [
            str(Path(sys.executable).parent / "vigil"),
            "--url",
            stack.url("registry"),
            "keys",
            "create",
            "--name",
            f"{role}-{model_id}",
            "--role",
            role,
            "--model",
            model_id,
        ],
        env={**os.environ, "VIGIL_API_KEY": SESSION_KEY},
        capture_output=True,
        text=True,
        check=True,
    )
    key: str = json.loads(made.stdout)["key"]
    return key


def _rows(rng: np.random.Generator, n: int, income_shift: float = 0.0) -> list[dict[str, object]]:
    incomes = rng.lognormal(10.5, 0.4, n) * (1 + income_shift)
    ages = rng.normal(42, 11, n)
    regions = rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.3, 0.2])
    return [
        {"income": float(i), "age": float(a), "region": str(r)}
        for i, a, r in zip(incomes, ages, regions, strict=True)
    ]


def _predictions(
    model_id: str, rows: list[dict[str, object]], start: float
) -> list[dict[str, object]]:
    spacing = 50 / len(rows)  # all inside one 60 s window
    return [
        {
            "model_id": model_id,
            "model_version": "1.0.0",
            "timestamp": start + i * spacing,
            "features": row,
            "prediction": bool(i % 2),
            "score": 0.5,
        }
        for i, row in enumerate(rows)
    ]


def _reports(messages: list[Message], model_id: str) -> list[WindowReport]:
    """The model's window reports, one per window (a stack from `make up` may publish them
    too); the traffic, performance and flag reports beside them are passed over."""
    codec = Codec(WindowReport)
    decoded = (codec.decode(m.value) for m in messages if is_window_report(m.value))
    return list({r.report_id: r for r in decoded if r.model_id == model_id}.values())


def test_a_shifted_feature_raises_one_alert_for_exactly_that_feature(
    infra: VigilSettings, stack: Stack, inbox: WebhookInbox
) -> None:
    rng = np.random.default_rng(7)
    model_id = f"e2e-credit-{uuid.uuid4().hex[:8]}"
    # Keys as an operator makes them, with the `vigil` command: one per role, for this model.
    keys = {
        role: _vigil_key(stack, role, model_id) for role in ("data_scientist", "producer", "oncall")
    }
    http = httpx.Client(timeout=30, headers=bearer(keys["data_scientist"]))
    registered = http.post(
        stack.url("registry") + "/v1/models",
        json={
            "model_id": model_id,
            "version": "1.0.0",
            "task": "binary",
            "features": [
                {"name": "income", "type": "numeric"},
                {"name": "age", "type": "numeric"},
                {"name": "region", "type": "categorical"},
            ],
            "risk": {"probability": 4, "impact": 5},
            "owner": "risk-team",
            "purpose": "loans",
        },
    )
    assert registered.status_code == 201, registered.text
    reference = http.post(
        stack.url("registry") + f"/v1/models/{model_id}/versions/1.0.0/reference",
        json=_rows(rng, 5000),
    )
    assert reference.status_code == 200, reference.text
    subscribed = http.post(
        stack.url("alerting") + "/v1/subscriptions",
        headers=bearer(keys["oncall"]),
        json={
            "name": "risk on-call",
            "channel": "webhook",
            "url": inbox.url,
            "models": [model_id],
            "min_severity": "high",
        },
    )
    assert subscribed.status_code == 201, subscribed.text
    metrics_start = asyncio.run(end_offsets(infra.kafka_bootstrap, METRICS.name))

    window0 = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
    normal = _predictions(model_id, _rows(rng, 2000), window0)
    shifted = _predictions(model_id, _rows(rng, 2000, income_shift=0.5), window0 + MINUTE)
    for batch_start in range(0, 4000, 500):
        batch = (normal + shifted)[batch_start : batch_start + 500]
        response = http.post(
            stack.url("prediction_logger") + "/v1/predictions",
            json=batch,
            headers=bearer(keys["producer"]),
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 500

    def ours(alerts: list[dict[str, object]]) -> list[dict[str, object]]:
        return [a for a in alerts if a["model_id"] == model_id]

    assert inbox.wait_for(lambda alerts: len(ours(alerts)) >= 1, 90), (
        stack.tail("drift_detector") + "\n" + stack.tail("alerting")
    )
    reports = _reports(
        asyncio.run(
            read_from(
                infra.kafka_bootstrap,
                metrics_start,
                lambda ms: len(_reports(ms, model_id)) >= 2,
                30,
            )
        ),
        model_id,
    )
    by_start = {int(r.window_start.timestamp()): r for r in reports}
    assert by_start[int(window0)].event_count == 2000
    assert by_start[int(window0)].drifted_features == []
    assert by_start[int(window0 + MINUTE)].event_count == 2000
    assert by_start[int(window0 + MINUTE)].drifted_features == ["income"]

    (alert,) = ours(inbox.alerts())
    assert (alert["status"], alert["feature"], alert["rule"]) == (
        "firing",
        "income",
        "feature_drift",
    )
    assert alert["severity"] == "critical"  # probability 4 x impact 5
    assert alert["model_version"] == "1.0.0"
    listed = http.get(stack.url("alerting") + "/v1/alerts", params={"model_id": model_id}).json()
    assert [(a["feature"], a["status"]) for a in listed] == [("income", "firing")]


def test_json_from_any_kafka_client_reaches_a_report_and_garbage_is_dead_lettered(
    infra: VigilSettings, stack: Stack
) -> None:
    model_id = f"e2e-json-{uuid.uuid4().hex[:8]}"
    http = httpx.Client(timeout=30, headers=SESSION)
    registered = http.post(
        stack.url("registry") + "/v1/models", json=one_feature_model(model_id, "1.0.0")
    )
    assert registered.status_code == 201
    http.post(
        stack.url("registry") + f"/v1/models/{model_id}/versions/1.0.0/reference",
        json=[{"x": float(v)} for v in range(1000)],
    ).raise_for_status()
    metrics_start = asyncio.run(end_offsets(infra.kafka_bootstrap, METRICS.name))
    dead_start = asyncio.run(end_offsets(infra.kafka_bootstrap, DEADLETTER.name))
    window = (time.time() // MINUTE) * MINUTE - 5 * MINUTE
    garbage = f"garbage {model_id}".encode()

    async def produce() -> None:
        producer = new_producer(infra.kafka_bootstrap, "e2e-json")
        await producer.start()
        try:
            for i in range(300):
                event = {
                    "prediction_id": f"{model_id}-{i}",
                    "model_id": model_id,
                    "model_version": "1.0.0",
                    "timestamp": window + i * 0.1,
                    "features": {"x": float(i)},
                    "prediction": 1.5,
                }
                await producer.send(
                    PREDICTIONS.name,
                    key=event["prediction_id"].encode(),
                    value=json.dumps(event).encode(),
                )
            await producer.send_and_wait(PREDICTIONS.name, key=garbage, value=garbage)
        finally:
            await producer.stop()

    asyncio.run(produce())
    messages = asyncio.run(
        read_from(infra.kafka_bootstrap, metrics_start, lambda ms: bool(_reports(ms, model_id)), 60)
    )
    (report,) = _reports(messages, model_id)
    assert report.event_count == 300
    assert report.reference_source == "uploaded"
    letters = asyncio.run(
        read_from(
            infra.kafka_bootstrap, dead_start, lambda ms: any(m.key == garbage for m in ms), 30
        )
    )
    # One dead letter per drift-detector group that read it (`make up` may run another).
    mine = [m for m in letters if m.key == garbage]
    assert mine
    for letter in mine:
        assert letter.value == garbage
        assert dict(letter.headers)["vigil.source.topic"] == PREDICTIONS.name.encode()
        assert b"unknown encoding" in dict(letter.headers)["vigil.reason"]


def test_the_sdk_logs_through_the_http_endpoint(infra: VigilSettings, stack: Stack) -> None:
    from vigil.sdk import PredictionLogger

    model_id = f"e2e-sdk-{uuid.uuid4().hex[:8]}"
    http = httpx.Client(timeout=30, headers=SESSION)
    http.post(
        stack.url("registry") + "/v1/models", json=one_feature_model(model_id)
    ).raise_for_status()
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    producer = http.post(
        stack.url("registry") + "/v1/keys",
        json={"name": f"app-{model_id}", "roles": ["producer"], "models": [model_id]},
    ).json()["key"]
    logger = PredictionLogger(stack.url("prediction_logger"), spool_max_bytes=0, api_key=producer)

    @logger.monitor(model_id, "1", feature_names=["x"])
    def predict(rows: list[list[float]]) -> list[bool]:
        return [row[0] > 0.5 for row in rows]

    logger.log(model_id, "1", {"x": "not a number"}, True)  # refused alone, and counted
    for i in range(20):
        predict([[j / 100] for j in range(i * 50, i * 50 + 50)])
    assert logger.close(within=30)
    stats = logger.stats()
    assert (stats.sent, stats.dropped) == (1000, 1), stats

    def mine(ms: list[Message]) -> list[Message]:
        return [m for m in ms if Codec(PredictionEvent).decode(m.value).model_id == model_id]

    messages = asyncio.run(
        read_from(infra.kafka_bootstrap, start, lambda ms: len(mine(ms)) >= 1000, 30)
    )
    assert len(mine(messages)) == 1000


def test_the_sdk_keeps_its_events_while_its_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    from vigil.sdk import PredictionLogger

    logger = PredictionLogger(
        stack.url("prediction_logger"), spool_dir=tmp_path, api_key="vgl_revoked_or_wrong"
    )
    logger.log("any-model", "1", {"x": 1.0}, True)
    assert not logger.flush(within=3)
    stats = logger.stats()
    assert stats.sent == 0 and stats.dropped == 0
    assert stats.last_error is not None and "KeyRefused" in stats.last_error
    assert "401" in stats.last_error
    logger.close(within=1)
