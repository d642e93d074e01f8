"""Acknowledgements and history on fakes: who acknowledged, no repeats until the severity
worsens, the group told, every change an event in order, and the cache rebuilt from them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from alerting.api import Alerting, create_app
from alerting.grouping import said
from alerting.history import EVENTS, acknowledged, settle
from alerting.replay import LEGACY, as_event
from alerting.worker import Alerter
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import ALERT, MODEL, T0, report_at
from tests.unit.fakes import AT_ONCE, FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier, pump
from vigil.wire.topics import ALERTS

ANA, ANA_RECORD = api_key("ana", ["oncall"])
SAM, SAM_RECORD = api_key("sam", ["sme"])
OTHER, OTHER_RECORD = api_key("bo", ["oncall"], ["fraud"])


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def alerter(store: FakeAlertStore, bus: FakeBus, notifier: FakeNotifier) -> Alerter:
    return Alerter(bus, FakeCatalog([MODEL]), store, notifier, timing=AT_ONCE)


@pytest.fixture
def client(store: FakeAlertStore, alerter: Alerter, notifier: FakeNotifier) -> Iterator[TestClient]:
    adapters = Alerting(store, notifier, alerter.history, alerter.dispatcher)
    guard = fake_guard(ANA_RECORD, SAM_RECORD, OTHER_RECORD)
    with TestClient(create_app(adapters=adapters, guard=guard), headers=ADMIN) as client:
        client.post(
            "/v1/subscriptions",
            json={
                "name": "risk",
                "channel": "webhook",
                "url": "https://hooks.example.com/h",
                "models": ["*"],
            },
        )
        yield client


async def test_an_ack_records_the_principal_and_tells_the_group(
    client: TestClient, alerter: Alerter, notifier: FakeNotifier
) -> None:
    (fired,) = await alerter.handle_report(report_at("credit-risk", 0, True))
    await pump(alerter.dispatcher)
    url = f"/v1/alerts/{fired.fingerprint}/ack"
    assert client.post(url, json={"comment": "mine"}, headers=bearer(SAM)).status_code == 403
    assert client.post(url, json={}, headers=bearer(OTHER)).status_code == 403
    acked = client.post(url, json={"comment": "looking"}, headers=bearer(ANA))
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "ana")
    (listed,) = client.get("/v1/alerts", params={"status": "acknowledged"}).json()
    assert listed["acknowledged_by"] == "ana"
    await pump(alerter.dispatcher)
    assert [(a.status, a.acknowledged_by) for _, alerts in notifier.sent for a in alerts] == [
        ("firing", None),
        ("acknowledged", "ana"),
    ]
    assert client.post("/v1/alerts/nope/ack", json={}).status_code == 404
    await alerter.handle_report(report_at("credit-risk", 1, False))
    assert client.post(url, json={}).status_code == 409  # resolved


def test_an_acknowledged_alert_is_not_repeated_unless_its_severity_worsens() -> None:
    acked = acknowledged(ALERT.model_copy(update={"severity": "medium"}), "ana", T0)
    previous = {acked.fingerprint: acked}
    repeat = ALERT.model_copy(update={"severity": "medium", "updated_at": T0})
    (same,) = settle([repeat], previous, [], T0)
    assert (same.status, said(same, [], T0)) == ("acknowledged", "acknowledged:ana")
    (worse,) = settle([repeat.model_copy(update={"severity": "high"})], previous, [], T0)
    assert (worse.acknowledged_by, said(worse, [], T0)) == (None, "firing:high")
    resolved = repeat.model_copy(update={"status": "resolved"})
    assert [said(a, [], T0) for a in settle([resolved], previous, [], T0)] == ["resolved"]


async def test_every_change_is_an_event_in_order_and_answers_the_history(
    client: TestClient, alerter: Alerter, bus: FakeBus
) -> None:
    (fired,) = await alerter.handle_report(report_at("credit-risk", 0, True))
    await pump(alerter.dispatcher)
    client.post(f"/v1/alerts/{fired.fingerprint}/ack", json={"comment": "on it"})
    await pump(alerter.dispatcher)
    await alerter.handle_report(report_at("credit-risk", 1, False))
    await pump(alerter.dispatcher)
    published = [e for e in bus.records(ALERTS, EVENTS) if e.fingerprint == fired.fingerprint]
    kinds = [(e.kind, e.outcome or (e.alert.status if e.alert else "")) for e in published]
    assert kinds == [
        ("state", "firing"),
        ("notification", "pending"),  # the page, decided
        ("notification", "delivered"),  # and sent
        ("ack", "acknowledged"),
        ("notification", "pending"),  # who acknowledged it
        ("notification", "delivered"),
        ("state", "resolved"),
        ("notification", "pending"),  # the resolution
        ("notification", "delivered"),
    ]
    history = client.get(f"/v1/alerts/{fired.fingerprint}/history").json()
    assert [e["event_id"] for e in history] == [e.event_id for e in published]
    assert (history[3]["actor"], history[3]["comment"]) == ("admin", "on it")
    assert (
        client.get(f"/v1/alerts/{fired.fingerprint}/history", headers=bearer(OTHER)).status_code
        == 403
    )
    assert client.get("/v1/alerts/nope/history").status_code == 404


async def test_the_cache_rebuilt_from_the_events_is_the_same(
    client: TestClient, alerter: Alerter, bus: FakeBus, store: FakeAlertStore
) -> None:
    (fired,) = await alerter.handle_report(report_at("credit-risk", 0, True))
    client.post(f"/v1/alerts/{fired.fingerprint}/ack", json={})
    client.post(
        "/v1/silences",
        json={"matchers": [{"name": "model_id", "value": "x"}], "ends_at": "2999-01-01T00:00:00Z"},
    )
    fresh = FakeAlertStore()
    events = [as_event(v, f"p/{i}") for i, (_, v) in enumerate(bus.messages[ALERTS.name])]
    await fresh.cache([e for e in events if e is not None])
    assert fresh.alerts_by_fingerprint == store.alerts_by_fingerprint
    assert fresh.silences_by_id == store.silences_by_id
    assert fresh.history_by_fingerprint == store.history_by_fingerprint
    # An earlier release's plain Alert records count as state events; garbage is skipped.
    legacy = as_event(LEGACY.encode(ALERT), "vigil.alerts.v1/0/7")
    assert legacy is not None and (legacy.kind, legacy.alert) == ("state", ALERT)
    assert as_event(b"garbage", "vigil.alerts.v1/0/8") is None


async def test_alerts_are_filtered_by_severity_and_since(
    client: TestClient, store: FakeAlertStore
) -> None:
    alerts = [
        ALERT.model_copy(
            update={"fingerprint": f"fp-{n}", "severity": s, "updated_at": T0 + timedelta(hours=n)}
        )
        for n, s in enumerate(["low", "high", "high", "low"])
    ]
    await store.save_alerts(alerts)
    high = client.get("/v1/alerts", params={"severity": "high"}).json()
    assert [a["fingerprint"] for a in high] == ["fp-2", "fp-1"]
    since = (T0 + timedelta(hours=2)).isoformat()
    recent = client.get("/v1/alerts", params={"since": since})
    assert [a["fingerprint"] for a in recent.json()] == ["fp-3", "fp-2"]
    assert "link" not in recent.headers
    assert client.get("/v1/alerts", params={"severity": "worst"}).status_code == 422
