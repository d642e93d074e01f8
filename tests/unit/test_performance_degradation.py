"""Degradation: a metric degrades only when its whole 95 % interval is worse than the
reference's by more than the risk tier's tolerance, so a window of 40 labels with a drop does
not page and one of 5,000 with the same drop does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.performance import (
    TOLERANCES,
    WindowPerformance,
    degraded_metrics,
    metric_intervals,
    performance_report,
)
from vigil.performance.degradation import margin
from vigil.wire.records import Severity

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _accuracy_window(n: int, accuracy: float) -> WindowPerformance:
    """A binary window of ``n`` outcomes, ``accuracy`` of them right, half of each class."""
    window = WindowPerformance("binary")
    right = round(n * accuracy)
    for i in range(n):
        actual = i % 2 == 0
        predicted = actual if i < right else not actual
        score = 0.8 if predicted else 0.2
        window.add_prediction(predicted, score)
        window.add_outcome(predicted, score, actual)
    return window


def _report(window: WindowPerformance, reference: WindowPerformance, tier: Severity) -> list[str]:
    report = performance_report(
        window,
        model_id="m",
        model_version="1",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        revision=1,
        created_at=T0,
        reference=reference,
        tolerance=TOLERANCES[tier],
    )
    assert report.reference_metrics["accuracy"] == pytest.approx(0.9)
    assert report.metrics_low["accuracy"] < report.metrics["accuracy"]
    assert report.metrics["accuracy"] < report.metrics_high["accuracy"]
    return report.degraded


def test_forty_labels_with_a_drop_do_not_degrade_five_thousand_do() -> None:
    reference = _accuracy_window(10_000, 0.9)
    small, large = _accuracy_window(40, 0.8), _accuracy_window(5000, 0.8)
    assert small.labelled == 40 and large.labelled == 5000
    assert "accuracy" not in _report(small, reference, "high")
    assert "accuracy" in _report(large, reference, "high")
    # Within the tolerance of a looser tier, even 5,000 labels do not page.
    assert "accuracy" not in _report(large, reference, "low")


def test_each_tier_has_its_tolerance() -> None:
    assert TOLERANCES == {"low": 0.10, "medium": 0.07, "high": 0.05, "critical": 0.03}
    window = {"accuracy": (0.84, 0.86)}
    reference = {"accuracy": 0.9}
    assert [t for t in TOLERANCES if degraded_metrics(window, reference, TOLERANCES[t])] == [
        "critical"
    ]


def test_worse_is_higher_for_losses_and_errors() -> None:
    reference = {"brier": 0.10, "accuracy": 0.9, "log_loss": 0.3}
    # A higher brier is worse; a higher accuracy is not.
    intervals = {"brier": (0.17, 0.19), "accuracy": (0.95, 0.97)}
    assert degraded_metrics(intervals, reference, 0.05) == ["brier"]
    assert degraded_metrics({"brier": (0.14, 0.19)}, reference, 0.05) == []
    assert degraded_metrics({"brier": (0.01, 0.02)}, reference, 0.05) == []


def test_regression_errors_degrade_relative_to_the_reference() -> None:
    reference = {"mae": 20.0, "rmse": 25.0, "mean_error": -1.0}
    assert margin("mae", reference, 0.05) == pytest.approx(1.0)
    assert margin("mean_error", reference, 0.05) == pytest.approx(1.25)
    intervals = {"mae": (21.5, 23.0), "rmse": (25.5, 27.0), "mean_error": (-3.0, -2.5)}
    # mae: beyond 20 + 1; rmse: not beyond 25 + 1.25; |mean_error|: beyond 1 + 1.25.
    assert degraded_metrics(intervals, reference, 0.05) == ["mae", "mean_error"]
    # A bias whose interval reaches 0 on either side is not sure to have grown.
    assert degraded_metrics({"mean_error": (-4.0, 0.5)}, reference, 0.05) == []


def test_metrics_without_an_interval_or_a_reference_value_never_degrade() -> None:
    window = _accuracy_window(5000, 0.5)
    intervals = metric_intervals(window)
    assert "ece" not in intervals and "log_loss" not in intervals
    assert degraded_metrics(intervals, {"roc_auc": 0.99}, 0.03) == ["roc_auc"]
    assert degraded_metrics(intervals, {}, 0.03) == []


def test_a_report_without_a_tolerance_or_reference_judges_nothing() -> None:
    window = _accuracy_window(5000, 0.5)
    end = T0 + timedelta(hours=1)
    reference = _accuracy_window(5000, 0.9)
    no_tier = performance_report(
        window,
        model_id="m",
        model_version="1",
        window_start=T0,
        window_end=end,
        revision=1,
        created_at=T0,
        reference=reference,
    )
    assert no_tier.degraded == [] and no_tier.reference_metrics
    no_reference = performance_report(
        window,
        model_id="m",
        model_version="1",
        window_start=T0,
        window_end=end,
        revision=1,
        created_at=T0,
        tolerance=0.03,
    )
    assert no_reference.degraded == [] and no_reference.metrics_low
