"""Small helpers tests use to read what services wrote to Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from vigil.wire.avro import known_writer_schemas
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, Record, WindowReport
from vigil.wire.topics import Topic

R = TypeVar("R", bound=Record)

Message = ConsumerRecord[bytes, bytes]
TRAFFIC_FINGERPRINTS = frozenset(known_writer_schemas("TrafficReport"))


WINDOW_FINGERPRINTS = frozenset(known_writer_schemas("WindowReport"))


def is_window_report(value: bytes | None) -> bool:
    """Whether a ``vigil.metrics.v1`` value is a drift detector's ``WindowReport`` (the topic
    also carries traffic, performance and flag reports, told apart by their fingerprints)."""
    return value is not None and value[:2] == b"\xc3\x01" and value[2:10] in WINDOW_FINGERPRINTS


def is_traffic_report(value: bytes | None) -> bool:
    """Whether a ``vigil.metrics.v1`` value is a drift detector's heartbeat (``TrafficReport``,
    told by its single-object schema fingerprint) rather than a ``WindowReport``."""
    return value is not None and value[:2] == b"\xc3\x01" and value[2:10] in TRAFFIC_FINGERPRINTS


async def partitions(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of ``topic``, as the broker describes it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """Where each partition of ``topic`` ends now: read from here to see only new messages."""
    tps = [TopicPartition(topic, p) for p in await partitions(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def read_from(
    bootstrap: str,
    start: dict[TopicPartition, int],
    done: Callable[[list[Message]], bool],
    wait_seconds: float = 60.0,
) -> list[Message]:
    """Messages written after ``start`` until ``done(messages)`` holds or ``wait_seconds`` pass.

    Only messages of committed transactions are read, as every Vigil reader does.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    messages: list[Message] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + wait_seconds
        while not done(messages) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                messages.extend(batch)
            await asyncio.sleep(0)
        return messages
    finally:
        await consumer.stop()


def keyed_records(
    bootstrap: str, start: dict[TopicPartition, int], keys: set[str], codec: Codec[R]
) -> list[R]:
    """The records written after ``start`` under one of ``keys``, decoded, in order: read
    until every key is there, then a little longer (3 s in all) so that a duplicate would show
    up too."""

    def mine(ms: list[Message]) -> list[Message]:
        return [m for m in ms if m.key.decode() in keys]

    messages = asyncio.run(read_from(bootstrap, start, lambda ms: len(mine(ms)) > len(keys), 3))
    return [codec.decode(m.value) for m in mine(messages)]


def private_copy(bootstrap: str, topic: Topic, tag: str) -> Topic:
    """A topic laid out as ``topic`` under a name of this test's own, created now: a consumer
    group reading it from the start does not wade through what other runs left on the real
    one."""
    from vigil.adapters.bus import ensure_topics

    copy = replace(topic, name=f"test.{topic.name}.{tag}")
    asyncio.run(ensure_topics(bootstrap, [copy]))
    return copy


async def publish_reports(bootstrap: str, topic: Topic, reports: Sequence[WindowReport]) -> None:
    """Publish window reports to ``topic`` (a private copy of the metrics topic), keyed by
    model version as the drift detector keys them."""
    await publish_window(bootstrap, None, [], topic, reports)


async def publish_window(
    bootstrap: str,
    predictions: Topic | None,
    events: Sequence[PredictionEvent],
    metrics: Topic,
    reports: Sequence[WindowReport],
) -> None:
    """Publish predictions (keyed by id) to ``predictions``, then window reports (keyed by
    model version) to ``metrics``: private copies of the topics, as the services write them."""
    from vigil.adapters.bus import new_producer, publish

    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        if predictions is not None:
            codec = Codec(PredictionEvent)
            await publish(producer, predictions, codec, events, lambda e: e.prediction_id)
        await publish(producer, metrics, Codec(WindowReport), reports, lambda r: r.key)
    finally:
        await producer.stop()
