"""Kafka with SASL/SCRAM: the SDK, the bus and catalog, and a whole service (the archive)
through the SCRAM listener; a wrong password refused at once, saying why.

The listener is ``VIGIL_KAFKA_SASL_BOOTSTRAP`` (default ``127.0.0.1:9094``, deploy/kafka.sh's)
with the users deploy/kafka.sh creates, their passwords from the same variables it reads.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from archive.config import Settings as ArchiveSettings
from archive.worker import main as archive_main
from tests.samples import MODEL, PREDICTION
from vigil.adapters.bus import KafkaBus, ensure_topics, new_producer, publish
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.kafka_security import (
    KafkaAccessDenied,
    KafkaConnection,
    KafkaSecurity,
    client_options,
)
from vigil.adapters.settings import VigilSettings
from vigil.sdk import DeliveryPolicy, PredictionLogger
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.topics import MODELS, PREDICTIONS, Topic

pytestmark = pytest.mark.integration

SASL_BOOTSTRAP = os.environ.get("VIGIL_KAFKA_SASL_BOOTSTRAP", "127.0.0.1:9094")
SERVICES = KafkaSecurity(
    "SASL_PLAINTEXT",
    sasl_username="vigil",
    sasl_password=os.environ.get("VIGIL_KAFKA_SCRAM_PASSWORD", "vigil-dev-password"),
)
APP_PASSWORD = os.environ.get("VIGIL_KAFKA_APP_SCRAM_PASSWORD", "vigil-app-dev-password")
WRONG = "not-the-password"


@pytest.fixture(scope="module")
def sasl(infra: VigilSettings) -> KafkaConnection:
    """The services' connection through SCRAM, the topics created."""
    kafka = KafkaConnection(SASL_BOOTSTRAP, SERVICES)
    asyncio.run(ensure_topics(kafka))
    return kafka


