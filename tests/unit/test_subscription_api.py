"""The subscription routes on fakes: channels, the secret shown once, targets refused with a
422, and ``POST /v1/subscriptions/{id}/test``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from alerting.subscriptions import DeliveryResult
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.unit.fakes import FakeAlertStore, FakeNotifier, alerting_on

ONCALL_KEY, ONCALL = api_key("olga", ["oncall"], ["credit-risk"])
SME_KEY, SME = api_key("ana", ["sme"], ["credit-risk"])
HOOK = {
    "name": "risk on-call",
    "channel": "webhook",
    "url": "https://hooks.example.com/vigil",
    "models": ["credit-risk"],
}


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


def _client(store: FakeAlertStore, notifier: FakeNotifier, **settings: Any) -> TestClient:
    config = Settings(**{"alerting_allowed_networks": []} | settings)
    app = create_app(config, alerting_on(store, notifier), fake_guard(ONCALL, SME))
    return TestClient(app, headers=bearer(ONCALL_KEY))


@pytest.fixture
def client(store: FakeAlertStore, notifier: FakeNotifier) -> Iterator[TestClient]:
    with _client(store, notifier) as client:
        yield client


def test_a_webhook_secret_is_answered_once_stored_and_never_listed(
    client: TestClient, store: FakeAlertStore
) -> None:
    created = client.post("/v1/subscriptions", json=HOOK)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert len(bytes.fromhex(secret)) == 32  # 256 bits
    assert store.subscriptions_by_id[created.json()["id"]].secret == secret
    listed = client.get("/v1/subscriptions")
    assert listed.status_code == 200
    assert secret not in listed.text and "secret" not in listed.json()[0]
    assert listed.json()[0]["signed"] is True


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://localhost:9000/hook",
    ],
)
def test_an_internal_target_is_refused_with_a_422_naming_the_url(
    client: TestClient, store: FakeAlertStore, url: str
) -> None:
    response = client.post("/v1/subscriptions", json=HOOK | {"url": url})
    assert response.status_code == 422, response.text
    assert "VIGIL_ALERTING_ALLOWED_NETWORKS" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "url"
    assert not store.subscriptions_by_id


def test_allowed_networks_let_a_local_receiver_subscribe(
    store: FakeAlertStore, notifier: FakeNotifier
) -> None:
    with _client(store, notifier, alerting_allowed_networks=["127.0.0.0/8"]) as client:
        local = HOOK | {"url": "http://127.0.0.1:9000/hook"}
        assert client.post("/v1/subscriptions", json=local).status_code == 201
        metadata = HOOK | {"url": "http://169.254.169.254/"}
        assert client.post("/v1/subscriptions", json=metadata).status_code == 422


def test_email_is_refused_until_an_smtp_server_is_configured(
    store: FakeAlertStore, notifier: FakeNotifier
) -> None:
    mail = {"name": "m", "channel": "email", "to": ["oncall@example.com"], "models": ["*"]}
    with _client(store, notifier) as client:
        response = client.post("/v1/subscriptions", json=mail, headers=ADMIN)
        assert response.status_code == 422 and "e-mail" in response.json()["detail"]
    with _client(store, notifier, alerting_smtp_host="mail.example.com") as client:
        response = client.post("/v1/subscriptions", json=mail, headers=ADMIN)
        assert response.status_code == 201, response.text
        assert response.json()["secret"] is None


def test_the_test_route_sends_a_test_notification_and_says_how_it_went(
    client: TestClient, notifier: FakeNotifier
) -> None:
    sub_id = client.post("/v1/subscriptions", json=HOOK).json()["id"]
    response = client.post(f"/v1/subscriptions/{sub_id}/test")
    assert response.status_code == 200, response.text
    (notification,) = notifier.notifications
    assert notification.test and notification.receiver == "risk on-call"
    assert (notification.alerts[0].model_id, notification.alerts[0].status) == (
        "credit-risk",
        "firing",
    )
    assert response.json() | {"latency_seconds": 0} == {
        "delivery_id": notification.delivery_id,
        "ok": True,
        "status_code": 200,
        "latency_seconds": 0,
        "attempts": 1,
        "error": None,
    }


def test_a_failed_test_delivery_is_reported(store: FakeAlertStore) -> None:
    failing = FakeNotifier(DeliveryResult(ok=False, status_code=500, latency=0.1, error="HTTP 500"))
    with _client(store, failing) as client:
        sub_id = client.post("/v1/subscriptions", json=HOOK).json()["id"]
        body = client.post(f"/v1/subscriptions/{sub_id}/test").json()
    assert (body["ok"], body["error"]) == (False, "HTTP 500")


def test_the_test_route_needs_the_oncall_role_and_a_known_subscription(
    client: TestClient,
) -> None:
    sub_id = client.post("/v1/subscriptions", json=HOOK).json()["id"]
    refused = client.post(f"/v1/subscriptions/{sub_id}/test", headers=bearer(SME_KEY))
    assert refused.status_code == 403
    assert client.post("/v1/subscriptions/nope/test").status_code == 404
