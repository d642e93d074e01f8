"""Silences on fakes: matchers with Alertmanager's semantics, the API, and the worker recording
a silenced alert with the silence's id instead of sending it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from alerting.api import Alerting, create_app
from alerting.grouping import Timing
from alerting.history import AlertHistory
from alerting.silences import SilenceIn, new_silence, silencing
from alerting.worker import Alerter
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import ALERT, MODEL, T0, report_at
from tests.unit.fakes import AT_ONCE, FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier, pump
from vigil.wire.alert_events import AlertEvent
from vigil.wire.codec import Codec
from vigil.wire.matchers import Matcher, alert_labels, matches_all
from vigil.wire.records import utcnow
from vigil.wire.topics import ALERTS

EVENTS = Codec(AlertEvent)
ANA, ANA_RECORD = api_key("ana", ["oncall"])
SCOPED, SCOPED_RECORD = api_key("bo", ["oncall"], ["credit-risk"])
READER, READER_RECORD = api_key("sam", ["sme"])


def _m(name: str, value: str, op: str = "=") -> Matcher:
    return Matcher.model_validate({"name": name, "value": value, "op": op})


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (_m("model_id", "credit-risk"), True),
        (_m("model_id", "credit"), False),
        (_m("model_id", "credit", "!="), True),
        (_m("feature", "inc.*", "=~"), True),
        (_m("feature", "nc", "=~"), False),  # anchored: a part is not enough
        (_m("feature", "inc.*", "!~"), False),
        (_m("team", "risk"), True),  # the alert's own labels
        (_m("region", ""), True),  # a missing label is ""
        (_m("region", ".+", "=~"), False),
    ],
)
def test_matchers_follow_alertmanager(matcher: Matcher, expected: bool) -> None:
    assert matches_all([matcher], alert_labels(ALERT)) is expected


def test_matchers_are_validated_and_bounded() -> None:
    for bad in (
        {"name": "1x", "value": "a"},
        {"name": "x", "value": "a", "op": "~"},
        {"name": "x", "value": "(", "op": "=~"},
        {"name": "x", "value": "a" * 257},
    ):
        with pytest.raises(ValidationError):
            Matcher.model_validate(bad)
    with pytest.raises(ValidationError, match="empty value"):
        SilenceIn(matchers=[_m("x", ".*", "=~")], ends_at=T0)
    assert not matches_all([], alert_labels(ALERT))  # no matchers silence nothing


def test_a_silence_matches_only_while_it_is_active() -> None:
    body = SilenceIn(matchers=[_m("model_id", "credit-risk")], ends_at=T0 + timedelta(hours=1))
    silence = new_silence(body, "s", "ana", T0)
    assert silencing([silence], ALERT, T0 + timedelta(minutes=5)) == silence
    assert silencing([silence], ALERT, T0 + timedelta(hours=1)) is None
    expired = silence.model_copy(update={"expired_at": T0 + timedelta(minutes=1)})
    assert silencing([expired], ALERT, T0 + timedelta(minutes=5)) is None
    with pytest.raises(ValueError, match="past"):
        new_silence(body, "s", "ana", T0 + timedelta(hours=2))


@pytest.fixture
def store() -> FakeAlertStore:
    return FakeAlertStore()


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(store: FakeAlertStore, bus: FakeBus) -> Iterator[TestClient]:
    adapters = Alerting(store, FakeNotifier(), AlertHistory(bus, store))
    guard = fake_guard(ANA_RECORD, SCOPED_RECORD, READER_RECORD)
    with TestClient(create_app(adapters=adapters, guard=guard), headers=ADMIN) as client:
        yield client


# Everything due at once, repeats included.
EVERY_TICK = Timing(group_wait=0.0, group_interval=1e-6, repeat_interval=1e-6)


def _body(**matchers: str) -> dict[str, object]:
    return {
        "matchers": [{"name": k, "value": v, "op": "="} for k, v in matchers.items()],
        "ends_at": (utcnow() + timedelta(hours=1)).isoformat(),
        "comment": "retraining tonight",
    }


def test_silences_are_created_listed_and_expired_by_oncall(
    client: TestClient, bus: FakeBus
) -> None:
    created = client.post("/v1/silences", json=_body(model_id="credit-risk"), headers=bearer(ANA))
    assert created.status_code == 201, created.text
    silence = created.json()
    assert (silence["created_by"], silence["status"]) == ("ana", "active")
    listed = client.get("/v1/silences").json()
    assert [s["id"] for s in listed] == [silence["id"]]
    assert client.delete(f"/v1/silences/{silence['id']}", headers=bearer(ANA)).status_code == 204
    assert [s["status"] for s in client.get("/v1/silences").json()] == ["expired"]
    assert client.delete("/v1/silences/nope").status_code == 404
    events = bus.records(ALERTS, EVENTS)
    assert [(e.kind, e.actor) for e in events] == [("silence", "ana"), ("silence_expired", "ana")]
    assert {e.silence.id for e in events if e.silence} == {silence["id"]}


def test_silences_need_oncall_and_the_models_in_scope(client: TestClient) -> None:
    refused = client.post("/v1/silences", json=_body(model_id="x"), headers=bearer(READER))
    assert refused.status_code == 403
    # A key for some models may only silence those models, not every model.
    wide = client.post("/v1/silences", json=_body(feature="income"), headers=bearer(SCOPED))
    assert wide.status_code == 403
    mine = client.post("/v1/silences", json=_body(model_id="credit-risk"), headers=bearer(SCOPED))
    assert mine.status_code == 201
    assert [s["id"] for s in client.get("/v1/silences", headers=bearer(SCOPED)).json()] == [
        mine.json()["id"]
    ]
    past = {**_body(model_id="credit-risk"), "ends_at": "2000-01-01T00:00:00Z"}
    assert client.post("/v1/silences", json=past).status_code == 422


async def test_a_silenced_alert_is_recorded_with_the_silence_and_not_sent(
    client: TestClient, store: FakeAlertStore
) -> None:
    notifier = FakeNotifier()
    alerter = Alerter(FakeBus(), FakeCatalog([MODEL]), store, notifier, timing=AT_ONCE)
    client.post(
        "/v1/subscriptions",
        json={
            "name": "risk",
            "channel": "webhook",
            "url": "https://hooks.example.com/h",
            "models": ["*"],
        },
    )
    silence = client.post("/v1/silences", json=_body(model_id="credit-risk")).json()
    (fired,) = await alerter.handle_report(report_at("credit-risk", 0, True))
    await pump(alerter.dispatcher)
    assert fired.silenced_by == silence["id"]
    assert notifier.sent == []
    client.delete(f"/v1/silences/{silence['id']}")
    (resolved,) = await alerter.handle_report(report_at("credit-risk", 1, False))
    await pump(alerter.dispatcher)
    assert resolved.silenced_by is None
    # Nobody was told it fired, so nobody is told it resolved.
    assert notifier.sent == []
    assert isinstance(alerter.bus, FakeBus)
    states = [e.alert for e in alerter.bus.records(ALERTS, EVENTS) if e.kind == "state"]
    assert [(a.status, a.silenced_by) for a in states if a] == [
        ("firing", silence["id"]),
        ("resolved", None),
    ]


async def test_a_silence_made_after_an_alert_fired_holds_its_repeats_and_says_so(
    client: TestClient, store: FakeAlertStore
) -> None:
    notifier, bus = FakeNotifier(), FakeBus()
    alerter = Alerter(bus, FakeCatalog([MODEL]), store, notifier, timing=EVERY_TICK)
    client.post(
        "/v1/subscriptions",
        json={
            "name": "risk",
            "channel": "webhook",
            "url": "https://hooks.example.com/h",
            "models": ["*"],
        },
    )
    (fired,) = await alerter.handle_report(report_at("credit-risk", 0, True))
    await pump(alerter.dispatcher)
    assert len(notifier.sent) == 2  # the page, and its repeat a moment later
    silence = client.post("/v1/silences", json=_body(model_id="credit-risk")).json()
    await pump(alerter.dispatcher)
    assert len(notifier.sent) == 2  # no more repeats
    told = [e for e in bus.records(ALERTS, EVENTS) if e.outcome == "silenced"]
    assert [(e.fingerprint, e.silence_id) for e in told] == [(fired.fingerprint, silence["id"])]
    client.delete(f"/v1/silences/{silence['id']}")
    await pump(alerter.dispatcher)
    assert len(notifier.sent) > 2  # repeated again once the silence is over
