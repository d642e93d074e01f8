"""Rolling upgrades in either order, against the real broker: a newer producer registers its
writer schema on ``vigil.schemas.v1`` and today's reader decodes its records."""

from __future__ import annotations

import uuid

import pytest

import vigil.wire.avro as avro
from tests.kafka_tools import end_offsets, partitions, read_from
from tests.samples import PREDICTION
from tests.unit.test_schema_evolution import as_written, fingerprint_of, newer_schema, written_with
from vigil.adapters.bus import ensure_topics, new_producer, send_keyed
from vigil.adapters.schema_topic import SchemaTopicFollower, register_writer_schemas
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import SCHEMAS, Topic


@pytest.fixture(autouse=True)
def _no_registered_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(avro, "_registered", {})


async def test_the_schema_topic_is_one_compacted_partition(infra: VigilSettings) -> None:
    assert await partitions(infra.kafka_bootstrap, SCHEMAS.name) == [0]
    assert SCHEMAS.config["cleanup.policy"] == "compact"


async def test_a_record_of_a_newer_producer_is_read_once_its_schema_is_registered(
    infra: VigilSettings,
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = Topic(f"test.schemas.{uuid.uuid4().hex[:8]}", 1, "prediction_id", PredictionEvent)
    await ensure_topics(bootstrap, [topic])
    start = await end_offsets(bootstrap, topic.name)
    newer = newer_schema("PredictionEvent")
    producer = new_producer(bootstrap, "test-newer-producer")
    await producer.start()
    try:
        await send_keyed(producer, topic.name, [(b"p-1", written_with(newer, PREDICTION))])
    finally:
        await producer.stop()
    (message,) = await read_from(bootstrap, start, lambda m: len(m) == 1)
    codec = Codec(PredictionEvent)
    with pytest.raises(DecodeError, match="unknown writer schema fingerprint"):
        codec.decode(message.value)

    follower = SchemaTopicFollower(bootstrap)
    await follower.start()
    try:
        # What the shared topic already holds may include poison (the hostile tests'): only
        # what comes after counts here.
        ignored_before = follower.ignored.copy()
        # Registered after the reader started: the follower picks it up as it is published.
        await register_writer_schemas(bootstrap, [as_written(newer)])
        await follower.catch_up()
        assert codec.decode(message.value) == PREDICTION
        assert avro.registered_writer_schema(fingerprint_of(newer)) is not None
        assert follower.ignored == ignored_before
    finally:
        await follower.stop()


async def test_a_started_follower_knows_every_current_schema(infra: VigilSettings) -> None:
    await register_writer_schemas(infra.kafka_bootstrap)
    follower = SchemaTopicFollower(infra.kafka_bootstrap)
    await follower.start()
    try:
        for schema in avro.current_schemas():
            assert avro.registered_writer_schema(schema.fingerprint) is not None
    finally:
        await follower.stop()
