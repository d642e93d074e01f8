"""Bulk ingest: NDJSON, gzip, limits, partial batches, resends — every accepted event once."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from prediction_logger.api import create_app
from prediction_logger.config import Settings
from registry.api import create_app as registry_app
from tests.access import SESSION
from tests.kafka_tools import end_offsets, keyed_records
from tests.samples import one_feature_model
from vigil.adapters.idempotency import IdempotencyKeys, scoped_id
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import PREDICTIONS

MODEL = f"ingest-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def client(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(registry_app(), headers=SESSION) as registry:
        registry.post("/v1/models", json=one_feature_model(MODEL)).raise_for_status()
    settings = Settings(
        prediction_logger_max_batch=100, prediction_logger_redis_prefix=f"test:{MODEL}"
    )
    with TestClient(create_app(settings), headers=SESSION) as logger:
        yield logger


def _event(i: int | str, x: object = 1.0) -> dict[str, object]:
    return {
        "prediction_id": f"{MODEL}-{i}",
        "model_id": MODEL,
        "model_version": "1",
        "features": {"x": x},
        "prediction": 0.5,
    }


def _on_topic(infra: VigilSettings, start: dict, ids: set[str]) -> list[PredictionEvent]:  # type: ignore[type-arg]
    return keyed_records(infra.kafka_bootstrap, start, ids, Codec(PredictionEvent))


def test_ndjson_gzip_and_resends_are_stored_exactly_once(
    infra: VigilSettings, client: TestClient
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    events = [_event(i, float(i)) for i in range(40)]
    ndjson = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    first = client.post(
        "/v1/predictions",
        content=gzip.compress(ndjson),
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["duplicates"]) == (40, 0)
    # A resend of half of them plus ten new ones, one of which twice in the same batch.
    resend = events[:20] + [_event(i) for i in range(40, 50)] + [_event(49)]
    second = client.post("/v1/predictions", json=resend)
    assert (second.json()["accepted"], second.json()["duplicates"]) == (10, 21)
    on_topic = _on_topic(infra, start, {f"{MODEL}-{i}" for i in range(50)})
    assert sorted(e.prediction_id for e in on_topic) == sorted(f"{MODEL}-{i}" for i in range(50))


def test_a_bad_event_rejects_the_batch_with_every_error_unless_partial(
    infra: VigilSettings, client: TestClient
) -> None:
    batch = [
        _event("p0"),
        _event("p1", "high"),
        {"model_id": MODEL},
        _event("p3"),
        {**_event("p4"), "model_version": "9"},
    ]
    whole = client.post("/v1/predictions", json=batch)
    assert whole.status_code == 422
    assert [(e["index"], e["field"]) for e in whole.json()["errors"]] == [
        (1, "features.x"),
        (2, "model_version"),
        (2, "features"),
        (2, "prediction"),
        (4, "model_version"),
    ]
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    part = client.post("/v1/predictions", params={"partial": "true"}, json=batch)
    assert part.status_code == 200
    assert (part.json()["accepted"], part.json()["rejected"]) == (2, 3)
    assert {e["index"] for e in part.json()["errors"]} == {1, 2, 4}
    stored = _on_topic(infra, start, {f"{MODEL}-p0", f"{MODEL}-p3", f"{MODEL}-p1"})
    assert sorted(e.prediction_id for e in stored) == [f"{MODEL}-p0", f"{MODEL}-p3"]


def test_limits_and_unreadable_bodies(client: TestClient) -> None:
    too_many = client.post("/v1/predictions", json=[_event(i) for i in range(101)])
    assert too_many.status_code == 413
    assert "the limit is 100" in too_many.json()["detail"]
    not_gzip = client.post(
        "/v1/predictions", content=b"plain", headers={"content-encoding": "gzip"}
    )
    assert not_gzip.status_code == 400
    bad_line = client.post(
        "/v1/predictions",
        content=b'{"a": 1}\n{nope\n',
        headers={"content-type": "application/x-ndjson"},
    )
    assert bad_line.status_code == 400
    assert bad_line.json()["errors"][0]["field"] == "<line 2>"


def test_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"ready": True, "checks": {"kafka": "ok", "redis": "ok"}}
    text = client.get("/metrics").text
    assert f'vigil_predictions_accepted_total{{model_id="{MODEL}"}}' in text
    assert 'vigil_predictions_rejected_total{reason="invalid_field"}' in text
    assert "vigil_predictions_request_seconds_bucket" in text


def test_redis_down_means_503_with_retry_after_and_nothing_stored(infra: VigilSettings) -> None:
    nowhere = "redis://127.0.0.1:1/0"
    settings = Settings(redis_url=nowhere, idempotency_redis_url=nowhere)
    with TestClient(create_app(settings), headers=SESSION) as client:
        response = client.post("/v1/predictions", json=_event("redis-down"))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert client.get("/readyz").status_code == 503


def test_idempotency_claims_are_new_then_pending_then_stored(infra: VigilSettings) -> None:
    async def run() -> list[list[str]]:
        redis = Redis.from_url(infra.redis_url)
        try:
            keys = IdempotencyKeys(redis, f"test:{MODEL}:claims", 60, pending_seconds=60)
            ids = ["a", "b"]
            states = [list(await keys.claim(ids))]
            states.append(list(await keys.claim(["a", "b", "c"])))
            await keys.confirm(["a"])
            await keys.release(["b", "c"])
            states.append(list(await keys.claim(["a", "b"])))
            await keys.release(["b"])
            return states
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == [
        ["new", "new"],
        ["pending", "pending", "new"],
        ["stored", "new"],
    ]


def test_an_event_kafka_refuses_leaves_the_others_stored_once_across_resends(
    infra: VigilSettings,
) -> None:
    # With the per-event limit raised past Kafka's 1 MB, the big event reaches the broker,
    # which refuses its batch while the other partitions' batches are written.
    settings = Settings(
        prediction_logger_max_event_bytes=4 * 1024 * 1024,
        prediction_logger_redis_prefix=f"test:{MODEL}:partly",
    )
    big = {**_event("too-big"), "tags": {f"t{i}": "x" * 1000 for i in range(1_200)}}
    batch = [_event(f"partly-{i}") for i in range(30)] + [big]
    ids = {f"{MODEL}-partly-{i}" for i in range(30)}
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    with TestClient(create_app(settings), headers=SESSION) as client:
        first = client.post("/v1/predictions", json=batch)
        assert (first.status_code, first.headers["retry-after"]) == (503, "5"), first.text
        again = client.post("/v1/predictions", json=batch)
        assert again.status_code == 503
        assert "did not store 1 of 1" in again.json()["detail"]  # only the big one was sent
    stored = _on_topic(infra, start, ids | {f"{MODEL}-too-big"})
    assert sorted(e.prediction_id for e in stored) == sorted(ids)


def test_an_event_over_the_size_limit_is_413_and_nothing_is_stored(client: TestClient) -> None:
    big = {**_event("huge"), "tags": {f"t{i}": "x" * 1000 for i in range(300)}}
    response = client.post("/v1/predictions", json=[_event("small"), big])
    assert response.status_code == 413
    ((error),) = response.json()["errors"]
    assert error["index"] == 1
    assert error["expected"] == "an event of at most 262144 bytes once encoded"
    assert client.post("/v1/predictions", json=_event("small")).json()["accepted"] == 1


def test_idempotency_keys_are_scoped_per_model(infra: VigilSettings) -> None:
    async def run() -> tuple[list[str], list[str], int]:
        redis = Redis.from_url(infra.redis_url)
        try:
            keys = IdempotencyKeys(redis, f"test:{MODEL}:scoped", 60)
            mine = list(await keys.claim([scoped_id("model-a", "p-1")]))
            theirs = list(await keys.claim([scoped_id("model-b", "p-1")]))
            found = await redis.exists(f"test:{MODEL}:scoped:{scoped_id('model-a', 'p-1')}")
            await keys.release([scoped_id("model-a", "p-1"), scoped_id("model-b", "p-1")])
            return mine, theirs, found
        finally:
            await redis.aclose()

    assert asyncio.run(run()) == (["new"], ["new"], 1)
