"""The notification pipeline on fakes: decided before sent, retried with back-off then given
up, one subscription's queue never holds up another's, two replicas send once, and a
restarted (or rebuilt) process delivers what an earlier one decided."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from alerting.dispatch import Dispatcher
from alerting.grouping import Timing
from alerting.history import EVENTS, AlertHistory
from alerting.outbox import MAX_BACKOFF_SECONDS, Delivery, backoff
from alerting.ports import Notifier
from alerting.replay import Told, restore_pipeline
from alerting.subscriptions import DeliveryResult, Notification, Subscription
from tests.samples import ALERT, T0
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeNotifier, pump
from vigil.wire.alert_events import AlertEvent
from vigil.wire.topics import ALERTS

NOW = T0
AT_ONCE = Timing(group_wait=0, group_interval=300, repeat_interval=3600)
FAILED = DeliveryResult(ok=False, status_code=503, latency=0.01, error="HTTP 503")
REFUSED = DeliveryResult(ok=False, status_code=404, latency=0.01, error="HTTP 404", retryable=False)


def subscription(sub_id: str, models: list[str] | None = None) -> Subscription:
    return Subscription(
        id=sub_id,
        name=sub_id,
        channel="webhook",
        url="https://hooks.example.com/" + sub_id,
        models=models or ["*"],
        created_at=T0,
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def dispatcher(store: FakeAlertStore, bus: FakeBus, notifier: Notifier, clock: Clock) -> Dispatcher:
    history = AlertHistory(bus, store)
    return Dispatcher(store, history, notifier, AT_ONCE, clock=clock, rng=lambda: 0.0)


def notifications(bus: FakeBus) -> list[AlertEvent]:
    return [e for e in bus.records(ALERTS, EVENTS) if e.kind == "notification"]


@pytest.fixture
def store() -> FakeAlertStore:
    found = FakeAlertStore()
    found.subscriptions_by_id = {"s1": subscription("s1")}
    return found


async def test_a_notification_is_recorded_as_decided_before_it_is_sent(
    store: FakeAlertStore,
) -> None:
    bus, notifier, clock = FakeBus(), FakeNotifier(), Clock()
    d = dispatcher(store, bus, notifier, clock)
    await d.absorb([ALERT])
    await d.flush_due()
    (pending,) = notifications(bus)
    assert (pending.outcome, pending.fingerprint) == ("pending", ALERT.fingerprint)
    assert notifier.sent == [] and len(store.outbox) == 1
    await d.deliver_due()
    await asyncio.gather(*d.sending())
    outcomes = [(e.outcome, e.delivery_id, e.attempt) for e in notifications(bus)]
    assert outcomes == [
        ("pending", pending.delivery_id, None),
        ("delivered", pending.delivery_id, 1),
    ]
    assert notifier.notifications[0].delivery_id == pending.delivery_id
    assert store.outbox == {}


async def test_failures_are_retried_with_back_off_then_given_up(store: FakeAlertStore) -> None:
    bus, clock = FakeBus(), Clock()
    notifier = FakeNotifier(result=FAILED)
    d = dispatcher(store, bus, notifier, clock)
    await d.absorb([ALERT])
    await pump(d)
    (waiting,) = store.outbox.values()
    assert (waiting.attempts, waiting.next_attempt_at) == (1, NOW + timedelta(seconds=0.5))
    await pump(d)  # not due yet: no attempt
    assert len(notifier.sent) == 1
    while waiting.delivery_id in store.outbox:
        clock.advance(MAX_BACKOFF_SECONDS)
        await pump(d)
    outcomes = [e.outcome for e in notifications(bus) if e.delivery_id == waiting.delivery_id]
    assert outcomes[0] == "pending" and outcomes[-1] == "failed"
    assert set(outcomes[1:-1]) == {"retrying"}
    # Given up an hour after the decision, not later.
    assert clock.now - NOW <= timedelta(hours=1) + timedelta(seconds=MAX_BACKOFF_SECONDS)


async def test_a_receiver_that_refuses_for_good_is_not_tried_again(store: FakeAlertStore) -> None:
    bus, clock = FakeBus(), Clock()
    d = dispatcher(store, bus, FakeNotifier(result=REFUSED), clock)
    await d.absorb([ALERT])
    await pump(d)
    assert [e.outcome for e in notifications(bus)] == ["pending", "refused"]
    assert store.outbox == {}


def test_back_off_doubles_with_jitter_up_to_its_ceiling() -> None:
    assert [backoff(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(1, lambda: 0.999) < 1.0
    assert backoff(30, lambda: 0.999) <= MAX_BACKOFF_SECONDS


class Hanging(Notifier):
    """Never answers for one subscription (until released); answers at once for the others."""

    def __init__(self, hangs: str) -> None:
        self.hangs = hangs
        self.release = asyncio.Event()
        self.delivered: list[str] = []

    async def send(self, subscription: Subscription, notification: Notification) -> DeliveryResult:
        return await self.attempt(subscription, notification)

    async def attempt(
        self, subscription: Subscription, notification: Notification
    ) -> DeliveryResult:
        if subscription.id == self.hangs:
            await self.release.wait()
        self.delivered.append(subscription.id)
        return DeliveryResult(ok=True, status_code=200, latency=0.0)


async def test_a_hanging_receiver_delays_no_other_subscription(store: FakeAlertStore) -> None:
    store.subscriptions_by_id["s2"] = subscription("s2")
    notifier = Hanging("s1")
    d = dispatcher(store, FakeBus(), notifier, Clock())
    await d.absorb([ALERT])
    await d.flush_due()
    await d.deliver_due()
    for _ in range(20):
        await asyncio.sleep(0)
    assert notifier.delivered == ["s2"]
    notifier.release.set()
    await asyncio.gather(*d.sending())
    assert sorted(notifier.delivered) == ["s1", "s2"]


async def test_two_replicas_sharing_the_store_send_each_notification_once(
    store: FakeAlertStore,
) -> None:
    bus, notifier, clock = FakeBus(), FakeNotifier(), Clock()
    one, two = dispatcher(store, bus, notifier, clock), dispatcher(store, bus, notifier, clock)
    await one.absorb([ALERT])
    await two.absorb([ALERT.model_copy(update={"fingerprint": "def", "feature": "age"})])
    await pump(one, two)
    assert len(notifier.sent) == 1 and len(notifier.sent[0][1]) == 2


async def test_what_a_dead_process_decided_is_delivered_after_a_restart(
    store: FakeAlertStore,
) -> None:
    bus, clock = FakeBus(), Clock()
    crashed = dispatcher(store, bus, FakeNotifier(), clock)
    await crashed.absorb([ALERT])
    await crashed.flush_due()
    (decided,) = store.outbox.values()
    store.claims[decided.delivery_id] = crashed.owner  # it had claimed it, then died
    notifier = FakeNotifier()
    restarted = dispatcher(store, bus, notifier, clock)
    await pump(restarted)
    assert notifier.sent == []  # the dead process's claim still holds
    store.claims.clear()  # its lease ran out
    await pump(restarted)
    assert [n.delivery_id for n in notifier.notifications] == [decided.delivery_id]


async def test_a_rebuilt_cache_puts_undelivered_notifications_back(store: FakeAlertStore) -> None:
    bus, clock = FakeBus(), Clock()
    crashed = dispatcher(store, bus, FakeNotifier(), clock)
    await crashed.absorb([ALERT])
    await crashed.flush_due()
    (decided,) = store.outbox.values()
    fresh = FakeAlertStore()
    events = bus.records(ALERTS, EVENTS)
    sub_event = AlertEvent(
        event_id="x",
        time=T0,
        kind="subscribed",
        subscription_id="s1",
        subscription=store.subscriptions_by_id["s1"].model_dump_json(),
    )
    state = AlertEvent(event_id="y", time=T0, kind="state", fingerprint="abc", alert=ALERT)
    await fresh.cache([sub_event, state, *events])
    told = Told()
    told.follow(events)
    await restore_pipeline(fresh, told, AT_ONCE, clock.now)
    (restored,) = fresh.outbox.values()
    assert (restored.delivery_id, [a.fingerprint for a in restored.alerts]) == (
        decided.delivery_id,
        [ALERT.fingerprint],
    )
    # The regrouped alert remembers it was told: no second first-notification.
    (group,) = fresh.groups_by_key.values()
    assert group.sent == {ALERT.fingerprint: "firing:critical"}


def test_a_delivery_s_notification_keeps_its_id_on_every_attempt() -> None:
    sub = subscription("s1")
    delivery = Delivery.decide("s1", [ALERT], T0, "k", {"model_id": "credit-risk"})
    first, again = delivery.notification(sub), delivery.notification(sub)
    assert first.delivery_id == again.delivery_id == delivery.delivery_id
    assert first.group_labels == {"model_id": "credit-risk"}


async def test_a_group_with_nothing_left_to_tell_is_forgotten(store: FakeAlertStore) -> None:
    clock = Clock()
    d = Dispatcher(
        store,
        AlertHistory(FakeBus(), store),
        FakeNotifier(),
        Timing(group_wait=30, group_interval=300, repeat_interval=3600),
        clock=clock,
    )
    await d.absorb([ALERT])
    assert len(store.groups_by_key) == 1
    clock.advance(5)  # resolved before its group was ever told
    await d.absorb([ALERT.model_copy(update={"status": "resolved", "updated_at": clock.now})])
    assert store.groups_by_key == {} and store.group_due == {}
