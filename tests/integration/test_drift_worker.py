"""Drift workers as processes on the real broker: restarts lose nothing, two workers act as one."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.drift_workers import DriftWorkers
from tests.kafka_tools import Message, end_offsets, is_traffic_report, read_from
from vigil.adapters.bus import new_producer, send_keyed
from vigil.adapters.settings import VigilSettings
from vigil.drift.reference import build_reference
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import (
    FeatureSpec,
    ModelVersion,
    PredictionEvent,
    RiskAssessment,
    TrafficReport,
    WindowReport,
)
from vigil.wire.topics import METRICS, MODELS

pytestmark = pytest.mark.integration
MINUTE = 60
SETTINGS = {
    "VIGIL_DRIFT_IDLE_CLOSE_SECONDS": "6",
    "VIGIL_DRIFT_LATENESS_SECONDS": "2",
    "VIGIL_DRIFT_FLUSH_SECONDS": "0.3",
    "VIGIL_DRIFT_TRAFFIC_SECONDS": "2",
}
SPEC = [
    FeatureSpec(name="income", type="numeric"),
    FeatureSpec(name="age", type="numeric"),
    FeatureSpec(name="tenure", type="numeric"),
    FeatureSpec(name="region", type="categorical"),
]


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, object]]:
    income = rng.lognormal(10.5, 0.4, n) * (1 + shift)
    age = rng.normal(42, 11, n)
    tenure = rng.integers(0, 30, n)
    region = rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.3, 0.2])
    return [
        {"income": float(i), "age": float(a), "tenure": int(t), "region": str(r)}
        for i, a, t, r in zip(income, age, tenure, region, strict=True)
    ]


async def _register(bootstrap: str, model_id: str) -> None:
    now = datetime.now(UTC)
    rng = np.random.default_rng(1)
    reference = build_reference(SPEC, _rows(rng, 5000), "uploaded", now)
    version = ModelVersion(
        model_id=model_id,
        version="1",
        task="binary",
        features=SPEC,
        owner="tests",
        risk=RiskAssessment(probability=4, impact=5, severity="critical"),
        reference=reference,
        created_at=now,
        updated_at=now,
    )
    producer = new_producer(bootstrap, "test-drift-register")
    await producer.start()
    try:
        await producer.send_and_wait(
            MODELS.name, key=version.key.encode(), value=Codec(ModelVersion).encode(version)
        )
    finally:
        await producer.stop()


def _events(
    model_id: str, rows: list[dict[str, object]], start: float, seconds: float
) -> list[PredictionEvent]:
    spacing = seconds / len(rows)
    return [
        PredictionEvent(
            prediction_id=uuid.uuid4().hex,
            model_id=model_id,
            model_version="1",
            timestamp=datetime.fromtimestamp(start + i * spacing, UTC),
            features=row,
            prediction=bool(i % 3 == 0),
            score=float((i % 100) / 100),
        )
        for i, row in enumerate(rows)
    ]


async def _produce(bootstrap: str, topic: str, events: list[PredictionEvent]) -> None:
    codec = Codec(PredictionEvent)
    producer = new_producer(bootstrap, "test-drift-events")
    await producer.start()
    try:
        messages = [(e.prediction_id.encode(), codec.encode(e)) for e in events]
        await send_keyed(producer, topic, messages)
    finally:
        await producer.stop()


def _reports(messages: list[Message], model_id: str) -> list[WindowReport]:
    """``model_id``'s window reports; traffic reports, and other tests' poison on the shared
    topic, are passed over."""
    codec = Codec(WindowReport)
    reports = []
    for m in messages:
        if is_traffic_report(m.value):
            continue
        with contextlib.suppress(DecodeError):
            reports.append(codec.decode(m.value))
    return [r for r in reports if r.model_id == model_id]


def _wait_reports(bootstrap: str, start: object, model_id: str, count: int) -> list[WindowReport]:
    messages = asyncio.run(
        read_from(
            bootstrap,
            start,  # type: ignore[arg-type]
            lambda ms: len(_reports(ms, model_id)) >= count,
            120,
        )
    )
    time.sleep(3)  # a duplicate, if there were one, would show up by now
    more = asyncio.run(read_from(bootstrap, start, lambda ms: False, 2))  # type: ignore[arg-type]
    assert len(_reports(more, model_id)) == len(_reports(messages, model_id))
    return _reports(more, model_id)


def _traffic(messages: list[Message], model_id: str) -> list[TrafficReport]:
    """``model_id``'s traffic reports (the drift detector's heartbeats)."""
    codec = Codec(TrafficReport)
    reports = [codec.decode(m.value) for m in messages if is_traffic_report(m.value)]
    return [r for r in reports if r.model_id == model_id]


def _wait_traffic(bootstrap: str, start: object, model_id: str, events: int) -> list[TrafficReport]:
    """``model_id``'s traffic reports once they count ``events``, and a few seconds more."""

    def enough(ms: list[Message]) -> bool:
        return sum(r.event_count for r in _traffic(ms, model_id)) >= events

    asyncio.run(read_from(bootstrap, start, enough, 60))  # type: ignore[arg-type]
    time.sleep(3)  # an interval counted twice, if there were one, would show up by now
    more = asyncio.run(read_from(bootstrap, start, lambda ms: False, 2))  # type: ignore[arg-type]
    return _traffic(more, model_id)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[DriftWorkers]:
    group = DriftWorkers(tmp_path, SETTINGS)
    try:
        yield group
    finally:
        group.stop()


