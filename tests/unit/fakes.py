"""In-memory fakes of the ports, for unit tests: each records what it was given, none does I/O."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from alerting.api import Alerting
from alerting.dispatch import Dispatcher
from alerting.grouping import Group, Timing
from alerting.history import AlertHistory, folded
from alerting.outbox import Delivery
from alerting.ports import HISTORY_LIMIT, AlertPage, AlertStore, GroupChange, Notifier
from alerting.subscriptions import DeliveryResult, Notification, Subscription
from vigil.adapters.bus import PerMessageBus
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.ports import Claim, IdempotencyStore, RevisionLocks, Unavailable
from vigil.adapters.stage_logic import Incoming
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.codec import Codec
from vigil.wire.records import Alert, ModelVersion, Record
from vigil.wire.topics import Topic

R = TypeVar("R", bound=Record)


class FakeBus(PerMessageBus):
    """Keeps every message by topic; while ``down``, every call raises Unavailable.

    As Kafka does, it refuses a message whose value is over ``max_message_bytes``: ``send``
    raises and ``send_each`` reports it not stored, the other messages being stored.
    """

    def __init__(self, max_message_bytes: int = 1024 * 1024) -> None:
        self.messages: dict[str, list[tuple[bytes, bytes]]] = defaultdict(list)
        self.dead_letters: list[tuple[Incoming, str]] = []
        self.down = False
        self.max_message_bytes = max_message_bytes

    def _answer(self) -> None:
        if self.down:
            raise Unavailable("Kafka", "KafkaConnectionError")

    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        if not all(await self.send_each(topic, messages)):
            raise Unavailable("Kafka", "MessageSizeTooLargeError")

    async def send_each(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> list[bool]:
        self._answer()
        stored = [len(value) <= self.max_message_bytes for _, value in messages]
        self.messages[topic].extend(m for m, ok in zip(messages, stored, strict=True) if ok)
        return stored

    async def dead_letter(self, message: Incoming, reason: str) -> None:
        self._answer()
        self.dead_letters.append((message, reason))

    async def ping(self) -> None:
        self._answer()

    def records(self, topic: Topic, codec: Codec[R]) -> list[R]:
        """What was published on ``topic``, decoded."""
        return [codec.decode(value) for _, value in self.messages[topic.name]]

    def keys(self, topic: Topic) -> list[str]:
        return [key.decode() for key, _ in self.messages[topic.name]]


class FakeIdempotencyStore(IdempotencyStore):
    """Claims in a dict: absent (free), "pending" or "stored"."""

    def __init__(self) -> None:
        self.states: dict[str, Claim] = {}

    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        claims: list[Claim] = []
        for id_ in ids:
            claims.append(self.states.get(id_, "new"))
            self.states.setdefault(id_, "pending")
        return claims

    async def confirm(self, ids: Sequence[str]) -> None:
        self.states.update(dict.fromkeys(ids, "stored"))

    async def release(self, ids: Sequence[str]) -> None:
        for id_ in ids:
            self.states.pop(id_, None)

    async def ping(self) -> None:
        """Always answers."""


class FakeCatalog(ModelCatalog):
    """The in-memory catalog; ``elsewhere`` versions (published by another process) arrive on
    catch-up, which is counted. While ``down``, catching up raises Unavailable (Kafka does not
    answer). Retired versions are kept as markers unless ``keep_retired`` (as the registry's)."""

    def __init__(
        self,
        versions: Iterable[ModelVersion] = (),
        elsewhere: Iterable[ModelVersion] = (),
        keep_retired: bool = False,
    ) -> None:
        super().__init__(keep_retired)
        self.elsewhere = list(elsewhere)
        self.catch_ups = 0
        self.down = False
        for version in versions:
            self.apply(version)

    async def catch_up(self) -> None:
        if self.down:
            raise Unavailable("Kafka", "KafkaConnectionError")
        self.catch_ups += 1
        for version in self.elsewhere:
            self.apply(version)
        self.elsewhere.clear()


class FakeAlertStore(AlertStore):
    """Alerts and subscriptions in dicts; while ``down``, every call raises Unavailable."""

    def __init__(self) -> None:
        self.alerts_by_fingerprint: dict[str, Alert] = {}
        self.subscriptions_by_id: dict[str, Subscription] = {}
        self.silences_by_id: dict[str, Silence] = {}
        self.history_by_fingerprint: dict[str, list[AlertEvent]] = {}
        self.rebuilt = False
        self.rule_states: dict[str, dict[str, Any]] = {}
        self.traffic_by_version: dict[str, dict[str, Any]] = {}
        self.groups_by_key: dict[str, Group] = {}
        self.group_due: dict[str, datetime] = {}
        self.outbox: dict[str, Delivery] = {}
        self.claims: dict[str, str] = {}
        self.turns: dict[str, str] = {}
        self.down = False

    def __getattribute__(self, name: str) -> Any:
        if name in _STORE_CALLS and object.__getattribute__(self, "down"):
            raise Unavailable("Redis", "ConnectionError")
        return object.__getattribute__(self, name)

    async def rule_state(self, key: str) -> dict[str, Any] | None:
        return self.rule_states.get(key)

    async def save_rule_state(self, key: str, state: dict[str, Any]) -> None:
        self.rule_states[key] = state

    async def traffic(self) -> dict[str, dict[str, Any]]:
        return dict(self.traffic_by_version)

    async def save_traffic(self, key: str, seen: dict[str, Any]) -> None:
        self.traffic_by_version[key] = seen

    async def forget_traffic(self, key: str) -> None:
        self.traffic_by_version.pop(key, None)

    async def change_group(
        self, key: str, change: Callable[[Group | None], GroupChange]
    ) -> GroupChange:
        applied = change(self.groups_by_key.get(key))
        if applied.group is None:
            self.groups_by_key.pop(key, None)
        else:
            self.groups_by_key[key] = applied.group
        if applied.group is None or applied.due is None:
            self.group_due.pop(key, None)
        else:
            self.group_due[key] = applied.due
        if applied.delivery is not None:
            self.outbox[applied.delivery.delivery_id] = applied.delivery
        return applied

    async def groups(self) -> list[Group]:
        return list(self.groups_by_key.values())

    async def due_groups(self, now: datetime, limit: int) -> list[str]:
        due = sorted((t, k) for k, t in self.group_due.items() if t <= now)
        return [k for _, k in due[:limit]]

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        due = [d for d in self.outbox.values() if d.next_attempt_at <= now]
        return sorted(due, key=lambda d: d.next_attempt_at)[:limit]

    async def deliveries(self) -> list[Delivery]:
        return sorted(self.outbox.values(), key=lambda d: d.next_attempt_at)

    async def put_delivery(self, delivery: Delivery) -> None:
        self.outbox[delivery.delivery_id] = delivery

    async def claim_delivery(
        self, delivery_id: str, owner: str, now: datetime, ttl_seconds: float
    ) -> Delivery | None:
        found = self.outbox.get(delivery_id)
        if found is None or found.next_attempt_at > now or delivery_id in self.claims:
            return None
        self.claims[delivery_id] = owner
        return found

    async def settle_delivery(self, delivery_id: str, retry: Delivery | None) -> None:
        if retry is None:
            self.outbox.pop(delivery_id, None)
        else:
            self.outbox[delivery_id] = retry
        self.claims.pop(delivery_id, None)

    async def take_turn(self, name: str, owner: str, ttl_seconds: float) -> bool:
        return self.turns.setdefault(name, owner) == owner

    async def alerts_page(
        self,
        position: int,
        limit: int,
        model_id: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
    ) -> AlertPage:
        newest = sorted(
            self.alerts_by_fingerprint.values(), key=lambda a: a.updated_at, reverse=True
        )
        page: list[Alert] = []
        while position < len(newest) and len(page) < limit:
            alert = newest[position]
            position += 1
            if since is not None and alert.updated_at < since:
                return AlertPage(page, None)
            wanted = (model_id, status, severity)
            if all(w in (None, v) for w, v in zip(wanted, _about(alert), strict=True)):
                page.append(alert)
        return AlertPage(page, position if position < len(newest) else None)

    async def alerts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Alert]:
        stored = self.alerts_by_fingerprint
        wanted = stored if fingerprints is None else [f for f in fingerprints if f in stored]
        return {f: stored[f] for f in wanted}

    async def save_alerts(self, alerts: Iterable[Alert]) -> None:
        self.alerts_by_fingerprint.update({a.fingerprint: a for a in alerts})

    async def prune(self, before: datetime) -> int:
        if self.down:
            raise Unavailable("Redis", "ConnectionError")
        old = [
            fp
            for fp, a in self.alerts_by_fingerprint.items()
            if a.status == "resolved" and a.updated_at < before
        ]
        for fp in old:
            del self.alerts_by_fingerprint[fp]
        return len(old)

    async def cache(self, events: Sequence[AlertEvent]) -> None:
        alerts, silences, subscriptions = folded(events)
        self.alerts_by_fingerprint.update(alerts)
        self.silences_by_id.update(silences)
        for sub_id, sub in subscriptions.items():
            if sub is None:
                self.subscriptions_by_id.pop(sub_id, None)
            else:
                self.subscriptions_by_id[sub_id] = sub
        for e in events:
            if e.fingerprint is not None:
                kept = self.history_by_fingerprint.setdefault(e.fingerprint, [])
                kept[:] = [*kept, e][-HISTORY_LIMIT:]

    async def silences(self) -> list[Silence]:
        return sorted(self.silences_by_id.values(), key=lambda s: (s.starts_at, s.id))

    async def history(self, fingerprint: str) -> list[AlertEvent]:
        return list(self.history_by_fingerprint.get(fingerprint, []))

    async def is_rebuilt(self) -> bool:
        return self.rebuilt

    async def mark_rebuilt(self) -> None:
        self.rebuilt = True

    async def subscriptions(self) -> list[Subscription]:
        return sorted(self.subscriptions_by_id.values(), key=lambda s: s.created_at)

    async def add_subscription(self, sub: Subscription) -> None:
        self.subscriptions_by_id[sub.id] = sub

    async def remove_subscription(self, sub_id: str) -> bool:
        return self.subscriptions_by_id.pop(sub_id, None) is not None


