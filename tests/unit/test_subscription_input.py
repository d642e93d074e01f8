"""What a subscription may name: a printable name and model ids (or "*"), on fakes.

The hostile corpus (``tests/e2e/test_hostile.py``) found ``SubscriptionIn`` taking any string:
names with NUL or CR/LF, and "model ids" that are empty, 5,000 characters, NUL, "../" or HTML,
stored and answered 201.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.subscriptions import MAX_MODELS, Subscription
from tests.access import ADMIN, fake_guard
from tests.unit.fakes import FakeAlertStore, alerting_on


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def client(store: FakeAlertStore) -> Iterator[TestClient]:
    with TestClient(
        create_app(adapters=alerting_on(store), guard=fake_guard()), headers=ADMIN
    ) as client:
        yield client


def _body(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "risk team",
        "channel": "webhook",
        "url": "https://hooks.example.com/hook",
        "models": ["credit-risk"],
    }
    return body | changes


@pytest.mark.parametrize("name", ["a\x00b", "a\r\nb", "tab\there", "n" * 129, ""])
def test_a_name_with_control_characters_or_too_long_is_refused(
    client: TestClient, store: FakeAlertStore, name: str
) -> None:
    response = client.post("/v1/subscriptions", json=_body(name=name))
    assert response.status_code == 422, response.text
    assert "name" in response.text
    assert not store.subscriptions_by_id


@pytest.mark.parametrize(
    "model", ["", "a" * 5000, "a\x00b", "a\r\nb", "../../etc", "<script>alert(1)</script>", "*x"]
)
def test_a_model_that_is_no_id_is_refused_by_name(
    client: TestClient, store: FakeAlertStore, model: str
) -> None:
    response = client.post("/v1/subscriptions", json=_body(models=["credit-risk", model]))
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "models.1"  # the item, by its place in the list
    assert error["expected"].startswith("a model id")
    assert json.dumps(model)[:20] in error["received"]
    assert not store.subscriptions_by_id


def test_at_most_a_thousand_models(client: TestClient) -> None:
    many = [f"m{i}" for i in range(MAX_MODELS + 1)]
    response = client.post("/v1/subscriptions", json=_body(models=many))
    assert response.status_code == 422, response.text
    assert "models" in response.text
    response = client.post("/v1/subscriptions", json=_body(models=many[:MAX_MODELS]))
    assert response.status_code == 201, response.text


def test_ids_and_the_wildcard_are_taken(client: TestClient) -> None:
    response = client.post(
        "/v1/subscriptions", json=_body(name="Risk — on call ✓", models=["*", "m-1.a_b:2"])
    )
    assert response.status_code == 201, response.text
    assert response.json()["models"] == ["*", "m-1.a_b:2"]


def test_a_subscription_stored_before_the_checks_still_loads() -> None:
    stored = Subscription.model_validate(
        _body(name="n" * 200, models=["legacy model"], id="s1", created_at="2024-01-01T00:00:00Z")
    )
    again = Subscription.model_validate_json(stored.model_dump_json())
    assert again.name == "n" * 200
    assert again.models == ["legacy model"]
