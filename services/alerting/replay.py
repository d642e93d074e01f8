"""Rebuilds alerting's Redis cache from ``vigil.alerts.v1`` when Redis has lost it.

Run at start, before any report is consumed: when the store is not marked rebuilt, every
event of the topic, from the beginning to the end it has now, is applied to the cache (alerts,
silences, subscriptions, history). Alerts an earlier release wrote there (plain ``Alert``
records) count as state events. Then the notification pipeline's state is rebuilt: decided
notifications with no final outcome go back into the outbox (same delivery ids), and each
subscription's groups are regrouped from the active alerts, remembering what was last told.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alerting.grouping import (
    DEFAULT_TIMING,
    Group,
    Timing,
    absorb,
    due_at,
    group_of,
    groups_for,
    said,
    timing,
)
from alerting.history import EVENTS
from alerting.outbox import Delivery
from alerting.ports import AlertStore, GroupChange
from alerting.subscriptions import Subscription
from vigil.adapters.kafka_security import Kafka, client_options
from vigil.wire.alert_events import AlertEvent
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Alert, utcnow
from vigil.wire.topics import Topic

__all__ = ["Told", "as_event", "rebuild", "regrouped", "restore_pipeline"]

log = logging.getLogger(__name__)
LEGACY = Codec(Alert)


def as_event(value: bytes, where: str) -> AlertEvent | None:
    """One record of the alerts topic as an event; None (logged) if it is neither an event nor
    an earlier release's alert. ``where`` (topic/partition/offset) names a legacy event."""
    try:
        return EVENTS.decode(value)
    except DecodeError as event_error:
        try:
            alert = LEGACY.decode(value)
        except DecodeError:
            log.warning(
                "ignoring an unreadable record of the alerts topic at %s: %s",
                where,
                event_error.reason,
            )
            return None
    return AlertEvent(
        event_id=where,
        time=alert.updated_at,
        kind="state",
        fingerprint=alert.fingerprint,
        alert=alert,
    )


# Empty polls (of 1 s) after which a replay that has not reached the end offsets it read at
# the start stops (e.g. records below them that a read_committed consumer never gets).
STALL_POLLS = 10


async def rebuild(
    kafka: Kafka, topic: Topic, store: AlertStore, defaults: Timing = DEFAULT_TIMING
) -> int | None:
    """Replay ``topic`` into ``store`` unless it is already rebuilt; events applied, or None."""
    if await store.is_rebuilt():
        return None
    consumer = AIOKafkaConsumer(
        **client_options(kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    told = Told()
    try:
        applied = await _replay(kafka, consumer, topic, store, told)
    finally:
        await consumer.stop()
    await restore_pipeline(store, told, defaults, utcnow())
    await store.mark_rebuilt()
    log.info("alert cache rebuilt from %s: %d event(s)", topic.name, applied)
    return applied


async def _partitions(kafka: Kafka, name: str) -> list[int]:
    """The partitions of topic ``name`` as the broker describes it (a consumer's metadata
    may not know a topic it has not subscribed to)."""
    admin = AIOKafkaAdminClient(**client_options(kafka), client_id="vigil-alerting-replay")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def _replay(
    kafka: Kafka, consumer: AIOKafkaConsumer, topic: Topic, store: AlertStore, told: Told
) -> int:
    tps = [TopicPartition(topic.name, p) for p in await _partitions(kafka, topic.name)]
    if not tps:
        return 0
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    applied = idle = 0
    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
        batches = await consumer.getmany(*tps, timeout_ms=1000, max_records=1000)
        idle = 0 if batches else idle + 1
        if idle >= STALL_POLLS:  # nothing more readable below the end: never wait forever
            log.warning("replay of %s stopped short of its end offsets %s", topic.name, ends)
            break
        events = [
            e
            for tp, messages in batches.items()
            for m in messages
            if m.offset < ends[tp]
            and m.value is not None
            and (e := as_event(m.value, f"{tp.topic}/{tp.partition}/{m.offset}")) is not None
        ]
        if events:
            await store.cache(events)
            told.follow(events)
            applied += len(events)
    return applied


@dataclass
class Told:
    """What the notification events of the topic say: deliveries decided and not settled,
    and what each subscription was last told of each alert (and when)."""

    pending: dict[str, list[AlertEvent]] = field(default_factory=dict)
    last: dict[tuple[str, str], AlertEvent] = field(default_factory=dict)

    def follow(self, events: Sequence[AlertEvent]) -> None:
        for e in events:
            if e.kind != "notification" or e.delivery_id is None or e.subscription_id is None:
                continue
            if e.outcome == "pending":
                self.pending.setdefault(e.delivery_id, []).append(e)
                if e.fingerprint is not None:
                    self.last[(e.subscription_id, e.fingerprint)] = e
            elif e.outcome in SETTLED:
                self.pending.pop(e.delivery_id, None)


SETTLED = ("delivered", "failed", "refused")


async def restore_pipeline(store: AlertStore, told: Told, defaults: Timing, now: datetime) -> None:
    """Put unsettled deliveries back into the outbox, and regroup the active alerts."""
    subs = {s.id: s for s in await store.subscriptions()}
    for delivery_id, events in told.pending.items():
        sub = subs.get(events[0].subscription_id or "")
        alerts = [e.alert for e in events if e.alert is not None]
        if sub is None or not alerts:
            continue
        key, labels = group_of(sub, alerts[0])
        delivery = Delivery(
            delivery_id=delivery_id,
            subscription_id=sub.id,
            group_key=key,
            group_labels=labels,
            alerts=alerts,
            decided_at=events[0].time,
            next_attempt_at=now,
        )
        await store.put_delivery(delivery)
    active = [a for a in (await store.alerts()).values() if a.status != "resolved"]
    silences = await store.silences()
    for key, (sub, wanted) in groups_for(subs.values(), active).items():
        group = regrouped(sub, wanted, told, now)
        rhythm = timing(sub, defaults)

        def change(_: Group | None, group: Group = group, rhythm: Timing = rhythm) -> GroupChange:
            return GroupChange(group, due_at(group, rhythm, silences, now))

        await store.change_group(key, change)


def regrouped(sub: Subscription, alerts: Sequence[Alert], told: Told, now: datetime) -> Group:
    """A group of ``alerts`` for ``sub`` that remembers what the topic says it was told."""
    group = absorb(None, sub, alerts, now)
    sent: dict[str, str] = {}
    flushed: datetime | None = None
    for alert in alerts:
        last = told.last.get((sub.id, alert.fingerprint))
        if last is None or last.alert is None:
            continue
        view = said(last.alert, [], now)
        if view is not None and view != "resolved":
            sent[alert.fingerprint] = view
        flushed = last.time if flushed is None else max(flushed, last.time)
    return group.model_copy(update={"sent": sent, "flushed_at": flushed})
