"""The prediction logger API on fakes: what a producing application sees for each batch."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from prediction_logger.api import PredictionLog, create_app
from prediction_logger.config import Settings
from tests.access import ADMIN, fake_guard
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from vigil.adapters.idempotency import scoped_id
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.topics import PREDICTIONS

EVENTS = Codec(PredictionEvent)
MODEL = ModelVersion.model_validate(
    {
        "model_id": "m",
        "version": "1",
        "task": "regression",
        "features": [{"name": "x", "type": "numeric"}],
        "risk": {"probability": 1, "impact": 1, "severity": "low"},
        "owner": "tests",
        "created_at": "2026-11-27T12:00:00Z",
        "updated_at": "2026-11-27T12:00:00Z",
    }
)
LATER = MODEL.model_copy(update={"model_id": "later"})


@pytest.fixture
def log() -> PredictionLog:
    return PredictionLog(FakeBus(), FakeCatalog([MODEL], elsewhere=[LATER]), FakeIdempotencyStore())


@pytest.fixture
def client(log: PredictionLog) -> Iterator[TestClient]:
    settings = Settings(prediction_logger_max_batch=10)
    with TestClient(create_app(settings, log, guard=fake_guard()), headers=ADMIN) as client:
        yield client


def _event(name: str, x: object = 1.0, model_id: str = "m") -> dict[str, object]:
    return {
        "prediction_id": name,
        "model_id": model_id,
        "model_version": "1",
        "features": {"x": x},
        "prediction": 0.5,
    }


def _published(log: PredictionLog) -> list[str]:
    assert isinstance(log.bus, FakeBus)
    return [e.prediction_id for e in log.bus.records(PREDICTIONS, EVENTS)]


def test_valid_events_are_published_once_keyed_by_prediction_id(
    client: TestClient, log: PredictionLog
) -> None:
    first = client.post("/v1/predictions", json=[_event("a"), _event("b", 2), _event("a")])
    assert first.status_code == 200, first.text
    assert first.json() == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": 0,
        "prediction_ids": ["a", "b", "a"],
        "errors": [],
    }
    again = client.post("/v1/predictions", json=[_event("b"), _event("c")])
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 1)
    assert _published(log) == ["a", "b", "c"]
    assert isinstance(log.bus, FakeBus)
    assert log.bus.keys(PREDICTIONS) == ["a", "b", "c"]
    assert log.bus.records(PREDICTIONS, EVENTS)[1].features == {"x": 2}


def test_unknown_models_are_404_alone_and_422_with_other_errors(
    client: TestClient, log: PredictionLog
) -> None:
    unknown = client.post("/v1/predictions", json=_event("u", model_id="nope"))
    assert unknown.status_code == 404
    assert unknown.json()["errors"] == [
        {
            "field": "model_version",
            "expected": "a registered version of model 'nope'",
            "received": '"1"',
            "index": 0,
        }
    ]
    mixed = client.post("/v1/predictions", json=[_event("u", model_id="nope"), _event("v", "hi")])
    assert mixed.status_code == 422
    assert [(e["index"], e["field"]) for e in mixed.json()["errors"]] == [
        (0, "model_version"),
        (1, "features.x"),
    ]
    assert _published(log) == []


def test_a_model_registered_a_moment_ago_is_found_by_catching_up(
    client: TestClient, log: PredictionLog
) -> None:
    response = client.post("/v1/predictions", json=_event("l", model_id="later"))
    assert response.status_code == 200, response.text
    assert _published(log) == ["l"]


def test_partial_stores_the_valid_events_and_lists_the_others(
    client: TestClient, log: PredictionLog
) -> None:
    batch = [_event("p0"), _event("p1", "high"), {"model_id": "m"}, _event("p3")]
    response = client.post("/v1/predictions", params={"partial": "true"}, json=batch)
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (2, 2)
    assert {e["index"] for e in response.json()["errors"]} == {1, 2}
    assert _published(log) == ["p0", "p3"]


def test_a_batch_over_the_limit_is_413_and_says_the_limit(client: TestClient) -> None:
    too_many = client.post("/v1/predictions", json=[_event(str(i)) for i in range(11)])
    assert too_many.status_code == 413
    assert "the limit is 10" in too_many.json()["detail"]


def test_a_bus_that_fails_means_503_and_the_ids_can_be_resent(
    client: TestClient, log: PredictionLog
) -> None:
    assert isinstance(log.bus, FakeBus)
    log.bus.down = True
    refused = client.post("/v1/predictions", json=_event("k"))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {
        "detail": "Kafka is unavailable (KafkaConnectionError); nothing was stored, retry later",
        "errors": [],
    }
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert (
        not_ready.json()["checks"]["kafka"]
        == "Unavailable: Kafka is unavailable (KafkaConnectionError)"
    )
    log.bus.down = False
    resent = client.post("/v1/predictions", json=_event("k"))
    assert (resent.status_code, resent.json()["accepted"]) == (200, 1)
    assert client.get("/readyz").json() == {"ready": True, "checks": {"kafka": "ok", "redis": "ok"}}


def test_an_id_another_request_is_storing_is_503_retry_shortly(
    client: TestClient, log: PredictionLog
) -> None:
    assert isinstance(log.keys, FakeIdempotencyStore)
    log.keys.states[scoped_id("m", "busy")] = "pending"
    response = client.post("/v1/predictions", json=[_event("free"), _event("busy")])
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert log.keys.states == {scoped_id("m", "busy"): "pending"}  # "free" given back
    assert _published(log) == []


def test_bodies_over_the_limit_are_413_compressed_inflated_or_chunked(log: PredictionLog) -> None:
    settings = Settings(prediction_logger_max_body_bytes=10_000)
    body = orjson.dumps([_event(str(i)) for i in range(200)])
    json_headers = {"content-type": "application/json"}
    with TestClient(create_app(settings, log, guard=fake_guard()), headers=ADMIN) as client:
        plain = client.post("/v1/predictions", content=body, headers=json_headers)
        assert plain.status_code == 413
        assert plain.json()["detail"] == "the request body is over the limit of 10000 bytes"
        chunked = client.post("/v1/predictions", content=iter([body]), headers=json_headers)
        assert chunked.status_code == 413
        gzip_headers = {**json_headers, "content-encoding": "gzip"}
        bomb = client.post("/v1/predictions", content=gzip.compress(body), headers=gzip_headers)
        assert bomb.status_code == 413
        assert bomb.json()["detail"] == "the inflated body is over the limit of 10000 bytes"
    assert _published(log) == []


def test_an_event_over_the_size_limit_is_refused_up_front_naming_it(log: PredictionLog) -> None:
    settings = Settings(prediction_logger_max_event_bytes=1_000)
    big = {**_event("big"), "tags": {f"t{i}": "x" * 500 for i in range(4)}}
    with TestClient(create_app(settings, log, guard=fake_guard()), headers=ADMIN) as client:
        refused = client.post("/v1/predictions", json=[_event("a"), big, _event("c")])
        assert refused.status_code == 413
        ((error),) = refused.json()["errors"]
        assert (error["index"], error["expected"]) == (
            1,
            "an event of at most 1000 bytes once encoded",
        )
        assert _published(log) == []
        batch = [_event("a", "bad"), big, _event("c")]
        partial = client.post("/v1/predictions", params={"partial": "true"}, json=batch)
    assert partial.status_code == 200, partial.text
    assert (partial.json()["accepted"], partial.json()["rejected"]) == (1, 2)
    assert [e["index"] for e in partial.json()["errors"]] == [0, 1]
    assert _published(log) == ["c"]


def test_a_partly_stored_write_keeps_the_stored_ids_so_a_resend_writes_only_the_rest(
    log: PredictionLog,
) -> None:
    assert isinstance(log.bus, FakeBus) and isinstance(log.keys, FakeIdempotencyStore)
    log.bus.max_message_bytes = 300  # Kafka refuses the big event, stores the others
    big = {**_event("big"), "tags": {"note": "x" * 500}}  # under the logger's own limit
    batch = [_event("a"), big, _event("c")]
    with TestClient(create_app(Settings(), log, guard=fake_guard()), headers=ADMIN) as client:
        first = client.post("/v1/predictions", json=batch)
        assert (first.status_code, first.headers["retry-after"]) == (503, "5")
        assert "did not store 1 of 3" in first.json()["detail"]
        assert log.keys.states == {scoped_id("m", "a"): "stored", scoped_id("m", "c"): "stored"}
        log.bus.max_message_bytes = 1024 * 1024
        again = client.post("/v1/predictions", json=batch)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (1, 2)
    assert _published(log) == ["a", "c", "big"]  # each once


def test_ids_are_claimed_per_model(client: TestClient, log: PredictionLog) -> None:
    assert client.post("/v1/predictions", json=_event("same", model_id="later")).status_code == 200
    mine = client.post("/v1/predictions", json=_event("same"))
    assert (mine.json()["accepted"], mine.json()["duplicates"]) == (1, 0)
    assert _published(log) == ["same", "same"]
