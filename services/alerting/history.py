"""Alert history: every state change, notification, silence and acknowledgement is an
``AlertEvent`` on ``vigil.alerts.v1`` (the record), written before Redis (the cache) is told.

The pure part says what events to write and what they mean for current state; ``AlertHistory``
writes them: to the topic first, then to the store's cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from alerting.handlers import SEVERITY_RANK
from alerting.inhibition import inhibited_by
from alerting.outbox import Delivery
from alerting.ports import AlertStore
from alerting.silences import silencing
from alerting.subscriptions import DeliveryResult, Subscription
from vigil.adapters.ports import Bus
from vigil.wire.alert_events import AlertEvent, AlertEventKind, Silence
from vigil.wire.codec import Codec
from vigil.wire.records import Alert
from vigil.wire.topics import ALERTS, Topic

__all__ = [
    "EVENTS",
    "AlertHistory",
    "acknowledged",
    "delivery_events",
    "event",
    "folded",
    "settle",
]

EVENTS = Codec(AlertEvent)


def event(kind: AlertEventKind, now: datetime, **fields: object) -> AlertEvent:
    """A new event of ``kind`` with a fresh id; ``fields`` as ``AlertEvent`` names them."""
    return AlertEvent.model_validate(
        {"event_id": uuid.uuid4().hex, "time": now, "kind": kind, **fields}
    )


def acknowledged(alert: Alert, principal: str, now: datetime) -> Alert:
    """``alert`` acknowledged by ``principal``: it is not sent again unless it worsens."""
    return alert.model_copy(
        update={
            "status": "acknowledged",
            "acknowledged_by": principal,
            "acknowledged_at": now,
            "updated_at": now,
        }
    )


def settle(
    changes: Sequence[Alert],
    previous: Mapping[str, Alert],
    silences: Iterable[Silence],
    now: datetime,
    sources: Sequence[Alert] = (),
) -> list[Alert]:
    """``changes`` as they are recorded: acknowledgements carried over, silences and
    inhibitions named.

    A change to an acknowledged alert stays acknowledged unless its severity worsens, which
    makes it firing again (and un-acknowledged). A change matching an active silence carries
    the silence's id in ``silenced_by``; one inhibited by an alert of ``sources`` (see
    ``alerting.inhibition``) carries that alert's fingerprint in ``inhibited_by``.
    """
    active = list(silences)
    settled = []
    for change in changes:
        before = previous.get(change.fingerprint)
        update: dict[str, object] = {}
        if before is not None and before.status == "acknowledged" and change.status != "resolved":
            if SEVERITY_RANK[change.severity] > SEVERITY_RANK[before.severity]:
                update |= {"status": "firing", "acknowledged_by": None, "acknowledged_at": None}
            else:
                update |= {
                    "status": "acknowledged",
                    "acknowledged_by": before.acknowledged_by,
                    "acknowledged_at": before.acknowledged_at,
                }
        silence = silencing(active, change.model_copy(update=update), now)
        update["silenced_by"] = silence.id if silence else None
        update["inhibited_by"] = inhibited_by(change, sources)
        settled.append(change.model_copy(update=update))
    return settled


def delivery_events(
    delivery: Delivery,
    channel: str,
    outcome: str,
    now: datetime,
    result: DeliveryResult | None = None,
) -> list[AlertEvent]:
    """One notification event per alert a delivery lists: decided (``pending``), each
    attempt's outcome (``delivered``, ``retrying``, ``failed``, ``refused``)."""
    tried = result is not None
    return [
        event(
            "notification",
            now,
            fingerprint=alert.fingerprint,
            alert=alert,
            subscription_id=delivery.subscription_id,
            channel=channel,
            delivery_id=delivery.delivery_id,
            outcome=outcome,
            status_code=result.status_code if result else None,
            latency_ms=round(result.latency * 1000, 3) if result else None,
            error=result.error if result else None,
            attempt=delivery.attempts + 1 if tried else None,
        )
        for alert in delivery.alerts
    ]


def folded(
    events: Iterable[AlertEvent],
) -> tuple[dict[str, Alert], dict[str, Silence], dict[str, Subscription | None]]:
    """What ``events`` leave as current state: the last alert of each fingerprint, the last
    version of each silence, each subscription made (None: removed); notifications change
    none of them."""
    alerts: dict[str, Alert] = {}
    silences: dict[str, Silence] = {}
    subscriptions: dict[str, Subscription | None] = {}
    for e in events:
        if e.alert is not None and e.kind in ("state", "ack"):
            alerts[e.alert.fingerprint] = e.alert
        if e.silence is not None and e.kind in ("silence", "silence_expired"):
            silences[e.silence.id] = e.silence
        if e.kind == "subscribed" and e.subscription is not None:
            sub = Subscription.model_validate_json(e.subscription)
            subscriptions[sub.id] = sub
        if e.kind == "unsubscribed" and e.subscription_id is not None:
            subscriptions[e.subscription_id] = None
    return alerts, silences, subscriptions


class AlertHistory:
    """Writes events: on the alerts topic first (the record), then into the store's cache."""

    def __init__(self, bus: Bus, store: AlertStore, topic: Topic = ALERTS) -> None:
        self.bus = bus
        self.store = store
        self.topic = topic

    async def record(self, events: Sequence[AlertEvent]) -> None:
        """Publish ``events`` (raises Unavailable if Kafka does not store them), then cache."""
        if events:
            await self.bus.publish(self.topic, EVENTS, events, lambda e: e.key)
            await self.store.cache(events)
