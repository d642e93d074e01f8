"""Registry, prediction logger, feedback and alert store against the real broker and Redis."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from alerting.store import RedisAlertStore
from feedback.api import create_app as feedback_app
from prediction_logger.api import create_app as prediction_logger_app
from registry.api import create_app as registry_app
from registry.config import Settings as RegistrySettings
from tests.access import SESSION
from tests.kafka_tools import end_offsets, read_from
from tests.samples import T0, loan_model
from vigil.adapters.ports import Unavailable
from vigil.adapters.revisions import RedisRevisionLocks
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import Alert, FeedbackEvent, PredictionEvent
from vigil.wire.topics import FEEDBACK, PREDICTIONS


@pytest.fixture(scope="module")
def registry(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(registry_app(), headers=SESSION) as client:
        yield client


@pytest.fixture(scope="module")
def logger(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(prediction_logger_app(), headers=SESSION) as client:
        yield client


@pytest.fixture(scope="module")
def model_id(registry: TestClient) -> str:
    model_id = f"credit-{uuid.uuid4().hex[:8]}"
    response = registry.post("/v1/models", json=loan_model(model_id))
    assert response.status_code == 201, response.text
    return model_id


def _prediction(model_id: str, **features: object) -> dict[str, object]:
    return {
        "model_id": model_id,
        "model_version": "1.0.0",
        "features": features or {"income": 42_000.0, "region": "eu"},
        "prediction": True,
        "score": 0.7,
    }


def test_registry_lists_and_serves_versions_and_refuses_duplicates(
    registry: TestClient, model_id: str
) -> None:
    listed = {m["model_id"]: m for m in registry.get("/v1/models").json()}
    assert listed[model_id]["severity"] == "high"
    assert registry.get(f"/v1/models/{model_id}").json()["versions"][0]["version"] == "1.0.0"
    again = registry.post("/v1/models", json=loan_model(model_id))
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "version"
    assert registry.get("/v1/models/nope").status_code == 404


def test_reference_upload_stores_a_profile_with_the_version(
    registry: TestClient, model_id: str
) -> None:
    rows = [{"income": float(i), "region": "eu" if i % 3 else "us"} for i in range(1000)]
    response = registry.post(f"/v1/models/{model_id}/versions/1.0.0/reference", json=rows)
    assert response.status_code == 200, response.text
    reference = registry.get(f"/v1/models/{model_id}/versions/1.0.0").json()["reference"]
    assert reference["row_count"] == 1000
    assert len(reference["features"][0]["bin_edges"]) == 9
    bad = registry.post(f"/v1/models/{model_id}/versions/1.0.0/reference", json=[{"income": "x"}])
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"features.income", "features.region"}


def test_references_upload_as_csv_or_parquet_and_each_replacement_is_recorded(
    registry: TestClient,
) -> None:
    model_id = f"refs-{uuid.uuid4().hex[:8]}"
    assert registry.post("/v1/models", json=loan_model(model_id)).status_code == 201
    url = f"/v1/models/{model_id}/versions/1.0.0/reference"
    lines = ["income,region,prediction,score"]
    lines += [f"{i * 10.5},{'eu' if i % 3 else 'us'},{i % 2 == 0},{i / 600}" for i in range(600)]
    csv = registry.post(url, content="\n".join(lines), headers={"content-type": "text/csv"})
    assert csv.status_code == 200, csv.text
    assert (csv.json()["reference_version"], csv.json()["row_count"]) == (1, 600)

    table = pa.table({"income": [float(i) for i in range(800)], "region": ["eu"] * 800})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parquet = registry.post(
        url, content=sink.getvalue(), headers={"content-type": "application/vnd.apache.parquet"}
    )
    assert parquet.status_code == 200, parquet.text
    version = registry.get(f"/v1/models/{model_id}/versions/1.0.0").json()
    reference = version["reference"]
    assert (reference["version"], reference["row_count"], reference["source"]) == (
        2,
        800,
        "uploaded",
    )
    history = version["reference_history"]
    assert [(h["version"], h["row_count"]) for h in history] == [(1, 600), (2, 800)]
    assert history[0]["replaced_at"] is not None and history[1]["replaced_at"] is None

    bad = registry.post(
        url, content="income,region\nlots,eu\n", headers={"content-type": "text/csv"}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "features.income"
    broken = registry.post(
        url, content=b"PAR1 not really", headers={"content-type": "application/vnd.apache.parquet"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["expected"] == "a Parquet file"


def test_drift_settings_are_stored_with_the_version(registry: TestClient, model_id: str) -> None:
    url = f"/v1/models/{model_id}/versions/1.0.0/drift"
    settings = {"window_seconds": 300, "threshold": 0.3, "feature_thresholds": {"income": 0.5}}
    response = registry.put(url, json=settings)
    assert response.status_code == 200, response.text
    drift = registry.get(f"/v1/models/{model_id}/versions/1.0.0").json()["drift"]
    assert (drift["window_seconds"], drift["threshold"], drift["feature_thresholds"]) == (
        300,
        0.3,
        {"income": 0.5},
    )
    unknown = registry.put(url, json={"feature_thresholds": {"salary": 0.5}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "feature_thresholds.salary"
    negative = registry.put(url, json={"window_seconds": -1})
    assert negative.status_code == 422


def test_accepted_predictions_are_on_the_topic_exactly_once(
    infra: VigilSettings, logger: TestClient, model_id: str
) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, PREDICTIONS.name))
    batch = [_prediction(model_id, income=float(i), region="eu") for i in range(50)]
    response = logger.post("/v1/predictions", json=batch)
    assert response.status_code == 200, response.text
    ids = set(response.json()["prediction_ids"])
    assert response.json()["accepted"] == len(ids) == 50

    def mine(ms: list) -> list:  # type: ignore[type-arg]
        return [m for m in ms if m.key.decode() in ids]

    messages = mine(
        asyncio.run(read_from(infra.kafka_bootstrap, start, lambda ms: len(mine(ms)) >= 50, 10))
    )
    events = [Codec(PredictionEvent).decode(m.value) for m in messages]
    assert sorted(e.prediction_id for e in events) == sorted(ids)
    assert {e.features["income"] for e in events} == {float(i) for i in range(50)}


def test_invalid_predictions_name_index_field_expected_and_received(
    logger: TestClient, model_id: str
) -> None:
    batch = [_prediction(model_id), _prediction(model_id, income="high", region="eu")]
    response = logger.post("/v1/predictions", json=batch)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "features.income",
            "expected": "a number or null",
            "received": '"high"',
            "index": 1,
        }
    ]
    missing = logger.post("/v1/predictions", json={"model_id": model_id, "features": {}})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"model_version", "prediction"}


def test_unknown_model_is_404(logger: TestClient) -> None:
    response = logger.post("/v1/predictions", json=_prediction("no-such-model"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "model_version"


def test_feedback_is_validated_and_published(infra: VigilSettings) -> None:
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, FEEDBACK.name))
    prediction_id = uuid.uuid4().hex
    with TestClient(feedback_app(), headers=SESSION) as client:
        empty = client.post("/v1/feedback", json={"prediction_id": prediction_id})
        assert empty.status_code == 422
        assert "actual" in empty.json()["errors"][0]["expected"]
        ok = client.post(
            "/v1/feedback",
            json={
                "prediction_id": prediction_id,
                "actual": True,
                "flag": "incorrect",
                "reviewer": "tests",
                "comment": "good customer",
            },
        )
        assert ok.status_code == 200, ok.text
    messages = asyncio.run(
        read_from(
            infra.kafka_bootstrap,
            start,
            lambda ms: any(m.key == prediction_id.encode() for m in ms),
            10,
        )
    )
    (event,) = [
        Codec(FeedbackEvent).decode(m.value) for m in messages if m.key == prediction_id.encode()
    ]
    # The author is the key's principal (the session's admin key is "tests").
    assert (event.actual, event.flag, event.reviewer) == (True, "incorrect", "tests")


def test_a_reference_too_large_for_the_models_topic_is_413_and_the_version_unchanged(
    registry: TestClient,
) -> None:
    model_id = f"wide-{uuid.uuid4().hex[:8]}"
    assert registry.post("/v1/models", json=loan_model(model_id)).status_code == 201
    # 20,000 distinct long categories: a profile of ~2 MB, over Kafka's 1 MB message limit.
    rows = [{"income": 1.0, "region": f"{i:05d}" + "x" * 200} for i in range(20_000)]
    url = f"/v1/models/{model_id}/versions/1.0.0/reference"
    response = registry.post(url, json=rows)
    assert response.status_code == 413, response.text
    assert "model version record is over the limit of 1000000 bytes" in response.json()["detail"]
    assert registry.get(f"/v1/models/{model_id}/versions/1.0.0").json()["reference"] is None


def test_alerts_are_paged_newest_first_from_redis(infra: VigilSettings) -> None:
    async def run() -> tuple[list[list[str]], list[str]]:
        async with AsyncExitStack() as stack:
            store = await RedisAlertStore.open(stack, infra.redis_url, f"test:{uuid.uuid4().hex}")
            alerts = [_alert(n, "b" if n % 3 == 0 else "a") for n in range(25)]
            # Stored before the index existed: opening the store indexes them.
            await store.redis.hset(
                store._alerts, mapping={a.fingerprint: a.model_dump_json() for a in alerts[:5]}
            )
            await store.index_alerts()
            await store.save_alerts(alerts[5:])
            pages, position = [], 0
            while True:
                page = await store.alerts_page(position, 10)
                pages.append([a.fingerprint for a in page.alerts])
                if page.next_position is None:
                    break
                position = page.next_position
            b = await store.alerts_page(0, 100, model_id="b")
            await store.redis.delete(store._alerts, store._by_update)
            return pages, [a.fingerprint for a in b.alerts]

    pages, only_b = asyncio.run(run())
    newest = [f"fp-{n}" for n in range(24, -1, -1)]
    assert pages == [newest[:10], newest[10:20], newest[20:]]
    assert only_b == [f"fp-{n}" for n in range(24, -1, -1) if n % 3 == 0]


def test_the_alert_store_with_redis_down_raises_unavailable() -> None:
    async def run() -> None:
        redis = Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True)
        try:
            await RedisAlertStore(redis, "test:down").alerts_page(0, 10)
        finally:
            await redis.aclose()

    with pytest.raises(Unavailable, match="Redis is unavailable"):
        asyncio.run(run())


def _alert(n: int, model_id: str) -> Alert:
    return Alert.model_validate(
        {
            "fingerprint": f"fp-{n}",
            "status": "firing",
            "severity": "high",
            "model_id": model_id,
            "model_version": "1.0.0",
            "rule": "feature_drift",
            "feature": "income",
            "summary": "drift",
            "starts_at": T0,
            "updated_at": T0 + timedelta(seconds=n),
        }
    )


def test_concurrent_uploads_through_two_registry_replicas_get_consecutive_versions(
    registry: TestClient,
) -> None:
    """Two replicas (own Kafka clients, own catalogs) share only Kafka and Redis's locks."""
    model_id = f"replicas-{uuid.uuid4().hex[:8]}"
    assert registry.post("/v1/models", json=loan_model(model_id)).status_code == 201
    url = f"/v1/models/{model_id}/versions/1.0.0"
    rows = [{"income": float(i), "region": "eu" if i % 3 else "us"} for i in range(500)]
    with (
        TestClient(registry_app(), headers=SESSION) as a,
        TestClient(registry_app(), headers=SESSION) as b,
    ):
        stale = b.get(url).headers["etag"]
        with ThreadPoolExecutor(4) as pool:
            uploads = [pool.submit(r.post, f"{url}/reference", json=rows) for r in (a, b, a, b)]
            answers = [u.result() for u in uploads]
        assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
        assert sorted(r.json()["reference_version"] for r in answers) == [1, 2, 3, 4]
        latest = max(answers, key=lambda r: r.json()["reference_version"]).headers["etag"]
        assert a.get(url).headers["etag"] == latest == b.get(url).headers["etag"]
        refused = a.put(f"{url}/drift", json={"window_seconds": 120}, headers={"if-match": stale})
        assert (refused.status_code, refused.json()["errors"][0]["expected"]) == (412, latest)
        history = b.get(url).json()["reference_history"]
        assert [h["version"] for h in history] == [1, 2, 3, 4]