async def _ends(kafka: KafkaConnection, topic: Topic) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def _read_keys(
    kafka: KafkaConnection, start: dict[TopicPartition, int], wanted: set[bytes]
) -> set[bytes]:
    """The keys of ``wanted`` found after ``start`` (waiting up to 60 s for all of them)."""
    consumer = AIOKafkaConsumer(
        **client_options(kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    found: set[bytes] = set()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + 60
        while found != wanted and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.update(m.key for m in batch if m.key in wanted)
        return found
    finally:
        await consumer.stop()


def _app_logger(tmp_path: Path, password: str, policy: DeliveryPolicy) -> PredictionLogger:
    return PredictionLogger(
        f"kafka://{SASL_BOOTSTRAP}",
        spool_dir=tmp_path,
        policy=policy,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="vigil-app",
        sasl_password=password,
    )


@pytest.fixture(scope="module")
def model(sasl: KafkaConnection) -> ModelVersion:
    """A model version published through SCRAM as the registry publishes one (on the bus)."""
    version = MODEL.model_copy(update={"model_id": f"sasl-{uuid.uuid4().hex[:8]}"})

    async def publish_it() -> None:
        async with AsyncExitStack() as stack:
            bus = await KafkaBus.open(stack, sasl, "test-sasl-registry")
            await bus.publish(MODELS, Codec(ModelVersion), [version], lambda v: v.key)

    asyncio.run(publish_it())
    return version


async def test_the_catalog_follows_what_the_bus_published_through_scram(
    sasl: KafkaConnection, model: ModelVersion
) -> None:
    follower = ModelCatalogFollower(sasl)
    await follower.start()  # returns once it has read everything published so far
    try:
        assert follower.get(model.model_id, model.version) == model
    finally:
        await follower.stop()


def test_the_sdk_logs_through_scram_as_the_app_user(
    sasl: KafkaConnection, model: ModelVersion, tmp_path: Path
) -> None:
    start = asyncio.run(_ends(sasl, PREDICTIONS))
    prefix = f"{model.model_id}-"
    logger = _app_logger(tmp_path, APP_PASSWORD, DeliveryPolicy())
    ids = [
        logger.log(
            model.model_id,
            model.version,
            {"income": 1000.0 + i, "region": "eu"},
            i % 2 == 0,
            prediction_id=f"{prefix}{i}",
        )
        for i in range(300)
    ]
    assert logger.close(within=60), logger.stats()
    assert (logger.stats().sent, logger.stats().last_error) == (300, None)
    wanted = {i.encode() for i in ids}
    assert asyncio.run(_read_keys(sasl, start, wanted)) == wanted


def _rows(root: Path) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in root.rglob("*.parquet"))


async def test_the_archive_service_reads_through_scram(
    sasl: KafkaConnection, tmp_path: Path
) -> None:
    topic = Topic(f"test-sasl-{uuid.uuid4().hex[:8]}", 2, "prediction_id", PredictionEvent)
    await ensure_topics(sasl, [topic])
    events = [PREDICTION.model_copy(update={"prediction_id": f"s-{i}"}) for i in range(200)]
    producer = new_producer(sasl, "test-sasl-archive")
    await producer.start()
    try:
        await publish(producer, topic, Codec(PredictionEvent), events, lambda e: e.prediction_id)
    finally:
        await producer.stop()
    settings = ArchiveSettings(
        kafka_bootstrap=SASL_BOOTSTRAP,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="vigil",
        kafka_sasl_password=SERVICES.sasl_password,
        archive_url=str(tmp_path),
        archive_topic=topic.name,
        archive_group_id=f"test-{topic.name}",
        archive_max_seconds=0.3,
    )
    archive = asyncio.create_task(archive_main(settings))
    try:
        deadline = time.monotonic() + 60
        while _rows(tmp_path) < len(events) and time.monotonic() < deadline:
            assert not archive.done(), archive.exception()
            await asyncio.sleep(0.2)
        assert _rows(tmp_path) == len(events)
    finally:
        archive.cancel()
        await asyncio.gather(archive, return_exceptions=True)


async def test_a_wrong_password_is_refused_at_once_saying_why(tmp_path: Path) -> None:
    wrong = KafkaConnection(SASL_BOOTSTRAP, replace(SERVICES, sasl_password=WRONG))
    settings = ArchiveSettings(
        kafka_bootstrap=SASL_BOOTSTRAP,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="vigil",
        kafka_sasl_password=WRONG,
        archive_url=str(tmp_path),
    )
    async with asyncio.timeout(60):  # a guard against a hang; it fails well before
        with pytest.raises(KafkaAccessDenied) as by_admin:
            await ensure_topics(wrong)
        follower = ModelCatalogFollower(wrong)
        with pytest.raises(KafkaAccessDenied) as by_follower:
            await follower.start()
        await follower.stop()
        with pytest.raises(KafkaAccessDenied) as by_service:
            await archive_main(settings)  # a service stops at start-up
    for refused in (by_admin, by_follower, by_service):
        message = str(refused.value)
        assert f"Kafka at {SASL_BOOTSTRAP} refused" in message
        assert "SCRAM-SHA-512 as user 'vigil'" in message
        assert "invalid credentials" in message
        assert "VIGIL_KAFKA_SASL_PASSWORD" in message
        assert WRONG not in message


def test_the_sdk_with_a_wrong_password_says_why_and_keeps_the_events(tmp_path: Path) -> None:
    policy = DeliveryPolicy(attempts=1, retry_interval_seconds=3600)
    logger = _app_logger(tmp_path, WRONG, policy)
    logger.log("never-sent", "1", {"x": 1.0}, 0.5)
    deadline = time.monotonic() + 60  # a guard against a hang; it fails well before
    while logger.stats().spooled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = logger.stats()
    logger.close(within=0.5)
    assert (stats.sent, stats.spooled, stats.dropped) == (0, 1, 0)
    assert stats.last_error is not None
    assert stats.last_error.startswith("KafkaAccessDenied: ")
    assert "user 'vigil-app'" in stats.last_error and "invalid credentials" in stats.last_error
    assert WRONG not in stats.last_error