def test_a_worker_killed_mid_window_loses_and_duplicates_nothing(
    infra: VigilSettings, workers: DriftWorkers
) -> None:
    bootstrap = infra.kafka_bootstrap
    model_id = f"kill9-{uuid.uuid4().hex[:8]}"
    asyncio.run(_register(bootstrap, model_id))
    workers.start("w0")
    workers.wait_ready("w0")
    metrics_start = asyncio.run(end_offsets(bootstrap, METRICS.name))
    rng = np.random.default_rng(2)
    window = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
    events = _events(model_id, _rows(rng, 12_000), window, 50)
    chunks = [events[i : i + 2000] for i in range(0, 12_000, 2000)]
    for i, chunk in enumerate(chunks):
        asyncio.run(_produce(bootstrap, workers.predictions, chunk))
        if i in (1, 3):  # killed twice, once at once and once after some flushes
            time.sleep(0.0 if i == 1 else 0.8)
            workers.kill("w0")
            workers.start("w0")
            workers.wait_ready("w0")
    (report,) = _wait_reports(bootstrap, metrics_start, model_id, 1)
    assert report.event_count == 12_000, workers.tail("w0")
    assert int(report.window_start.timestamp()) == int(window)
    assert {f.feature: f.count for f in report.features} == dict.fromkeys(
        ["income", "age", "tenure", "region"], 12_000
    )
    assert report.drifted_features == []


def test_two_workers_publish_the_same_reports_as_one(
    infra: VigilSettings, tmp_path: Path, workers: DriftWorkers
) -> None:
    bootstrap = infra.kafka_bootstrap
    model_id = f"scale-{uuid.uuid4().hex[:8]}"
    began = datetime.now(UTC)
    asyncio.run(_register(bootstrap, model_id))
    pair = DriftWorkers(tmp_path, SETTINGS, predictions=workers.predictions)
    try:
        workers.start("solo")
        pair.start("a")
        pair.start("b")
        for group, name in ((workers, "solo"), (pair, "a"), (pair, "b")):
            group.wait_ready(name)
        time.sleep(2)  # the pair's rebalance settles: each owns half the partitions
        metrics_start = asyncio.run(end_offsets(bootstrap, METRICS.name))
        rng = np.random.default_rng(3)
        window = (time.time() // MINUTE) * MINUTE - 10 * MINUTE
        events = _events(model_id, _rows(rng, 6000), window, 55) + _events(
            model_id, _rows(rng, 6000, shift=0.5), window + MINUTE, 55
        )
        asyncio.run(_produce(bootstrap, workers.predictions, events))
        reports = _wait_reports(bootstrap, metrics_start, model_id, 4)
        traffic = _wait_traffic(bootstrap, metrics_start, model_id, 2 * 12_000)
        shares = [pair.status(name)["prediction_partitions"] for name in ("a", "b")]
    finally:
        pair.stop()
    assert all(shares), shares  # both workers of the pair profiled predictions
    # Each group publishes each window once: two reports per window, equal but for created_at.
    windows: dict[str, list[WindowReport]] = {}
    for r in reports:
        windows.setdefault(r.report_id, []).append(r)
    assert len(windows) == 2
    for same in windows.values():
        first, second = same
        assert first.event_count == second.event_count == 6000
        assert first.drifted_features == second.drifted_features
        for a, b in zip(first.features, second.features, strict=True):
            assert a.statistics == pytest.approx(b.statistics, rel=1e-9, abs=1e-12)
            assert (a.count, a.missing, a.drifted) == (b.count, b.missing, b.drifted)
    shifted = windows[f"{model_id}/1/{int((window + MINUTE) * 1_000_000)}"][0]
    assert "income" in shifted.drifted_features
    # Heartbeats: each group counted every event once, over intervals of its wall clock (the
    # events are ten minutes old), and saw the newest event.
    assert sum(r.event_count for r in traffic) == 2 * 12_000, traffic
    for beat in traffic:
        assert began <= beat.window_start < beat.window_end <= datetime.now(UTC)
        assert beat.window_end - beat.window_start >= timedelta(seconds=1.9)
        start = (beat.window_start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        assert beat.report_id == f"{model_id}/1/traffic/{start}"
    newest = max(e.timestamp for e in events)
    assert max(b.last_event_time for b in traffic if b.last_event_time) == newest
