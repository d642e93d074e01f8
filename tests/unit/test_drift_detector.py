"""Drift detection logic: windows, their closing, and the verdicts in their reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from drift_detector.handlers import DriftMonitor, WindowPolicy
from registry.handlers import ModelRegistration, new_version, with_reference
from vigil.schemas import ModelVersion, PredictionEvent, WindowReport

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLICY = WindowPolicy(
    size_seconds=60,
    lateness_seconds=10,
    idle_close_seconds=30,
    min_events=100,
    psi_threshold=0.2,
    reference_size=500,
)


def _version(reference: bool) -> ModelVersion:
    version = new_version(
        ModelRegistration.model_validate(
            {
                "model_id": "m",
                "version": "1",
                "task": "binary",
                "features": [
                    {"name": "a", "type": "numeric"},
                    {"name": "b", "type": "numeric"},
                    {"name": "c", "type": "categorical"},
                ],
                "risk": {"probability": 2, "impact": 2},
                "owner": "me",
            }
        ),
        T0,
    )
    if reference:
        version, _ = with_reference(version, _features(np.random.default_rng(0), 3000), T0)
    return version


def _features(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, object]]:
    return [
        {"a": float(a), "b": float(b), "c": str(c)}
        for a, b, c in zip(
            rng.normal(shift, 1, n), rng.exponential(1, n), rng.choice(["x", "y"], n), strict=True
        )
    ]


def _events(
    features: list[dict[str, object]], start: datetime, spacing: float
) -> list[PredictionEvent]:
    return [
        PredictionEvent(
            prediction_id=f"p{i}",
            model_id="m",
            model_version="1",
            timestamp=start + timedelta(seconds=i * spacing),
            features=f,
            prediction=1,
        )
        for i, f in enumerate(features)
    ]


def _close_all(monitor: DriftMonitor, now: float) -> list[WindowReport]:
    return list(monitor.due_reports(now, T0))


def test_only_the_shifted_feature_drifts() -> None:
    rng = np.random.default_rng(1)
    monitor = DriftMonitor(POLICY)
    version = _version(reference=True)
    monitor.observe(version, _events(_features(rng, 1000), T0, 0.05), now=0.0)
    monitor.observe(
        version, _events(_features(rng, 1000, shift=2.0), T0 + timedelta(seconds=60), 0.05), now=1.0
    )
    first, second = sorted(_close_all(monitor, now=100.0), key=lambda r: r.window_start)
    assert (first.event_count, first.drifted_features) == (1000, [])
    assert second.drifted_features == ["a"]
    assert second.window_start == T0 + timedelta(seconds=60)
    assert second.report_id == f"m/1/{int((T0 + timedelta(seconds=60)).timestamp() * 1e6)}"
    assert {f.feature: f.statistics["psi"] > 0.2 for f in second.features} == {
        "a": True,
        "b": False,
        "c": False,
    }


def test_a_window_closes_once_the_watermark_passes_its_end_plus_lateness() -> None:
    rng = np.random.default_rng(2)
    monitor = DriftMonitor(POLICY)
    version = _version(reference=True)
    monitor.observe(version, _events(_features(rng, 200), T0, 0.1), now=0.0)
    monitor.observe(version, _events(_features(rng, 1), T0 + timedelta(seconds=65), 1), now=0.0)
    assert _close_all(monitor, now=1.0) == []  # 65 s < 60 s + 10 s lateness
    monitor.observe(version, _events(_features(rng, 1), T0 + timedelta(seconds=71), 1), now=0.0)
    (report,) = _close_all(monitor, now=1.0)
    assert report.event_count == 200


def test_late_events_count_in_the_next_report_instead_of_being_lost() -> None:
    rng = np.random.default_rng(3)
    monitor = DriftMonitor(POLICY)
    version = _version(reference=True)
    monitor.observe(version, _events(_features(rng, 150), T0, 0.1), now=0.0)
    monitor.observe(version, _events(_features(rng, 150), T0 + timedelta(seconds=75), 0.1), now=0.0)
    (first,) = _close_all(monitor, now=1.0)
    monitor.observe(version, _events(_features(rng, 7), T0 + timedelta(seconds=5), 0.1), now=2.0)
    (second,) = _close_all(monitor, now=100.0)
    assert (first.event_count, second.event_count) == (150, 157)


def test_without_an_uploaded_reference_the_first_events_become_it() -> None:
    rng = np.random.default_rng(4)
    monitor = DriftMonitor(POLICY)
    version = _version(reference=False)
    monitor.observe(version, _events(_features(rng, 700), T0, 0.01), now=0.0)
    (report,) = _close_all(monitor, now=100.0)
    assert report.reference_source == "production"
    assert report.event_count == 200  # the first 500 built the reference
    assert report.drifted_features == []


def test_small_windows_report_statistics_but_no_verdict() -> None:
    monitor = DriftMonitor(POLICY)
    version = _version(reference=True)
    shifted = _features(np.random.default_rng(5), 50, shift=5.0)
    monitor.observe(version, _events(shifted, T0, 0.1), now=0.0)
    (report,) = _close_all(monitor, now=100.0)
    assert report.features[0].statistics["psi"] > 1
    assert report.drifted_features == []


def test_a_partition_read_ahead_of_the_others_closes_no_window_early() -> None:
    rng = np.random.default_rng(6)
    monitor = DriftMonitor(POLICY)
    version = _version(reference=True)
    first_minute = _events(_features(rng, 300), T0, 0.1)
    # Partition 1 has been read up to minute 3, partition 0 only to 0:30 of the first minute.
    ahead = _events(_features(rng, 10), T0 + timedelta(minutes=3), 1)
    monitor.observe(version, first_minute[:150] + ahead, 0.0, [0] * 150 + [1] * 10)
    assert _close_all(monitor, now=1.0) == []
    monitor.observe(version, first_minute[150:], 0.0, [0] * 150)  # partition 0 catches up
    monitor.observe(version, _events(_features(rng, 1), T0 + timedelta(seconds=75), 1), 0.0, [0])
    (report,) = _close_all(monitor, now=1.0)
    assert report.window_start == T0
    assert report.event_count == 300  # all of them, none pushed into a later window as late