def _about(alert: Alert) -> tuple[str, str, str]:
    return alert.model_id, alert.status, alert.severity


_STORE_CALLS = frozenset(
    {
        "alerts",
        "alerts_page",
        "save_alerts",
        "cache",
        "silences",
        "history",
        "subscriptions",
        "add_subscription",
        "remove_subscription",
        "rule_state",
        "save_rule_state",
        "traffic",
        "save_traffic",
        "change_group",
        "due_groups",
        "due_deliveries",
        "claim_delivery",
        "settle_delivery",
    }
)


class FakeNotifier(Notifier):
    """Records each message it is asked to deliver, as (subscription name, alerts), and each
    notification; answers ``result`` (delivered, by default), or the next of ``results``."""

    def __init__(
        self, result: DeliveryResult | None = None, results: Sequence[DeliveryResult] = ()
    ) -> None:
        self.sent: list[tuple[str, list[Alert]]] = []
        self.notifications: list[Notification] = []
        self.result = result or DeliveryResult(ok=True, status_code=200, latency=0.0)
        self.results = list(results)

    async def send(self, subscription: Subscription, notification: Notification) -> DeliveryResult:
        return await self.attempt(subscription, notification)

    async def attempt(
        self, subscription: Subscription, notification: Notification
    ) -> DeliveryResult:
        self.sent.append((subscription.name, list(notification.alerts)))
        self.notifications.append(notification)
        return self.results.pop(0) if self.results else self.result


