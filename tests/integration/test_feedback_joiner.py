"""The feedback joiner as a process on the real broker: labels before and after their
predictions, corrections, resends and orphans; killed with SIGKILL mid-stream and restarted on
an empty disk, it writes every outcome exactly once, and the window's PerformanceReport agrees
with scikit-learn on the final labels."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import TopicPartition
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from tests.kafka_tools import Message, end_offsets, partitions, private_copy, read_from
from tests.samples import FEEDBACK, MODEL, PREDICTION
from vigil.adapters.bus import new_producer
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import FeedbackEvent, ModelVersion, Outcome, PredictionEvent, utcnow
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

N = 3000


async def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


def _joiner(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "feedback_joiner"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_a_killed_joiner_writes_every_outcome_once(infra: VigilSettings, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {
        t.name: private_copy(infra.kafka_bootstrap, t, run).name
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
    model = MODEL.model_copy(
        update={"model_id": f"joined-{run}", "positive_label": None, "status": "champion"}
    )
    asyncio.run(
        _produce(
            infra.kafka_bootstrap, MODELS.name, [(model.key, Codec(ModelVersion).encode(model))]
        )
    )
    env = {
        **os.environ,
        "VIGIL_JOINER_GROUP_ID": f"test-joiner-{run}",
        "VIGIL_JOINER_WORKER_ID": "w1",
        "VIGIL_JOINER_SESSION_TIMEOUT_SECONDS": "10",  # a killed worker's partitions move soon
        "VIGIL_JOINER_STATE_DIR": str(tmp_path / "state-1"),
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
    now = utcnow().replace(minute=30, second=0, microsecond=0)  # mid-window
    ids = [f"{run}-{i}" for i in range(N)]
    rng = np.random.default_rng(3)
    scores = {pid: float(rng.random()) for pid in ids}

    def prediction(pid: str) -> tuple[str, bytes]:
        event = PREDICTION.model_copy(
            update={
                "prediction_id": pid,
                "model_id": model.model_id,
                "model_version": model.version,
                "timestamp": now,
                "prediction": scores[pid] > 0.5,
                "score": scores[pid],
            }
        )
        return pid, Codec(PredictionEvent).encode(event)

    def label(pid: str, fid: str, actual: bool, seconds: int) -> tuple[str, bytes]:
        event = FEEDBACK.model_copy(
            update={
                "prediction_id": pid,
                "feedback_id": fid,
                "model_id": model.model_id,
                "actual": actual,
                "flag": None,
                "timestamp": now + timedelta(seconds=seconds),
            }
        )
        return pid, Codec(FeedbackEvent).encode(event)

    early = [label(pid, f"early-{pid}", True, 0) for pid in ids[:500]]  # before predictions
    orphans = [label(f"{run}-ghost-{i}", f"ghost-{i}", True, 0) for i in range(50)]
    late = [label(pid, f"late-{pid}", False, 0) for pid in ids[500:2500]]
    fixes = [label(pid, f"fix-{pid}", True, 10) for pid in ids[500:800]]  # corrections
    resent = late[:200]  # the same feedback ids again
    start = asyncio.run(end_offsets(infra.kafka_bootstrap, topics[OUTCOMES.name]))
    log = tmp_path / "joiner.log"
    first = _joiner(env, log)
    try:
        asyncio.run(_produce(infra.kafka_bootstrap, topics[FEEDBACK_TOPIC.name], early + orphans))
        asyncio.run(
            _produce(infra.kafka_bootstrap, topics[PREDICTIONS.name], [prediction(p) for p in ids])
        )
        asyncio.run(_produce(infra.kafka_bootstrap, topics[FEEDBACK_TOPIC.name], late))
        # Kill it once it has written some outcomes, mid-stream.
        seen = asyncio.run(read_from(infra.kafka_bootstrap, start, lambda ms: len(ms) > 100, 60))
        assert seen, log.read_text(errors="replace")[-3000:]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        asyncio.run(_produce(infra.kafka_bootstrap, topics[FEEDBACK_TOPIC.name], fixes + resent))
        # A fresh machine: an empty state directory, the same group, the same worker id.
        second = _joiner({**env, "VIGIL_JOINER_STATE_DIR": str(tmp_path / "state-2")}, log)
        try:
            expected = 500 + 2000 + 300

            def complete(messages: list[Message]) -> bool:
                return len(messages) >= expected

            outcomes = asyncio.run(read_from(infra.kafka_bootstrap, start, complete, 120))
            time.sleep(2)
            more = asyncio.run(
                read_from(
                    infra.kafka_bootstrap,
                    {tp: _after(outcomes, tp, o) for tp, o in start.items()},
                    lambda ms: False,
                    3,
                )
            )
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
    decoded = [Codec(Outcome).decode(m.value) for m in [*outcomes, *more]]
    pairs = Counter((o.prediction.prediction_id, o.feedback.feedback_id) for o in decoded)
    assert max(pairs.values()) == 1, [p for p, n in pairs.items() if n > 1][:5]
    assert len(pairs) == 2800, log.read_text(errors="replace")[-3000:]
    corrections = [o for o in decoded if o.replaces is not None]
    assert len(corrections) == 300
    assert all(o.replaces and o.replaces.feedback_id.startswith("late-") for o in corrections)
    assert not any("ghost" in o.feedback.feedback_id for o in decoded)
    # The window's last revision counts every prediction and the final label of each.
    reports = asyncio.run(
        read_from(
            infra.kafka_bootstrap,
            asyncio.run(_starts(infra.kafka_bootstrap, topics[METRICS.name])),
            lambda ms: False,
            3,
        )
    )
    (report,) = _last_revisions(reports)
    final = {pid: True for pid in ids[:800]} | {pid: False for pid in ids[800:2500]}
    truth = [final[p] for p in final]
    predicted = [scores[p] > 0.5 for p in final]
    probabilities = [scores[p] for p in final]
    assert (report.predictions, report.labelled) == (N, 2500)
    # The 50 ghosts never met a prediction; the 500 early labels were taken back by theirs.
    assert report.orphaned == 50
    assert report.metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert report.metrics["precision"] == pytest.approx(precision_score(truth, predicted))
    assert report.metrics["recall"] == pytest.approx(recall_score(truth, predicted))
    assert report.metrics["f1"] == pytest.approx(f1_score(truth, predicted))
    assert abs(report.metrics["roc_auc"] - roc_auc_score(truth, probabilities)) < 0.005
    assert abs(report.metrics["log_loss"] - log_loss(truth, probabilities)) < 0.005
    # In business terms, from the registry's value of each outcome.
    value = model.business_value
    assert value is not None
    tn, fp, fn, tp = confusion_matrix(truth, predicted).ravel()
    worth = tp * value.true_positive + fp * value.false_positive + fn * value.false_negative
    assert report.value == pytest.approx(worth + tn * value.true_negative)
    assert report.currency == "EUR"


async def _starts(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    return {TopicPartition(topic, p): 0 for p in await partitions(bootstrap, topic)}


def _last_revisions(messages: list[Message]) -> list[PerformanceReport]:
    codec = Codec(PerformanceReport)
    latest: dict[str, PerformanceReport] = {}
    for m in messages:
        report = codec.decode(m.value)
        if report.revision > latest.get(report.report_id, report).revision or (
            report.report_id not in latest
        ):
            latest[report.report_id] = report
    return list(latest.values())


def _after(messages: list[Message], tp: TopicPartition, start: int) -> int:
    """The offset after the last of ``messages`` in ``tp`` (transaction markers take offsets
    too, so counting messages would not do)."""
    offsets = [m.offset for m in messages if (m.topic, m.partition) == (tp.topic, tp.partition)]
    return max(offsets) + 1 if offsets else start
