"""A prediction_id names an event within its model: two models may use the same ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from prediction_logger.api import PredictionLog, create_app
from prediction_logger.config import Settings
from prediction_logger.handlers import Event, first_occurrences
from tests.access import ADMIN, fake_guard
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from tests.unit.test_prediction_logger_api import MODEL, _event
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import PREDICTIONS

OTHER = MODEL.model_copy(update={"model_id": "other"})
EVENTS = Codec(PredictionEvent)


def _plain(model_id: str, prediction_id: str, x: float) -> Event:
    return {
        "prediction_id": prediction_id,
        "model_id": model_id,
        "model_version": "1",
        "timestamp": datetime(2026, 11, 28, tzinfo=UTC),
        "features": {"x": x},
        "prediction": 0.5,
    }


def test_first_occurrences_are_per_model_and_prediction_id() -> None:
    batch = [_plain("m", "p", 1), _plain("other", "p", 2), _plain("m", "p", 3)]
    assert [e["features"]["x"] for e in first_occurrences(batch)] == [1, 2]


@pytest.fixture
def log() -> PredictionLog:
    return PredictionLog(FakeBus(), FakeCatalog([MODEL, OTHER]), FakeIdempotencyStore())


def _published(log: PredictionLog) -> list[tuple[str, str]]:
    assert isinstance(log.bus, FakeBus)
    return [(e.model_id, e.prediction_id) for e in log.bus.records(PREDICTIONS, EVENTS)]


def test_two_models_sharing_an_id_in_one_batch_are_both_stored(log: PredictionLog) -> None:
    batch = [_event("p"), _event("p", model_id="other"), _event("p")]
    with TestClient(create_app(Settings(), log, guard=fake_guard()), headers=ADMIN) as client:
        response = client.post("/v1/predictions", json=batch)
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["duplicates"]) == (2, 1)
    assert _published(log) == [("m", "p"), ("other", "p")]


def test_an_oversized_event_refuses_only_itself_not_another_models_event_with_its_id(
    log: PredictionLog,
) -> None:
    settings = Settings(prediction_logger_max_event_bytes=1_000)
    big = {**_event("p", model_id="other"), "tags": {f"t{i}": "x" * 500 for i in range(4)}}
    with TestClient(create_app(settings, log, guard=fake_guard()), headers=ADMIN) as client:
        response = client.post(
            "/v1/predictions", params={"partial": "true"}, json=[big, _event("p")]
        )
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 1)
    assert [e["index"] for e in response.json()["errors"]] == [0]
    assert _published(log) == [("m", "p")]
