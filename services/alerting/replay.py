"""Rebuilds alerting's Redis cache from ``vigil.alerts.v1`` when Redis has lost it.

Run at start, before any report is consumed: when the store is not marked rebuilt, every
event of the topic, from the beginning to the end it has now, is applied to the cache. Alerts
an earlier release wrote there (plain ``Alert`` records) count as state events.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from alerting.history import EVENTS
from alerting.ports import AlertStore
from vigil.adapters.kafka_security import Kafka, client_options
from vigil.wire.alert_events import AlertEvent
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Alert
from vigil.wire.topics import Topic

__all__ = ["as_event", "rebuild"]

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


async def rebuild(kafka: Kafka, topic: Topic, store: AlertStore) -> int | None:
    """Replay ``topic`` into ``store`` unless it is already rebuilt; events applied, or None."""
    if await store.is_rebuilt():
        return None
    consumer = AIOKafkaConsumer(
        **client_options(kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        applied = await _replay(kafka, consumer, topic, store)
    finally:
        await consumer.stop()
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


async def _replay(kafka: Kafka, consumer: AIOKafkaConsumer, topic: Topic, store: AlertStore) -> int:
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
            applied += len(events)
    return applied