class FakeRevisionLocks(RevisionLocks):
    """Locks in a dict (no expiry); while ``down``, every call raises Unavailable.

    ``taken`` counts acquisitions; ``busy`` counts attempts that found the lock held.
    """

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}
        self.down = False
        self.taken = 0
        self.busy = 0

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        if self.down:
            raise Unavailable("Redis", "ConnectionError")
        if key in self.holders:
            self.busy += 1
            return False
        self.holders[key] = token
        self.taken += 1
        return True

    async def release(self, key: str, token: str) -> None:
        if self.down:
            raise Unavailable("Redis", "ConnectionError")
        if self.holders.get(key) == token:
            del self.holders[key]


# Group timing for tests: a new group notifies at once, changes after a microsecond.
AT_ONCE = Timing(group_wait=0.0, group_interval=1e-6, repeat_interval=3600.0)


async def pump(*dispatchers: Dispatcher) -> None:
    """Every due group decided and every due delivery attempted, sends awaited (twice: what
    one round made due, e.g. a change a microsecond later, goes too)."""
    for _ in range(2):
        await asyncio.sleep(1e-5)
        for d in dispatchers:
            await d.flush_due()
        for d in dispatchers:
            await d.deliver_due()
        for d in dispatchers:
            await asyncio.gather(*d.sending())


def alerting_on(
    store: FakeAlertStore,
    notifier: Notifier | None = None,
    bus: FakeBus | None = None,
) -> Alerting:
    """The alerting API's adapters on fakes: events recorded on ``bus``, notifications
    decided with ``AT_ONCE`` timing (``pump`` the dispatcher to send them)."""
    history = AlertHistory(bus or FakeBus(), store)
    told = notifier or FakeNotifier()
    return Alerting(store, told, history, Dispatcher(store, history, told, AT_ONCE))
