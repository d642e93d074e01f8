"""A production reference is published under the registry's lock, on the real Kafka and Redis:
a registry change made while the detector waited for the lock survives the publication."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from tests.drift_workers import DriftWorkers
from tests.integration.test_drift_worker import MINUTE, SETTINGS, SPEC, _events, _produce, _rows
from tests.kafka_tools import Message, end_offsets, read_from
from vigil.adapters.bus import new_producer
from vigil.adapters.revisions import MODEL_VERSION_LOCKS, RedisRevisionLocks
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import DriftConfig, ModelVersion, RiskAssessment
from vigil.wire.topics import MODELS

pytestmark = pytest.mark.integration
VERSIONS = Codec(ModelVersion)


async def _publish(bootstrap: str, version: ModelVersion) -> None:
    """Write a version record as the registry does."""
    producer = new_producer(bootstrap, "test-drift-references")
    await producer.start()
    try:
        await producer.send_and_wait(
            MODELS.name, key=version.key.encode(), value=VERSIONS.encode(version)
        )
    finally:
        await producer.stop()


async def _lock(url: str, key: str, token: str, take: bool) -> bool:
    """Take (or give back) a model version's lock, as the registry does around a change."""
    redis = Redis.from_url(url)
    try:
        locks = RedisRevisionLocks(redis, MODEL_VERSION_LOCKS)
        if take:
            return await locks.acquire(key, token, 120)
        await locks.release(key, token)
        return True
    finally:
        await redis.aclose()


def _referenced(messages: list[Message], key: str) -> list[ModelVersion]:
    found = []
    for m in messages:
        if m.key != key.encode():
            continue
        try:
            version = VERSIONS.decode(m.value)
        except DecodeError:
            continue
        if version.reference is not None:
            found.append(version)
    return found


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[DriftWorkers]:
    group = DriftWorkers(tmp_path, {**SETTINGS, "VIGIL_DRIFT_REFERENCE_SIZE": "1000"})
    try:
        yield group
    finally:
        group.stop()


def test_a_registry_change_made_while_the_detector_waits_for_the_lock_survives(
    infra: VigilSettings, workers: DriftWorkers
) -> None:
    bootstrap, model_id = infra.kafka_bootstrap, f"lockref-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    version = ModelVersion(
        model_id=model_id,
        version="1",
        task="binary",
        features=SPEC,
        owner="tests",
        risk=RiskAssessment(probability=2, impact=2, severity="low"),
        created_at=now,
        updated_at=now,
    )
    asyncio.run(_publish(bootstrap, version))
    token = uuid.uuid4().hex
    assert asyncio.run(_lock(infra.redis_url, version.key, token, take=True))
    try:
        workers.start("w")
        workers.wait_ready("w")
        models_start = asyncio.run(end_offsets(bootstrap, MODELS.name))
        window = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
        rows = _rows(np.random.default_rng(4), 1500)
        asyncio.run(_produce(bootstrap, workers.predictions, _events(model_id, rows, window, 50)))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            references = workers.status("w")["references"]
            assert isinstance(references, dict)
            if references.get("postponed"):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the reference never waited:\n{workers.tail('w')}")
        # The registry's change, made under its lock while the detector waits for it.
        changed = version.model_copy(
            update={"drift": DriftConfig(threshold=0.3), "updated_at": datetime.now(UTC)}
        )
        asyncio.run(_publish(bootstrap, changed))
    finally:
        asyncio.run(_lock(infra.redis_url, version.key, token, take=False))
    messages = asyncio.run(
        read_from(bootstrap, models_start, lambda ms: bool(_referenced(ms, version.key)), 60)
    )
    (published,) = _referenced(messages, version.key)
    assert published.drift.threshold == 0.3, workers.tail("w")
    assert published.reference is not None and published.reference.source == "production"
    assert published.updated_at > changed.updated_at
