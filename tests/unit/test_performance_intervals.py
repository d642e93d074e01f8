"""Confidence intervals of a window's metrics: Wilson as scipy computes it, DeLong's standard
error from the score bins as from the scores themselves, and every interval covering the
population's value about 95 % of the time over simulated windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as sk

from vigil.performance import WindowPerformance, metric_intervals, realised_metrics, wilson
from vigil.performance.bins import SCORE_BINS, score_bin
from vigil.performance.intervals import delong_error

BINARY_METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "brier"]
TRIALS = 300


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (32, 40), (4000, 5000), (57, 57)])
def test_wilson_is_scipys_wilson_interval(k: int, n: int) -> None:
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert wilson(0, 0) is None


def _delong_variance(positive: np.ndarray, negative: np.ndarray) -> float:
    """DeLong's variance of the empirical AUC, from its structural components."""
    above = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    v10, v01 = above.mean(axis=1), above.mean(axis=0)
    return float(v10.var(ddof=1) / positive.size + v01.var(ddof=1) / negative.size)


@pytest.mark.parametrize(
    ("shift", "positives", "negatives"), [(1.0, 200, 300), (2.0, 60, 900), (2.0, 900, 60)]
)
def test_delong_from_the_score_bins_is_delong_on_the_scores(
    shift: float, positives: int, negatives: int
) -> None:
    rng = np.random.default_rng(11)
    pos = 1 / (1 + np.exp(-rng.normal(shift, 1.0, positives)))
    neg = 1 / (1 + np.exp(-rng.normal(0.0, 1.0, negatives)))
    bins = np.zeros((2, SCORE_BINS), dtype=np.int64)
    for row, scores in ((0, pos), (1, neg)):
        np.add.at(bins[row], [score_bin(s) for s in scores.tolist()], 1)
    exact = math.sqrt(_delong_variance(pos, neg))
    assert delong_error(bins[0], bins[1]) == pytest.approx(exact, rel=0.02)
    # Binned ties count half, as in the variance of the binned scores themselves.
    binned = math.sqrt(_delong_variance(*(np.floor(s * SCORE_BINS) for s in (pos, neg))))
    assert delong_error(bins[0], bins[1]) == pytest.approx(binned, rel=1e-9)


def test_delong_counts_ties_half() -> None:
    pos, neg = np.array([1.0, 2.0, 2.0]), np.array([0.0, 0.0, 1.0])
    exact = math.sqrt(_delong_variance(pos, neg))
    assert delong_error(np.array([0, 1, 2]), np.array([2, 1, 0])) == pytest.approx(exact)
    assert delong_error(np.array([0, 3]), np.array([0, 0])) == 0.0


def _binary_population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    actual = rng.random(n) < 0.3
    return actual, np.clip(rng.normal(0.35 + 0.3 * actual, 0.2), 0.0, 1.0)


def _binary_truth() -> dict[str, float]:
    actual, scores = _binary_population(np.random.default_rng(0), 1_000_000)
    predicted = scores >= 0.5
    return {
        "accuracy": float(np.mean(predicted == actual)),
        "precision": float(sk.precision_score(actual, predicted)),
        "recall": float(sk.recall_score(actual, predicted)),
        "f1": float(sk.f1_score(actual, predicted)),
        "roc_auc": float(sk.roc_auc_score(actual, scores)),
        "brier": float(np.mean((actual - scores) ** 2)),
    }


def test_binary_intervals_cover_the_population_value_95_percent_of_the_time() -> None:
    truth = _binary_truth()
    rng = np.random.default_rng(1)
    covered = dict.fromkeys(BINARY_METRICS, 0)
    for _ in range(TRIALS):
        actual, scores = _binary_population(rng, 400)
        window = WindowPerformance("binary")
        for a, s in zip(actual.tolist(), scores.tolist(), strict=True):
            window.add_prediction(s >= 0.5, s)
            window.add_outcome(s >= 0.5, s, a)
        intervals = metric_intervals(window)
        for name in BINARY_METRICS:
            low, high = intervals[name]
            covered[name] += low <= truth[name] <= high
    coverage = {name: hits / TRIALS for name, hits in covered.items()}
    assert all(0.90 <= c <= 0.99 for c in coverage.values()), str(coverage)


def test_regression_intervals_cover_the_population_value_95_percent_of_the_time() -> None:
    # Errors ~ N(1, 4): mean error 1, rmse sqrt(17), mae E|N(1, 4)|.
    mu, sigma = 1.0, 4.0
    mae = sigma * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * sigma**2)) + mu * math.erf(
        mu / (sigma * math.sqrt(2))
    )
    truth = {"mean_error": mu, "rmse": math.sqrt(mu**2 + sigma**2), "mae": mae}
    rng = np.random.default_rng(2)
    covered = dict.fromkeys(truth, 0)
    for _ in range(TRIALS):
        actual = rng.normal(50.0, 10.0, 200)
        predicted = actual + rng.normal(mu, sigma, 200)
        window = WindowPerformance("regression")
        for p, a in zip(predicted.tolist(), actual.tolist(), strict=True):
            window.add_outcome(p, None, a)
        intervals = metric_intervals(window)
        for name, value in truth.items():
            covered[name] += intervals[name][0] <= value <= intervals[name][1]
    coverage = {name: hits / TRIALS for name, hits in covered.items()}
    assert all(0.90 <= c <= 0.99 for c in coverage.values()), str(coverage)


def test_regression_means_use_the_sample_standard_error() -> None:
    rng = np.random.default_rng(3)
    errors = rng.normal(0.5, 2.0, 50)
    window = WindowPerformance("regression")
    for e in errors.tolist():
        window.add_outcome(10.0 + e, None, 10.0)
    intervals = metric_intervals(window)
    z = 1.959963984540054
    for name, sample in [("mean_error", errors), ("mae", np.abs(errors))]:
        half = z * sample.std(ddof=1) / math.sqrt(sample.size)
        assert intervals[name] == pytest.approx(
            (sample.mean() - half, sample.mean() + half), rel=1e-9
        )


def test_every_interval_holds_its_metric_and_unjudged_metrics_have_none() -> None:
    window = WindowPerformance("binary")
    for s, a in [(0.9, True), (0.8, False), (0.3, True), (0.1, False), (0.6, True)]:
        window.add_prediction(s >= 0.5, s)
        window.add_outcome(s >= 0.5, s, a)
    metrics = realised_metrics(window)
    intervals = metric_intervals(window)
    assert set(intervals) == set(metrics) - {"ece", "log_loss"}
    assert all(lo <= metrics[m] <= hi for m, (lo, hi) in intervals.items())
    classes = WindowPerformance("multiclass")
    for predicted, actual in [("a", "a"), ("b", "a"), ("c", "c")]:
        classes.add_outcome(predicted, None, actual)
    assert set(metric_intervals(classes)) == {"accuracy"}
    assert metric_intervals(WindowPerformance("regression")) == {}
