"""Poison messages on every topic Vigil consumes, against the real broker: garbage, truncated
Avro, a valid record with absurd values and a tombstone with a binary key. Each consumer
dead-letters (or ignores and counts) them and still processes a good message sent after."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from drift_detector.partials import MICROS, Partial, PartialWindow
from tests.access import SESSION
from tests.drift_workers import DriftWorkers
from tests.integration.test_drift_worker import (
    MINUTE,
    SETTINGS,
    _events,
    _produce,
    _register,
    _reports,
    _rows,
)
from tests.kafka_tools import Message, end_offsets, private_copy, read_from
from tests.samples import MODEL, report_at
from vigil.adapters.bus import ensure_topics, new_producer
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, PredictionEvent, WindowReport
from vigil.wire.topics import DEADLETTER, METRICS, MODELS, PREDICTIONS, drift_topics

pytestmark = pytest.mark.integration
YEAR_2999 = datetime(2999, 1, 1, tzinfo=UTC)
Poison = tuple[bytes, bytes | None]  # key, value


def _truncated(value: bytes) -> bytes:
    """A valid single-object header (marker and fingerprint) and half a body."""
    return value[: 10 + (len(value) - 10) // 2]


def _binary_key(uid: str) -> bytes:
    return b"\xff\xfe" + uid.encode()


async def _send(bootstrap: str, topic: str, messages: list[Poison]) -> None:
    producer = new_producer(bootstrap, "test-poison")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


def _letters(bootstrap: str, start: object, topic: str, count: int) -> list[Message]:
    def mine(ms: list[Message]) -> list[Message]:
        return [m for m in ms if dict(m.headers).get("vigil.source.topic") == topic.encode()]

    messages = asyncio.run(
        read_from(bootstrap, start, lambda ms: len(mine(ms)) >= count, 60)  # type: ignore[arg-type]
    )
    return mine(messages)


def _reason(letter: Message) -> str:
    return dict(letter.headers)["vigil.reason"].decode()


# -- vigil.models.v1: the catalog of every service ------------------------------------------


async def test_the_catalog_ignores_and_counts_poison_and_follows_what_comes_after(
    infra: VigilSettings,
) -> None:
    topic = replace(MODELS, name=f"test-poison-models-{uuid.uuid4().hex[:8]}")
    await ensure_topics(infra.kafka_bootstrap, [topic])
    good = MODEL.model_copy(update={"model_id": f"poison-{uuid.uuid4().hex[:8]}"})
    encoded = Codec(ModelVersion).encode(good)
    absurd = good.model_copy(update={"created_at": YEAR_2999, "business_costs": {"fp": 1e308}})
    poison: list[Poison] = [
        (good.key.encode(), b"\x00\x01 garbage"),
        (good.key.encode(), _truncated(encoded)),
        (b"someone/else", Codec(ModelVersion).encode(absurd)),  # its key does not match
        (_binary_key(good.model_id), None),
    ]
    follower = ModelCatalogFollower(infra.kafka_bootstrap, topic=topic.name)
    await follower.start()
    try:
        await _send(infra.kafka_bootstrap, topic.name, [*poison, (good.key.encode(), encoded)])
        await follower.catch_up()
        assert follower.catalog.get(good.model_id, good.version) == good
        assert follower.ignored == {"undecodable": 2, "key_mismatch": 1, "key_not_utf8": 1}
    finally:
        await follower.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic.name])
        finally:
            await admin.close()


# -- vigil.predictions.v1 and the drift detector's partials and state topics ----------------


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[DriftWorkers]:
    group = DriftWorkers(tmp_path, SETTINGS)
    try:
        yield group
    finally:
        group.stop()


def _prediction_poison(model_id: str, uid: str) -> list[Poison]:
    codec = Codec(PredictionEvent)
    (event,) = _events(model_id, _rows(np.random.default_rng(5), 1), time.time(), 1)
    future = event.model_copy(update={"prediction_id": f"future-{uid}", "timestamp": YEAR_2999})
    return [
        (f"garbage-{uid}".encode(), b"\x00\x01 garbage"),
        (f"truncated-{uid}".encode(), _truncated(codec.encode(event))),
        (f"future-{uid}".encode(), codec.encode(future)),
        (_binary_key(uid), None),
    ]


def _partial_poison(model_id: str, uid: str) -> list[Poison]:
    key = f"{model_id}/1".encode()
    now = int(time.time() * MICROS)
    real = Partial(model_id, "1", 1, {0: now}, [], None, PREDICTIONS.partitions)
    future = replace(real, marks={0: int(YEAR_2999.timestamp() * MICROS)})
    negative = replace(real, windows=[PartialWindow(now, -5, now, now, b"")])
    return [
        (key, b"\x00\x01 garbage"),
        (key, _truncated(real.to_bytes())),
        (key, future.to_bytes()),
        (key, negative.to_bytes()),
        (_binary_key(uid), None),
    ]


def test_drift_workers_dead_letter_poison_and_still_report(
    infra: VigilSettings, worker: DriftWorkers
) -> None:
    bootstrap = infra.kafka_bootstrap
    uid = uuid.uuid4().hex[:8]
    model_id = f"poison-{uid}"
    asyncio.run(_register(bootstrap, model_id))
    partials, state = drift_topics(worker.app_id)
    asyncio.run(ensure_topics(bootstrap, [partials, state]))
    dead_start = asyncio.run(end_offsets(bootstrap, DEADLETTER.name))
    state_poison: list[Poison] = [
        (f"{model_id}/1".encode(), _truncated(Partial(model_id, "1", 1, {}).to_bytes())),
        (_binary_key(uid), None),
    ]
    asyncio.run(_send(bootstrap, state.name, state_poison))
    asyncio.run(_send(bootstrap, partials.name, _partial_poison(model_id, uid)))
    worker.start("w0")
    worker.wait_ready("w0")
    metrics_start = asyncio.run(end_offsets(bootstrap, METRICS.name))
    asyncio.run(_send(bootstrap, worker.predictions, _prediction_poison(model_id, uid)))
    window = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
    good = _events(model_id, _rows(np.random.default_rng(6), 500), window, 30)
    asyncio.run(_produce(bootstrap, worker.predictions, good))

    def reports(ms: list[Message]) -> list[WindowReport]:
        return _reports(ms, model_id)

    got = asyncio.run(read_from(bootstrap, metrics_start, lambda ms: bool(reports(ms)), 90))
    (report,) = reports(got)
    assert (report.event_count, report.late_events) == (500, 0), worker.tail("w0")

    from_predictions = _letters(bootstrap, dead_start, worker.predictions, 4)
    keys = {m.key for m in from_predictions}
    assert {k for k, _ in _prediction_poison(model_id, uid)} <= keys
    future = [m for m in from_predictions if m.key == f"future-{uid}".encode()]
    assert _reason(future[0]).startswith("event time more than 300 s ahead")
    from_partials = _letters(bootstrap, dead_start, partials.name, 5)
    assert len(from_partials) == 5
    reasons = sorted(_reason(m) for m in from_partials)
    assert sum("in the future" in r for r in reasons) == 1, reasons
    assert sum("negative counts" in r for r in reasons) == 1, reasons
    (from_state,) = _letters(bootstrap, dead_start, state.name, 1)
    assert _reason(from_state).startswith("not a drift state")
    status = worker.status("w0")
    assert status["quarantined_events"] == 1


# -- vigil.metrics.v1: the alerting worker ---------------------------------------------------


def _naive(report: WindowReport) -> bytes:
    body = report.model_dump(mode="json")
    for name in ("window_start", "window_end", "created_at"):
        body[name] = getattr(report, name).replace(tzinfo=None).isoformat()
    return orjson.dumps(body)


def test_alerting_dead_letters_poison_reports_and_keeps_alerting(infra: VigilSettings) -> None:
    uid = uuid.uuid4().hex[:8]
    first, odd, later = f"poison-{uid}", f"absurd-{uid}", f"after-{uid}"
    reports_topic = private_copy(infra.kafka_bootstrap, METRICS, uid).name
    settings = Settings(
        alerting_reports_topic=reports_topic,
        alerting_group_id=f"test-{uid}",
        alerting_redis_prefix=f"test:{uid}",
    )
    codec = Codec(WindowReport)
    fired = report_at(first, 0, drifted=True)
    drifting = report_at(odd, 0, drifted=True)
    nan = drifting.features[0].model_copy(update={"statistics": {"psi": float("nan")}})
    absurd = drifting.model_copy(
        update={"event_count": 2**62, "window_start": YEAR_2999, "features": [nan]}
    )
    poison: list[Poison] = [
        (f"garbage-{uid}".encode(), b"\x00\x01 garbage"),
        (f"truncated-{uid}".encode(), _truncated(codec.encode(fired))),
        (_binary_key(uid), None),
        (fired.key.encode(), _naive(report_at(first, 1, drifted=False))),  # read as UTC
        (absurd.key.encode(), codec.encode(absurd)),
    ]
    dead_start = asyncio.run(end_offsets(infra.kafka_bootstrap, DEADLETTER.name))
    with TestClient(create_app(settings), headers=SESSION) as client:
        messages = [(fired.key.encode(), codec.encode(fired)), *poison]
        good = report_at(later, 0, drifted=True)
        messages.append((good.key.encode(), codec.encode(good)))
        asyncio.run(_send(infra.kafka_bootstrap, reports_topic, messages))

        def alerts(model_id: str) -> list[dict[str, object]]:
            found: list[dict[str, object]] = client.get(
                "/v1/alerts", params={"model_id": model_id}
            ).json()
            return found

        def fate_known() -> bool:  # the absurd report: refused at decode (NaN), or acted on
            keys = {m.key for m in _letters(infra.kafka_bootstrap, dead_start, reports_topic, 3)}
            return bool(alerts(odd)) or absurd.key.encode() in keys

        def settled() -> bool:
            resolved = [a["status"] for a in alerts(first)] == ["resolved"]
            return resolved and bool(alerts(later)) and fate_known()

        deadline = time.monotonic() + 90
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert [a["status"] for a in alerts(later)] == ["firing"]
        # Resolved by the report without a time zone, read as UTC.
        assert [a["status"] for a in alerts(first)] == ["resolved"]
        odd_alerts = alerts(odd)
    letters = _letters(infra.kafka_bootstrap, dead_start, reports_topic, 3)
    keys = {m.key for m in letters}
    assert {f"garbage-{uid}".encode(), f"truncated-{uid}".encode(), _binary_key(uid)} <= keys
    # The absurd report is either refused at decode (NaN) and dead-lettered, or acted on.
    assert (absurd.key.encode() in keys) != bool(odd_alerts)
