"""The alerting API and report handling on fakes: subscriptions, alerts and notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from alerting.api import Alerting, create_app
from alerting.worker import Alerter
from tests.samples import MODEL, REPORT
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.adapters.stage_logic import Message
from vigil.wire.codec import Codec
from vigil.wire.records import Alert, WindowReport
from vigil.wire.topics import ALERTS, METRICS

ALERTS_CODEC = Codec(Alert)


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def client(store: FakeAlertStore) -> Iterator[TestClient]:
    with TestClient(create_app(adapters=Alerting(store))) as client:
        yield client


@pytest.fixture
def alerter(store: FakeAlertStore) -> Alerter:
    return Alerter(FakeBus(), FakeCatalog([MODEL]), store, FakeNotifier())


def _subscribe(client: TestClient, name: str, models: list[str], severity: str) -> str:
    body = {
        "name": name,
        "channel": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "models": models,
        "min_severity": severity,
    }
    response = client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _report(minute: int, drifted: bool) -> WindowReport:
    feature = REPORT.features[0].model_copy(update={"drifted": drifted})
    start = REPORT.window_start + timedelta(minutes=minute)
    return REPORT.model_copy(
        update={"window_start": start, "window_end": start, "features": [feature]}
    )


def test_subscriptions_are_created_listed_and_removed(client: TestClient) -> None:
    first = _subscribe(client, "risk", ["credit-risk"], "low")
    second = _subscribe(client, "all", ["*"], "critical")
    assert [s["id"] for s in client.get("/v1/subscriptions").json()] == [first, second]
    assert client.delete(f"/v1/subscriptions/{first}").status_code == 204
    assert [s["name"] for s in client.get("/v1/subscriptions").json()] == ["all"]
    gone = client.delete(f"/v1/subscriptions/{first}")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"no subscription {first!r}", "errors": []}
    bad = client.post("/v1/subscriptions", json={"name": "x", "channel": "sms"})
    assert bad.status_code == 422


async def test_a_drift_report_fires_one_alert_told_to_who_wants_it(
    client: TestClient, alerter: Alerter
) -> None:
    _subscribe(client, "risk", ["credit-risk"], "high")
    _subscribe(client, "pager", ["*"], "critical")
    fired = await alerter.handle_report(_report(0, drifted=True))
    again = await alerter.handle_report(_report(1, drifted=True))
    resolved = await alerter.handle_report(_report(2, drifted=False))
    assert ([a.status for a in fired], again, [a.status for a in resolved]) == (
        ["firing"],
        [],
        ["resolved"],
    )
    assert isinstance(alerter.notifier, FakeNotifier)
    # The model is registered as high risk: "risk" hears of it, "pager" (critical) does not.
    assert [(name, [a.status for a in alerts]) for name, alerts in alerter.notifier.sent] == [
        ("risk", ["firing"]),
        ("risk", ["resolved"]),
    ]
    assert isinstance(alerter.bus, FakeBus)
    published = alerter.bus.records(ALERTS, ALERTS_CODEC)
    assert [(a.status, a.severity, a.feature) for a in published] == [
        ("firing", "high", "income"),
        ("resolved", "high", "income"),
    ]
    listed = client.get("/v1/alerts", params={"model_id": "credit-risk"}).json()
    assert [(a["status"], a["fingerprint"]) for a in listed] == [
        ("resolved", published[0].fingerprint)
    ]
    assert client.get("/v1/alerts", params={"status": "firing"}).json() == []


async def test_an_unreadable_report_is_dead_lettered_with_the_reason(alerter: Alerter) -> None:
    message = Message(METRICS.name, 3, 41, b"k", b"not a report")
    await alerter.handle(message)
    assert isinstance(alerter.bus, FakeBus)
    ((letter, reason),) = alerter.bus.dead_letters
    assert letter is message
    assert "unknown encoding" in reason
    assert alerter.bus.messages == {}
