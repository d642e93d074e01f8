"""Reference performance on the real broker: the feedback joiner's reports set each window
beside its version's reference, with confidence intervals and the metrics that degraded.

One version is registered with a labelled reference (its rows carry ``actual``): its reports
carry that reference's metrics and value, CBPE calibrated on it, and a degraded accuracy on a
window whose labels say the model got worse. Another has no labelled reference: its first full
window (ended, labelled) becomes its reference, kept on the reporter's changelog."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import TopicPartition

from registry.handlers import reference_from_rows
from tests.kafka_tools import Message, partitions, private_copy, read_from
from tests.samples import FEEDBACK, MODEL, PREDICTION
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.performance import (
    Calibration,
    WindowPerformance,
    estimated_metrics,
    realised_metrics,
    value_per_prediction,
    window_of,
)
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformancePartial, PerformanceReport
from vigil.wire.records import FeedbackEvent, ModelVersion, PredictionEvent, utcnow
from vigil.wire.topics import FEEDBACK as FEEDBACK_TOPIC
from vigil.wire.topics import (
    JOINS,
    METRICS,
    MODELS,
    OUTCOMES,
    PERFORMANCE_PARTIALS,
    PERFORMANCE_WINDOWS,
    PREDICTIONS,
)

pytestmark = pytest.mark.integration

REPORTS = Codec(PerformanceReport)
Record = tuple[str, bytes]


async def _produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _everything(
    bootstrap: str, topic: str, done: Callable[[list[Message]], bool], seconds: float
) -> list[Message]:
    start = {TopicPartition(topic, p): 0 for p in await partitions(bootstrap, topic)}
    return await read_from(bootstrap, start, done, seconds)


def _latest(messages: list[Message]) -> dict[tuple[str, datetime], PerformanceReport]:
    """The last revision of each report, by (model, window start)."""
    latest: dict[tuple[str, datetime], PerformanceReport] = {}
    for m in messages:
        report = REPORTS.decode(m.value)
        key = (report.model_id, report.window_start)
        if key not in latest or report.revision > latest[key].revision:
            latest[key] = report
    return latest


def test_reports_carry_the_reference_and_what_degraded(
    infra: VigilSettings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    bootstrap = infra.kafka_bootstrap
    topics = {
        t.name: private_copy(bootstrap, t, run).name
        for t in (
            PREDICTIONS,
            FEEDBACK_TOPIC,
            OUTCOMES,
            JOINS,
            PERFORMANCE_PARTIALS,
            PERFORMANCE_WINDOWS,
            METRICS,
        )
    }
    rng = np.random.default_rng(4)
    # The labelled version: a reference of 4,000 rows whose outcomes are overconfident scores.
    base = MODEL.model_copy(update={"positive_label": None, "status": "champion"})
    labelled = base.model_copy(update={"model_id": f"labelled-{run}"})
    reference_scores = rng.random(4000)
    reference, errors = reference_from_rows(
        labelled,
        [{"income": 1000.0 + i, "region": "eu"} for i in range(4000)],
        utcnow(),
        predictions=(reference_scores >= 0.5).tolist(),
        scores=reference_scores.tolist(),
        actuals=(rng.random(4000) < reference_scores**2).tolist(),
    )
    assert errors == [] and reference is not None and reference.performance is not None
    labelled = labelled.model_copy(update={"reference": reference})
    outcomes = WindowPerformance.from_bytes(reference.performance)
    # The other version has a reference without outcomes: its first full window is taken.
    first = base.model_copy(update={"model_id": f"first-{run}"})
    assert first.reference is not None and first.reference.performance is None
    versions = Codec(ModelVersion)
    asyncio.run(
        _produce(bootstrap, MODELS.name, [(v.key, versions.encode(v)) for v in (labelled, first)])
    )

    now = utcnow()
    current, _ = window_of(now)
    earlier = current - timedelta(hours=2)
    predictions: list[Record] = []
    labels: list[Record] = []

    def predict(
        model: ModelVersion, pid: str, at: datetime, score: float, actual: bool | None
    ) -> None:
        event = PREDICTION.model_copy(
            update={
                "prediction_id": pid,
                "model_id": model.model_id,
                "model_version": model.version,
                "timestamp": at,
                "prediction": score >= 0.5,
                "score": score,
            }
        )
        predictions.append((pid, Codec(PredictionEvent).encode(event)))
        if actual is not None:
            label = FEEDBACK.model_copy(
                update={
                    "feedback_id": f"f-{pid}",
                    "prediction_id": pid,
                    "model_id": model.model_id,
                    "actual": actual,
                    "flag": None,
                    "timestamp": now,
                }
            )
            labels.append((pid, Codec(FeedbackEvent).encode(label)))

    # The labelled version's window: the model got worse, positives where it scored low.
    window = WindowPerformance("binary")
    scores = rng.random(3000)
    for i, score in enumerate(scores.tolist()):
        actual = bool(rng.random() < 1 - score) if i < 2500 else None
        predict(labelled, f"{run}-l-{i}", current, score, actual)
        window.add_prediction(score >= 0.5, score)
        if actual is not None:
            window.add_outcome(score >= 0.5, score, actual)
    # The other version: a full window two hours ago, right every time, then a bad one now.
    for i, score in enumerate(rng.random(300).tolist()):
        predict(first, f"{run}-e-{i}", earlier, score, score >= 0.5 if i < 200 else None)
    for i, score in enumerate(rng.random(1000).tolist()):
        predict(first, f"{run}-c-{i}", current, score, (score < 0.5) if i % 5 else score >= 0.5)

    env = {
        **os.environ,
        "VIGIL_JOINER_GROUP_ID": f"test-reference-{run}",
        "VIGIL_JOINER_WORKER_ID": "w1",
        "VIGIL_JOINER_SESSION_TIMEOUT_SECONDS": "10",  # a killed worker's partitions move soon
        "VIGIL_JOINER_STATE_DIR": str(tmp_path / "state"),
        "VIGIL_JOINER_PREDICTIONS_TOPIC": topics[PREDICTIONS.name],
        "VIGIL_JOINER_FEEDBACK_TOPIC": topics[FEEDBACK_TOPIC.name],
        "VIGIL_JOINER_OUTCOMES_TOPIC": topics[OUTCOMES.name],
        "VIGIL_JOINER_CHANGELOG_TOPIC": topics[JOINS.name],
        "VIGIL_JOINER_PARTIALS_TOPIC": topics[PERFORMANCE_PARTIALS.name],
        "VIGIL_JOINER_WINDOWS_TOPIC": topics[PERFORMANCE_WINDOWS.name],
        "VIGIL_JOINER_METRICS_TOPIC": topics[METRICS.name],
        "VIGIL_JOINER_REPORT_SECONDS": "0.5",
        "VIGIL_JOINER_FLUSH_SECONDS": "0.2",
    }
    log = tmp_path / "joiner.log"
    joiner = subprocess.Popen(
        [sys.executable, "-m", "feedback_joiner"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )

    def complete(messages: list[Message]) -> bool:
        latest = _latest(messages)
        mine = latest.get((labelled.model_id, current))
        theirs = latest.get((first.model_id, current))
        return (
            mine is not None
            and (mine.predictions, mine.labelled) == (3000, 2500)
            and theirs is not None
            and (theirs.predictions, theirs.labelled) == (1000, 1000)
            and theirs.reference_window_start is not None
        )

    try:
        asyncio.run(_produce(bootstrap, topics[PREDICTIONS.name], predictions))
        asyncio.run(_produce(bootstrap, topics[FEEDBACK_TOPIC.name], labels))
        messages = asyncio.run(_everything(bootstrap, topics[METRICS.name], complete, 90))
        windows = asyncio.run(
            _everything(bootstrap, topics[PERFORMANCE_WINDOWS.name], lambda ms: False, 2)
        )
    finally:
        joiner.terminate()
        joiner.wait(15)
    assert complete(messages), log.read_text(errors="replace")[-3000:]
    latest = _latest(messages)

    mine = latest[(labelled.model_id, current)]
    assert mine.reference_window_start is None
    assert mine.reference_metrics == pytest.approx(realised_metrics(outcomes))
    assert labelled.business_value is not None
    assert mine.reference_value_per_prediction == pytest.approx(
        value_per_prediction(outcomes, labelled.business_value)
    )
    # CBPE calibrated on the reference's outcomes (the scores are overconfident there).
    calibrated = estimated_metrics(window, Calibration.from_window(outcomes))
    assert mine.estimated == pytest.approx(calibrated)
    assert mine.estimated != pytest.approx(estimated_metrics(window, Calibration.identity()))
    assert mine.metrics == pytest.approx(realised_metrics(window))
    assert mine.metrics_low["accuracy"] < mine.metrics["accuracy"] < mine.metrics_high["accuracy"]
    assert "accuracy" in mine.degraded and "roc_auc" in mine.degraded

    theirs = latest[(first.model_id, current)]
    assert theirs.reference_window_start == earlier
    assert theirs.reference_metrics["accuracy"] == 1.0
    assert "accuracy" in theirs.degraded
    # The choice is on the changelog once; the labelled version needed none.
    chosen = [
        Codec(PerformancePartial).decode(m.value) for m in windows if m.key.endswith(b"/reference")
    ]
    assert [(c.model_id, c.window_start) for c in chosen] == [(first.model_id, earlier)]
