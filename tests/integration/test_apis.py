"""Registry, prediction logger and feedback APIs against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from feedback.api import create_app as feedback_app
from prediction_logger.api import create_app as prediction_logger_app
from registry.api import create_app as registry_app
from tests.kafka_tools import end_offsets, read_from
from vigil.codec import Codec
from vigil.schemas import FeedbackEvent, PredictionEvent
from vigil.settings import VigilSettings
from vigil.topics import FEEDBACK, PREDICTIONS


@pytest.fixture(scope="module")
def registry(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(registry_app()) as client:
        yield client


@pytest.fixture(scope="module")
def logger(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(prediction_logger_app()) as client:
        yield client


@pytest.fixture(scope="module")
def model_id(registry: TestClient) -> str:
    model_id = f"credit-{uuid.uuid4().hex[:8]}"
    response = registry.post("/v1/models", json=_registration(model_id))
    assert response.status_code == 201, response.text
    return model_id


def _registration(model_id: str) -> dict[str, object]:
    return {
        "model_id": model_id,
        "version": "1.0.0",
        "task": "binary",
        "features": [
            {"name": "income", "type": "numeric"},
            {"name": "region", "type": "categorical"},
        ],
        "risk": {"probability": 3, "impact": 4},
        "owner": "risk-team",
        "purpose": "loan approval",
    }


def _prediction(model_id: str, **features: object) -> dict[str, object]:
    return {
        "model_id": model_id,
        "model_version": "1.0.0",
        "features": features or {"income": 42_000.0, "region": "eu"},
        "prediction": True,
        "score": 0.7,
    }


def test_registry_lists_and_serves_versions_and_refuses_duplicates(
    registry: TestClient, model_id: str
) -> None:
    listed = {m["model_id"]: m for m in registry.get("/v1/models").json()}
    assert listed[model_id]["severity"] == "high"
    assert registry.get(f"/v1/models/{model_id}").json()["versions"][0]["version"] == "1.0.0"
    again = registry.post("/v1/models", json=_registration(model_id))
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "version"
    assert registry.get("/v1/models/nope").status_code == 404


def test_reference_upload_stores_a_profile_with_the_version(
    registry: TestClient, model_id: str
) -> None:
    rows = [{"income": float(i), "region": "eu" if i % 3 else "us"} for i in range(1000)]
    response = registry.post(f"/v1/models/{model_id}/versions/1.0.0/reference", json=rows)
    assert response.status_code == 200, response.text
    reference = registry.get(f"/v1/models/{model_id}/versions/1.0.0").json()["reference"]
    assert reference["row_count"] == 1000
    assert len(reference["features"][0]["bin_edges"]) == 9
    bad = registry.post(f"/v1/models/{model_id}/versions/1.0.0/reference", json=[{"income": "x"}])
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"features.income", "features.region"}


def test_accepted_predictions_are_on_the_topic_exactly_once(
    infra: VigilSettings, logger: TestClient, model_id: str
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    batch = [_prediction(model_id, income=float(i), region="eu") for i in range(50)]
    response = logger.post("/v1/predictions", json=batch)
    assert response.status_code == 200, response.text
    ids = set(response.json()["prediction_ids"])
    assert response.json()["accepted"] == len(ids) == 50

    def mine(ms: list) -> list:  # type: ignore[type-arg]
        return [m for m in ms if m.key.decode() in ids]

    messages = mine(
        asyncio.run(read_from(infra.kafka_bootstrap, start, lambda ms: len(mine(ms)) >= 50, 10))
    )
    events = [Codec(PredictionEvent).decode(m.value) for m in messages]
    assert sorted(e.prediction_id for e in events) == sorted(ids)
    assert {e.features["income"] for e in events} == {float(i) for i in range(50)}


def test_invalid_predictions_name_index_field_expected_and_received(
    logger: TestClient, model_id: str
) -> None:
    batch = [_prediction(model_id), _prediction(model_id, income="high", region="eu")]
    response = logger.post("/v1/predictions", json=batch)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "features.income",
            "expected": "a number or null",
            "received": '"high"',
            "index": 1,
        }
    ]
    missing = logger.post("/v1/predictions", json={"model_id": model_id, "features": {}})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"model_version", "prediction"}


def test_unknown_model_is_404(logger: TestClient) -> None:
    response = logger.post("/v1/predictions", json=_prediction("no-such-model"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "model_version"


def test_feedback_is_validated_and_published(infra: VigilSettings) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, FEEDBACK.name))
    prediction_id = uuid.uuid4().hex
    with TestClient(feedback_app()) as client:
        empty = client.post("/v1/feedback", json={"prediction_id": prediction_id})
        assert empty.status_code == 422
        assert "actual" in empty.json()["errors"][0]["expected"]
        ok = client.post(
            "/v1/feedback",
            json={
                "prediction_id": prediction_id,
                "actual": True,
                "flag": "incorrect",
                "reviewer": "ana",
                "comment": "good customer",
            },
        )
        assert ok.status_code == 200, ok.text
    messages = asyncio.run(
        read_from(
            infra.kafka_bootstrap,
            start,
            lambda ms: any(m.key == prediction_id.encode() for m in ms),
            10,
        )
    )
    (event,) = [
        Codec(FeedbackEvent).decode(m.value) for m in messages if m.key == prediction_id.encode()
    ]
    assert (event.actual, event.flag, event.reviewer) == (True, "incorrect", "ana")
