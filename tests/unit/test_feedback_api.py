"""The feedback API on a fake bus: feedback accepted, published, or refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from feedback.api import Feedback, create_app
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
    with TestClient(create_app(adapters=Feedback(bus))) as client:
        yield client


def test_feedback_is_accepted_and_published_keyed_by_prediction(
    client: TestClient, bus: FakeBus
) -> None:
    response = client.post(
        "/v1/feedback",
        json=[
            {"prediction_id": "p1", "actual": True, "feedback_id": "f1"},
            {"prediction_id": "p2", "flag": "harmful", "comment": "rude", "reviewer": "ana"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["feedback_ids"][0] == "f1"
    published = bus.records(FEEDBACK, EVENTS)
    assert [(e.feedback_id, e.actual, e.flag) for e in published] == [
        ("f1", True, None),
        (body["feedback_ids"][1], None, "harmful"),
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
