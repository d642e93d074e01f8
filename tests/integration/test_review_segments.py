"""Drifted segments in the review queue, on the real broker and Redis: a version declaring a
"region" segment gets a window whose report finds nothing drifted as a whole, while the income
of one region doubled; the queue's consumer judges the window group by group and offers that
region's predictions of the window, and only those, for the ``drifted`` reason."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from redis import Redis

from feedback.api import create_app
from feedback.config import Settings
from registry.api import create_app as registry_app
from tests.access import SESSION, api_key, bearer, publish_keys
from tests.kafka_tools import private_copy, publish_window
from tests.samples import REPORT
from vigil.adapters.settings import VigilSettings
from vigil.wire.records import PredictionEvent, utcnow
from vigil.wire.topics import METRICS, PREDICTIONS

RUN = uuid.uuid4().hex[:8]
MODEL = f"review-seg-{RUN}"
PREFIX = f"test:review-seg:{RUN}"
ANA, ANA_RECORD = api_key(f"ana-{RUN}", ["sme"], [MODEL])
EVENTS = 3000


def _until(check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.2)


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    regions = rng.choice(["eu", "us"], n)
    incomes = rng.lognormal(10, 0.3, n)
    return [{"income": float(i), "region": str(r)} for i, r in zip(incomes, regions, strict=True)]


def _register() -> None:
    model = {
        "model_id": MODEL,
        "version": "1",
        "task": "binary",
        "features": [
            {"name": "income", "type": "numeric"},
            {"name": "region", "type": "categorical"},
        ],
        "segments": [{"name": "region"}],
        "risk": {"probability": 1, "impact": 1},
        "owner": "tests",
    }
    with TestClient(registry_app(), headers=SESSION) as registry:
        registry.post("/v1/models", json=model).raise_for_status()
        reference = registry.post(
            f"/v1/models/{MODEL}/versions/1/reference", json=_rows(np.random.default_rng(1), 4000)
        )
        assert reference.status_code == 200, reference.text


def _events(start: datetime) -> list[PredictionEvent]:
    """A window of events a second apart: in "us" the income doubled; one event after it."""
    events = []
    for i, row in enumerate(_rows(np.random.default_rng(2), EVENTS + 1)):
        if row["region"] == "us":
            row["income"] = float(row["income"]) * 2  # type: ignore[arg-type]
        events.append(
            PredictionEvent(
                prediction_id=f"{MODEL}-{i}",
                model_id=MODEL,
                model_version="1",
                timestamp=start + timedelta(seconds=i),
                features=row,
                prediction=bool(i % 2),
                score=0.9,
            )
        )
    return events


async def _publish(
    bootstrap: str, predictions: Any, metrics: Any, events: list[PredictionEvent]
) -> None:
    start = events[0].timestamp
    report = REPORT.model_copy(  # nothing drifted in the window as a whole
        update={
            "report_id": f"{MODEL}/1/w",
            "model_id": MODEL,
            "model_version": "1",
            "window_start": start,
            "window_end": start + timedelta(seconds=EVENTS),
            "drifted_features": [],
            "features": [REPORT.features[0].model_copy(update={"drifted": False})],
        }
    )
    await publish_window(bootstrap, predictions, events, metrics, [report])


def test_the_predictions_of_a_drifted_group_are_offered_as_drifted(infra: VigilSettings) -> None:
    _register()
    asyncio.run(publish_keys(infra.kafka_bootstrap, ANA_RECORD))
    predictions = private_copy(infra.kafka_bootstrap, PREDICTIONS, RUN)
    metrics = private_copy(infra.kafka_bootstrap, METRICS, RUN)
    settings = Settings(
        feedback_review_redis_prefix=PREFIX,
        feedback_review_group_id=f"test-review-seg-{RUN}",
        feedback_review_auto_offset_reset="latest",
        feedback_review_predictions_topic=predictions.name,
        feedback_review_metrics_topic=metrics.name,
        feedback_review_flush_seconds=0.2,
        feedback_review_max_items=EVENTS + 1,
    )
    redis = Redis.from_url(infra.redis_url, decode_responses=True)
    key = f"{PREFIX}:{MODEL}:"
    with TestClient(create_app(settings)) as client:
        adapters = client.app.state.adapters  # type: ignore[attr-defined]
        _until(lambda: adapters.review.stage.ready)
        _until(lambda: adapters.catalog.get(MODEL, "1") is not None)  # it follows the registry
        events = _events(utcnow() - timedelta(hours=2))
        asyncio.run(_publish(infra.kafka_bootstrap, predictions, metrics, events))
        _until(lambda: redis.zcard(key + "drifted") > 0)
        windows = redis.hkeys(key + "windows")
        assert [w.rpartition("/")[2] for w in windows] == ["region=us"], windows
        us = {e.prediction_id for e in events[:EVENTS] if e.features["region"] == "us"}
        assert set(redis.zrange(key + "drifted", 0, -1)) == us
        answer = client.get(
            "/v1/review-queue",
            params={"model_id": MODEL, "limit": 20, "mix": "drifted=1"},
            headers=bearer(ANA),
        )
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        assert len(items) == 20
        for item in items:
            assert item["reason"] == "drifted" and item["segments"] == {"region": "us"}
            drift = item["drift"]
            assert (drift["segment"], drift["group"]) == ("region", "us")
            assert "income" in drift["drifted"]
            assert drift["window_start"] <= item["timestamp"] < drift["window_end"]
            assert item["prediction_id"] in us
    redis.close()
