"""The feedback API on a fake bus: feedback accepted, published, or refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from feedback.api import Feedback, create_app
from feedback.config import Settings
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.unit.fakes import FakeBus
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent
from vigil.wire.topics import FEEDBACK

EVENTS = Codec(FeedbackEvent)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> Iterator[TestClient]:
    with TestClient(
        create_app(adapters=Feedback(bus), guard=fake_guard()), headers=ADMIN
    ) as client:
        yield client


def test_feedback_is_accepted_and_published_keyed_by_prediction(
    client: TestClient, bus: FakeBus
) -> None:
    response = client.post(
        "/v1/feedback",
        json=[
            {"prediction_id": "p1", "actual": True, "feedback_id": "f1"},
            {"prediction_id": "p2", "flag": "harmful", "comment": "rude", "reviewer": "admin"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["feedback_ids"][0] == "f1"
    published = bus.records(FEEDBACK, EVENTS)
    assert [(e.feedback_id, e.actual, e.flag, e.reviewer) for e in published] == [
        ("f1", True, None, "admin"),
        (body["feedback_ids"][1], None, "harmful", "admin"),
    ]
    assert bus.keys(FEEDBACK) == ["p1", "p2"]


def test_feedback_without_actual_or_flag_is_refused_and_nothing_published(
    client: TestClient, bus: FakeBus
) -> None:
    response = client.post("/v1/feedback", json={"prediction_id": "p1"})
    assert response.status_code == 422
    assert "nothing was stored" in response.json()["detail"]
    assert bus.messages == {}


def test_a_bus_that_fails_means_503(client: TestClient, bus: FakeBus) -> None:
    bus.down = True
    response = client.post("/v1/feedback", json={"prediction_id": "p1", "actual": 1})
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["detail"] == (
        "Kafka did not acknowledge the write (KafkaConnectionError); nothing was stored,"
        " retry later"
    )


def test_oversized_batches_and_deep_nesting_are_413_naming_the_limit(bus: FakeBus) -> None:
    settings = Settings(feedback_max_body_bytes=5_000, feedback_max_items=3)
    with TestClient(
        create_app(settings, Feedback(bus), guard=fake_guard()), headers=ADMIN
    ) as client:
        too_big = client.post("/v1/feedback", json={"prediction_id": "p", "comment": "x" * 6_000})
        assert too_big.status_code == 413
        assert too_big.json()["detail"] == "the request body is over the limit of 5000 bytes"
        many = client.post("/v1/feedback", json=[{"prediction_id": "p", "actual": 1}] * 4)
        assert many.status_code == 413
        assert many.json()["errors"][0]["expected"] == "batch of at most 3 items"
        deep: object = 1
        for _ in range(40):
            deep = [deep]
        nested = client.post("/v1/feedback", json={"prediction_id": "p", "actual": deep})
        assert nested.status_code == 413
        assert nested.json()["errors"][0]["expected"] == "JSON nesting of at most 32 levels"
    assert bus.messages == {}


def test_the_author_is_the_keys_principal_and_sources_follow_roles(bus: FakeBus) -> None:
    ana, ana_key = api_key("ana", ["sme"], ["credit-risk"])
    app_secret, app_key = api_key("label-pipeline", ["producer"], ["credit-risk"])
    guard = fake_guard(ana_key, app_key)
    with TestClient(create_app(adapters=Feedback(bus), guard=guard)) as client:
        review = {"prediction_id": "p1", "model_id": "credit-risk", "flag": "incorrect"}
        assert client.post("/v1/feedback", json=review, headers=bearer(ana)).status_code == 200
        forged = client.post(
            "/v1/feedback", json={**review, "reviewer": "bob"}, headers=bearer(ana)
        )
        assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "reviewer"
        truth = {"prediction_id": "p1", "model_id": "credit-risk", "actual": 1}
        as_sme = client.post(
            "/v1/feedback", json={**truth, "source": "ground_truth"}, headers=bearer(ana)
        )
        assert as_sme.status_code == 403 and as_sme.json()["errors"][0]["field"] == "source"
        as_producer = client.post(
            "/v1/feedback", json={**truth, "source": "ground_truth"}, headers=bearer(app_secret)
        )
        assert as_producer.status_code == 200
        unscoped = client.post(
            "/v1/feedback", json={"prediction_id": "p2", "flag": "ok"}, headers=bearer(ana)
        )
        assert unscoped.status_code == 403 and unscoped.json()["errors"][0]["received"] == "missing"
        mixed = client.post(
            "/v1/feedback", json=[review, {**review, "model_id": "other"}], headers=bearer(ana)
        )
        assert mixed.status_code == 403 and mixed.json()["errors"][0]["index"] == 1
    authors = [(e.reviewer, e.source) for e in bus.records(FEEDBACK, EVENTS)]
    assert authors == [("ana", "sme"), ("label-pipeline", "ground_truth")]
