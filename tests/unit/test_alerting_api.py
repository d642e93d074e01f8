"""The alerting API and report handling on fakes: subscriptions, alerts and notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.worker import Alerter
from tests.access import ADMIN, fake_guard
from tests.samples import MODEL, REPORT
from tests.unit.fakes import (
    AT_ONCE,
    FakeAlertStore,
    FakeBus,
    FakeCatalog,
    FakeNotifier,
    alerting_on,
    pump,
)
from vigil.adapters.stage_logic import Message
from vigil.wire.alert_events import AlertEvent
from vigil.wire.codec import Codec
from vigil.wire.records import Alert, WindowReport
from vigil.wire.topics import ALERTS, METRICS

ALERTS_CODEC = Codec(AlertEvent)


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def client(store: FakeAlertStore) -> Iterator[TestClient]:
    with TestClient(
        create_app(adapters=alerting_on(store), guard=fake_guard()), headers=ADMIN
    ) as client:
        yield client


@pytest.fixture
def alerter(store: FakeAlertStore) -> Alerter:
    return Alerter(FakeBus(), FakeCatalog([MODEL]), store, FakeNotifier(), timing=AT_ONCE)


def _subscribe(client: TestClient, name: str, models: list[str], severity: str) -> str:
    body = {
        "name": name,
        "channel": "webhook",
        "url": "https://hooks.example.com/hook",
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
    await pump(alerter.dispatcher)
    again = await alerter.handle_report(_report(1, drifted=True))
    await pump(alerter.dispatcher)
    resolved = await alerter.handle_report(_report(2, drifted=False))
    await pump(alerter.dispatcher)
    assert ([a.status for a in fired], again, [a.status for a in resolved]) == (
        ["firing"],
        [],
        ["resolved"],
    )
    notifier = alerter.dispatcher.notifier
    assert isinstance(notifier, FakeNotifier)
    # The model is registered as high risk: "risk" hears of it, "pager" (critical) does not.
    assert [(name, [a.status for a in alerts]) for name, alerts in notifier.sent] == [
        ("risk", ["firing"]),
        ("risk", ["resolved"]),
    ]
    assert isinstance(alerter.bus, FakeBus)
    events = alerter.bus.records(ALERTS, ALERTS_CODEC)
    # State changes, and one notification event per alert each subscription was told of.
    assert {e.kind for e in events} == {"state", "notification"}
    told = [e for e in events if e.kind == "notification"]
    assert [e.outcome for e in told] == ["pending", "delivered"] * 2
    assert all(e.delivery_id for e in told)
    published = [e.alert for e in events if e.alert is not None and e.kind == "state"]
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


def _alert(n: int, model_id: str = "credit-risk") -> Alert:
    return Alert.model_validate(
        {
            "fingerprint": f"fp-{n}",
            "status": "firing",
            "severity": "high",
            "model_id": model_id,
            "model_version": "1.0.0",
            "rule": "feature_drift",
            "feature": f"f{n}",
            "summary": "drift",
            "starts_at": REPORT.window_start,
            "updated_at": REPORT.window_start + timedelta(seconds=n),
        }
    )


async def test_alerts_are_listed_a_page_at_a_time_newest_first(
    client: TestClient, store: FakeAlertStore
) -> None:
    await store.save_alerts([_alert(n, "other" if n % 2 else "credit-risk") for n in range(250)])
    first = client.get("/v1/alerts")
    assert [a["fingerprint"] for a in first.json()] == [f"fp-{n}" for n in range(249, 149, -1)]
    pages, url = [first.json()], first.links["next"]["url"]
    while url:
        page = client.get(url)
        pages.append(page.json())
        url = page.links.get("next", {}).get("url")
    assert [len(p) for p in pages] == [100, 100, 50]
    theirs = client.get("/v1/alerts", params={"model_id": "other", "limit": 100})
    assert len(theirs.json()) == 100
    rest = client.get(
        "/v1/alerts", params={"model_id": "other", "cursor": theirs.headers["x-next-cursor"]}
    )
    assert [a["fingerprint"] for a in rest.json()] == [f"fp-{n}" for n in range(49, 0, -2)]
    assert "link" not in rest.headers
    assert client.get("/v1/alerts", params={"limit": 1001}).status_code == 422


def test_redis_down_is_503_with_retry_after(client: TestClient, store: FakeAlertStore) -> None:
    store.down = True
    for response in (
        client.get("/v1/alerts"),
        client.get("/v1/subscriptions"),
        client.post(
            "/v1/subscriptions",
            json={
                "name": "x",
                "channel": "webhook",
                "url": "https://hooks.example.com/h",
                "models": ["*"],
            },
        ),
    ):
        assert (response.status_code, response.headers["retry-after"]) == (503, "5")
        assert response.json()["detail"].startswith("Redis is unavailable")


def test_oversized_or_deeply_nested_subscriptions_are_413(client: TestClient) -> None:
    big = client.post("/v1/subscriptions", json={"name": "x" * 70_000, "channel": "webhook"})
    assert big.status_code == 413
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    nested = client.post("/v1/subscriptions", json={"name": "x", "models": deep})
    assert nested.status_code == 413
    assert "JSON nesting" in nested.json()["detail"]