def test_a_registry_without_redis_serves_reads_and_refuses_updates_with_503(
    infra: VigilSettings, model_id: str
) -> None:
    settings = RegistrySettings(redis_url="redis://127.0.0.1:1/0")
    with TestClient(registry_app(settings), headers=SESSION) as replica:
        url = f"/v1/models/{model_id}/versions/1.0.0"
        assert replica.get(url).status_code == 200
        refused = replica.put(f"{url}/drift", json={"window_seconds": 120})
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")


def test_revision_locks_in_redis_are_freed_only_by_their_holder(infra: VigilSettings) -> None:
    async def run() -> None:
        redis = Redis.from_url(infra.redis_url)
        locks = RedisRevisionLocks(redis, f"test:locks:{uuid.uuid4().hex}")
        try:
            assert await locks.acquire("m/1", "mine", 5)
            assert not await locks.acquire("m/1", "theirs", 5)
            await locks.release("m/1", "theirs")  # not theirs to free
            assert not await locks.acquire("m/1", "theirs", 5)
            await locks.release("m/1", "mine")
            assert await locks.acquire("m/1", "theirs", 0.05)
            await asyncio.sleep(0.1)  # a holder that died: the lock expires
            assert await locks.acquire("m/1", "mine", 5)
            await locks.release("m/1", "mine")
        finally:
            await redis.aclose()

    asyncio.run(run())
