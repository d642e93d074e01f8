"""Topic catalogue, dead letters and the model catalog against the real broker."""

from __future__ import annotations

import uuid
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient

from tests.kafka_tools import end_offsets, partitions, read_from
from tests.samples import MODEL
from vigil.adapters.bus import dead_letter, ensure_topics, new_producer, publish
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import CATALOGUE, DEADLETTER, FEEDBACK, MODELS, PREDICTIONS


async def test_topics_exist_with_their_layout_and_creating_again_is_harmless(
    infra: VigilSettings,
) -> None:
    assert await ensure_topics(infra.kafka_bootstrap) == []
    for topic in CATALOGUE:
        assert len(await partitions(infra.kafka_bootstrap, topic.name)) == topic.partitions
    assert PREDICTIONS.partitions == FEEDBACK.partitions >= 3


async def test_dead_letters_keep_the_original_bytes_and_say_why(infra: VigilSettings) -> None:
    start = await end_offsets(infra.kafka_bootstrap, DEADLETTER.name)
    marker = uuid.uuid4().hex.encode()
    producer = new_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    try:
        sent = await dead_letter(
            producer,
            b"\xff" + marker,
            "unknown encoding",
            source_topic="vigil.predictions.v1",
            key=marker,
            partition=2,
            offset=17,
        )
        await sent
    finally:
        await producer.stop()
    messages = await read_from(
        infra.kafka_bootstrap, start, lambda ms: any(m.key == marker for m in ms)
    )
    (letter,) = [m for m in messages if m.key == marker]
    assert letter.value == b"\xff" + marker
    assert dict(letter.headers) == {
        "vigil.reason": b"unknown encoding",
        "vigil.source.topic": b"vigil.predictions.v1",
        "vigil.source.partition": b"2",
        "vigil.source.offset": b"17",
    }


async def test_the_model_catalog_follows_the_compacted_models_topic(infra: VigilSettings) -> None:
    version = MODEL.model_copy(update={"model_id": f"catalog-{uuid.uuid4().hex[:8]}"})
    follower = ModelCatalogFollower(infra.kafka_bootstrap)
    await follower.start()
    producer = new_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    try:
        assert follower.catalog.get(version.model_id, version.version) is None
        await publish(producer, MODELS, Codec(ModelVersion), [version], lambda v: v.key)
        await follower.catch_up()
        assert follower.catalog.get(version.model_id, version.version) == version
        await producer.send_and_wait(MODELS.name, key=version.key.encode(), value=None)
        await follower.catch_up()
        assert follower.catalog.get(version.model_id, version.version) is None
    finally:
        await producer.stop()
        await follower.stop()
    fresh = ModelCatalogFollower(infra.kafka_bootstrap)
    await fresh.start()  # a new reader rebuilds the same view from the topic
    try:
        assert fresh.catalog.get(version.model_id, version.version) is None
    finally:
        await fresh.stop()


async def test_the_model_catalog_ignores_and_counts_records_it_cannot_trust(
    infra: VigilSettings,
) -> None:
    topic = replace(MODELS, name=f"test-models-{uuid.uuid4().hex[:8]}")
    await ensure_topics(infra.kafka_bootstrap, [topic])
    good = MODEL.model_copy(update={"model_id": f"catalog-{uuid.uuid4().hex[:8]}"})
    shadow = good.model_copy(update={"owner": "someone else"})
    producer = new_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, key=b"\xff\xfe", value=None)
        await producer.send_and_wait(topic.name, key=b"x/1", value=b"\x00garbage")
        await publish(producer, topic, Codec(ModelVersion), [good], lambda v: v.key)
        # A mismatched key survives compaction: it must not shadow the real record.
        await publish(producer, topic, Codec(ModelVersion), [shadow], lambda v: "other/v9")
        follower = ModelCatalogFollower(infra.kafka_bootstrap, topic=topic.name)
        await follower.start()
        try:
            assert follower.catalog.get(good.model_id, good.version) == good
            assert follower.ignored == {"key_not_utf8": 1, "undecodable": 1, "key_mismatch": 1}
            await producer.send_and_wait(topic.name, key=b"\x80", value=None)
            newer = good.model_copy(update={"owner": "still followed"})
            await publish(producer, topic, Codec(ModelVersion), [newer], lambda v: v.key)
            await follower.catch_up()
            assert follower.catalog.get(good.model_id, good.version) == newer
            assert follower.ignored["key_not_utf8"] == 2
        finally:
            await follower.stop()
    finally:
        await producer.stop()
        await _delete(infra.kafka_bootstrap, topic.name)


async def _delete(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
