"""Feedback ingest on the real broker and Redis: every body form, resends stored once, labels
checked against the registered model, Redis down is 503."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import TopicPartition
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from feedback.api import create_app
from feedback.config import Settings
from registry.api import create_app as registry_app
from tests.access import SESSION
from tests.kafka_tools import end_offsets, keyed_records
from tests.samples import one_feature_model
from vigil.adapters.idempotency import scoped_id
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent
from vigil.wire.topics import FEEDBACK

MODEL = f"labels-{uuid.uuid4().hex[:8]}"  # a regression model: its actuals are numbers
PREFIX = f"test:{MODEL}"


@pytest.fixture(scope="module")
def client(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(registry_app(), headers=SESSION) as registry:
        registry.post("/v1/models", json=one_feature_model(MODEL)).raise_for_status()
    settings = Settings(feedback_max_items=100, feedback_redis_prefix=PREFIX)
    with TestClient(create_app(settings), headers=SESSION) as client:
        yield client


def _label(i: int | str, actual: object = 1.5) -> dict[str, object]:
    return {
        "feedback_id": f"f-{i}",
        "prediction_id": f"{MODEL}-{i}",
        "model_id": MODEL,
        "actual": actual,
        "source": "ground_truth",
    }


def _on_topic(start: dict[TopicPartition, int], ids: set[str]) -> list[FeedbackEvent]:
    return keyed_records(VigilSettings().kafka_bootstrap, start, ids, Codec(FeedbackEvent))


def test_gzip_ndjson_and_resends_are_stored_exactly_once(
    infra: VigilSettings, client: TestClient
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, FEEDBACK.name))
    labels = [_label(i, float(i)) for i in range(40)]
    ndjson = b"\n".join(orjson.dumps(label) for label in labels) + b"\n"
    first = client.post(
        "/v1/feedback",
        content=gzip.compress(ndjson),
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["duplicates"]) == (40, 0)
    # A resend of half of them plus ten new ones, one of which twice in the same batch.
    resend = labels[:20] + [_label(i) for i in range(40, 50)] + [_label(49)]
    second = client.post("/v1/feedback", json=resend)
    assert (second.json()["accepted"], second.json()["duplicates"]) == (10, 21)
    on_topic = _on_topic(start, {f"{MODEL}-{i}" for i in range(50)})
    assert sorted(e.feedback_id for e in on_topic) == sorted(f"f-{i}" for i in range(50))
    assert {e.reviewer for e in on_topic} == {"tests"}  # the session key's principal

    async def kept() -> object:
        redis = Redis.from_url(infra.idempotency_url)
        try:
            return await redis.get(f"{PREFIX}:{scoped_id(f'{MODEL}-7', 'f-7')}")
        finally:
            await redis.aclose()

    assert asyncio.run(kept()) == b"stored"  # on the idempotency Redis


def test_labels_are_checked_against_the_registered_model_unless_partial(
    infra: VigilSettings, client: TestClient
) -> None:
    batch = [_label("ok"), _label("text", "12.5"), {**_label("ghost"), "model_id": "no-such"}]
    whole = client.post("/v1/feedback", json=batch)
    assert whole.status_code == 422
    assert [(e["index"], e["field"]) for e in whole.json()["errors"]] == [
        (1, "actual"),
        (2, "model_id"),
    ]
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, FEEDBACK.name))
    part = client.post("/v1/feedback", params={"partial": "true"}, json=batch)
    assert (part.json()["accepted"], part.json()["rejected"]) == (1, 2)
    stored = _on_topic(start, {f"{MODEL}-ok", f"{MODEL}-text"})
    assert [e.prediction_id for e in stored] == [f"{MODEL}-ok"]


def test_an_idempotency_redis_that_is_down_means_503(infra: VigilSettings) -> None:
    nowhere = "redis://127.0.0.1:1/0"
    settings = Settings(redis_url=nowhere, idempotency_redis_url=nowhere)
    with TestClient(create_app(settings), headers=SESSION) as client:
        response = client.post("/v1/feedback", json=_label("redis-down"))
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["detail"].startswith("Redis is unavailable")
