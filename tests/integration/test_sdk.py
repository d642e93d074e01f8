"""The SDK against the real broker, and its spool on the real filesystem."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api import create_app as registry_app
from tests.access import SESSION
from tests.kafka_tools import Message, end_offsets, read_from
from tests.samples import one_feature_model
from tests.unit.test_sdk import FAST, FlakyTransport
from vigil.adapters.settings import VigilSettings
from vigil.sdk import AsyncPredictionLogger, PredictionLogger, Spool
from vigil.sdk.pipeline import Delivery
from vigil.sdk.transport import is_feedback
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, PredictionEvent
from vigil.wire.topics import FEEDBACK, PREDICTIONS


def _read_ids(infra: VigilSettings, start: dict, prefix: str, n: int) -> list[str]:  # type: ignore[type-arg]
    def mine(ms: list[Message]) -> list[Message]:
        return [m for m in ms if m.key.decode().startswith(prefix)]

    messages = asyncio.run(
        read_from(infra.kafka_bootstrap, start, lambda ms: len(mine(ms)) >= n, 60)
    )
    return [Codec(PredictionEvent).decode(m.value).prediction_id for m in mine(messages)]


@pytest.fixture(scope="module", autouse=True)
def sdk_model(infra: VigilSettings) -> None:
    """Register the model these tests log for, so other consumers take its events as valid."""
    with TestClient(registry_app(), headers=SESSION) as registry:
        response = registry.post("/v1/models", json=one_feature_model("sdk-model"))
        assert response.status_code in (201, 409)


def test_every_logged_prediction_reaches_the_topic_once(
    infra: VigilSettings, tmp_path: Path
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    prefix = f"sdk-{uuid.uuid4().hex[:8]}-"
    logger = PredictionLogger(f"kafka://{infra.kafka_bootstrap}", spool_dir=tmp_path)
    ids = [
        logger.log("sdk-model", "1", {"x": float(i)}, i % 2 == 0, prediction_id=f"{prefix}{i}")
        for i in range(3000)
    ]
    assert logger.close(within=60)
    assert logger.stats().sent == 3000
    assert sorted(_read_ids(infra, start, prefix, 3000)) == sorted(ids)


def test_the_asyncio_twin_delivers_too(infra: VigilSettings, tmp_path: Path) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    prefix = f"async-{uuid.uuid4().hex[:8]}-"

    async def app() -> None:
        async with AsyncPredictionLogger(
            f"kafka://{infra.kafka_bootstrap}", spool_dir=tmp_path
        ) as logger:
            for i in range(500):
                logger.log("sdk-model", "1", {"x": i}, 1.0, prediction_id=f"{prefix}{i}")
            assert await logger.flush(within=60)

    asyncio.run(app())
    assert len(set(_read_ids(infra, start, prefix, 500))) == 500


def test_feedback_logged_with_the_predictions_reaches_the_feedback_topic(
    infra: VigilSettings, tmp_path: Path
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, FEEDBACK.name))
    predictions = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    prefix = f"sdk-fb-{uuid.uuid4().hex[:8]}-"
    logger = PredictionLogger(f"kafka://{infra.kafka_bootstrap}", spool_dir=tmp_path)
    for i in range(300):  # each prediction, then its outcome, in the same queue
        pid = logger.log("sdk-model", "1", {"x": float(i)}, 0.5, prediction_id=f"{prefix}{i}")
        logger.feedback(pid, float(i), model_id="sdk-model", feedback_id=f"f-{i}")
    logger.feedback(f"{prefix}0", flag="incorrect", comment="too low", source="sme")
    assert logger.close(within=60)
    assert (logger.stats().sent, logger.stats().dropped) == (601, 0)

    def mine(ms: list[Message]) -> list[Message]:
        return [m for m in ms if m.key.decode().startswith(prefix)]

    messages = asyncio.run(
        read_from(infra.kafka_bootstrap, start, lambda ms: len(mine(ms)) >= 301, 60)
    )
    feedback = [Codec(FeedbackEvent).decode(m.value) for m in mine(messages)]
    truths = {f.prediction_id: f for f in feedback if f.actual is not None}
    assert sorted(truths) == sorted(f"{prefix}{i}" for i in range(300))
    assert (truths[f"{prefix}7"].feedback_id, truths[f"{prefix}7"].actual) == ("f-7", 7.0)
    assert truths[f"{prefix}7"].source == "ground_truth"
    (flag,) = [f for f in feedback if f.flag is not None]
    assert (flag.prediction_id, flag.comment, flag.source) == (f"{prefix}0", "too low", "sme")
    # Each kind on its own topic: every message read there decodes as its record.
    assert sorted(_read_ids(infra, predictions, prefix, 300)) == sorted(truths)


def test_the_spool_appends_durably_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=200)
    events = [{"prediction_id": str(i), "features": {"x": i}} for i in range(10)]
    assert spool.append(events[:5])
    assert spool.append(events[5:])
    segments = spool.segments()
    assert len(segments) == 2
    with segments[-1].open("ab") as f:
        f.write(b'{"prediction_id": "torn"')
    assert [e for s in segments for e in spool.read(s)] == events
    assert spool.skipped_lines == 1
    assert not spool.append([{"big": "x" * 20_000}])  # over max_bytes: refused, nothing written
    assert len(spool.segments()) == 2


def test_an_unreachable_destination_spills_to_the_spool_and_replays_it(tmp_path: Path) -> None:
    transport = FlakyTransport(failures=FAST.attempts)  # the first batch fails every attempt
    queue: deque[dict[str, Any]] = deque({"prediction_id": str(i)} for i in range(30))
    delivery = Delivery(transport, queue, Spool(tmp_path, 1 << 20), FAST)
    delivery.stopping = True
    asyncio.run(delivery.run())
    delivered = [e["prediction_id"] for b in transport.batches for e in b]
    assert sorted(delivered, key=int) == [str(i) for i in range(30)]
    assert (delivery.sent, delivery.spooled, delivery.dropped) == (30, 0, 0)
    assert Spool(tmp_path, 1 << 20).segments() == []


def test_spooled_feedback_is_replayed_as_feedback(tmp_path: Path) -> None:
    transport = FlakyTransport(failures=FAST.attempts)  # the first batch is spooled
    queue: deque[dict[str, Any]] = deque()
    for i in range(6):
        queue.append({"prediction_id": str(i)})
        queue.append({"feedback_id": f"f-{i}", "prediction_id": str(i), "actual": i})
    delivery = Delivery(transport, queue, Spool(tmp_path, 1 << 20), FAST)
    delivery.stopping = True
    asyncio.run(delivery.run())
    delivered = [e for b in transport.batches for e in b]
    assert sorted(e["feedback_id"] for e in delivered if is_feedback(e)) == [
        f"f-{i}" for i in range(6)
    ]
    assert sum(not is_feedback(e) for e in delivered) == 6
    assert (delivery.sent, delivery.spooled, delivery.dropped) == (12, 0, 0)


def test_a_spool_left_by_a_previous_run_is_delivered_by_the_next(tmp_path: Path) -> None:
    Spool(tmp_path, 1 << 20).append([{"prediction_id": "left-over"}])
    transport = FlakyTransport()
    delivery = Delivery(transport, deque(), Spool(tmp_path, 1 << 20), FAST)
    assert delivery.spooled == 1
    delivery.stopping = True
    asyncio.run(delivery.run())
    assert transport.batches == [[{"prediction_id": "left-over"}]]
