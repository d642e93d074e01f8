"""Realised metrics of a window match scikit-learn on the same outcomes: exactly where the
quantity is exact, within the stated bound for ROC AUC from score bins, also when labels were
corrected (taken back, then added right) and classes are imbalanced."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from tests.performance_data import binary, fill, multiclass, regression
from vigil.performance import (
    WindowPerformance,
    confusion_matrix,
    realised_metrics,
    roc_auc_error_bound,
)
from vigil.performance.bins import LATENCY_PER_DECADE

EXACT = {"rel": 1e-9, "abs": 1e-12}
SEEDS = [0, 1, 2, 3]
# Binary data sets: (seed, base rate, score spread): balanced-ish, imbalanced, rare positives.
BINARY = [(s, rate, 0.2) for s in SEEDS for rate in (0.3, 0.05)] + [(7, 0.01, 0.1)]


@pytest.mark.parametrize(("seed", "rate", "spread"), BINARY)
def test_binary_metrics_match_scikit_learn(seed: int, rate: float, spread: float) -> None:
    data = binary(seed, base_rate=rate, spread=spread)
    got = realised_metrics(fill("binary", data, seed))
    n = data.labelled
    y = np.array(data.actuals[:n], dtype=int)
    pred = np.array(data.predictions[:n], dtype=int)
    p = np.array(data.scores[:n], dtype=float)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred), **EXACT)
    assert got["precision"] == pytest.approx(sk.precision_score(y, pred, zero_division=0), **EXACT)
    assert got["recall"] == pytest.approx(sk.recall_score(y, pred, zero_division=0), **EXACT)
    assert got["f1"] == pytest.approx(sk.f1_score(y, pred, zero_division=0), **EXACT)
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, labels=[0, 1]), **EXACT)
    assert got["brier"] == pytest.approx(sk.brier_score_loss(y, p), **EXACT)
    assert got["base_rate"] == pytest.approx(y.mean(), **EXACT)
    assert got["positive_rate"] == pytest.approx(np.mean(data.predictions), **EXACT)
    assert got["ece"] == pytest.approx(_ece(y, p), **EXACT)
    assert abs(got["roc_auc"] - sk.roc_auc_score(y, p)) <= 0.005


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    """Expected calibration error over 10 equal-width bins, straight from the definition."""
    bins = np.minimum(np.floor(p * 10), 9)
    return sum(
        abs(p[bins == b].sum() - y[bins == b].sum()) for b in range(10) if (bins == b).any()
    ) / len(y)


def test_log_loss_clips_probabilities_as_scikit_learn_does() -> None:
    window = WindowPerformance("binary")
    y, p = [1, 0, 1, 0], [0.0, 1.0, 1.0, 0.0]  # two confidently wrong, two exactly right
    for actual, score in zip(y, p, strict=True):
        window.add_outcome(score >= 0.5, score, actual)
    assert realised_metrics(window)["log_loss"] == pytest.approx(sk.log_loss(y, p), **EXACT)


@pytest.mark.parametrize("seed", range(12))
def test_roc_auc_from_score_bins_is_within_its_bound_and_0_005(seed: int) -> None:
    """The bound (half the share of positive-negative pairs in one bin) holds for any data;
    for scores spread over [0, 1] it stays well under 0.005."""
    rate = [0.5, 0.2, 0.05, 0.01][seed % 4]
    data = binary(seed, n=5000, base_rate=rate, spread=[0.1, 0.2, 0.3][seed % 3])
    window = fill("binary", data, seed)
    n = data.labelled
    exact = sk.roc_auc_score(data.actuals[:n], data.scores[:n])
    assert window.binary is not None
    bound = roc_auc_error_bound(window.binary.positives, window.binary.negatives)
    error = abs(realised_metrics(window)["roc_auc"] - exact)
    assert error <= bound + 1e-12
    assert bound < 0.005
    assert error < 0.001  # measured: at most 1e-4 over 100 such windows


def test_roc_auc_bound_grows_when_scores_crowd_into_few_bins() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(4000) < 0.4
    p = 0.5 + rng.normal(0, 0.001, 4000) + 0.0005 * y  # all within a few bins
    window = WindowPerformance("binary")
    for actual, score in zip(y.tolist(), p.tolist(), strict=True):
        window.add_outcome(score >= 0.5, score, actual)
    assert window.binary is not None
    bound = roc_auc_error_bound(window.binary.positives, window.binary.negatives)
    assert bound > 0.05
    assert abs(realised_metrics(window)["roc_auc"] - sk.roc_auc_score(y, p)) <= bound


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_match_scikit_learn(seed: int) -> None:
    data = multiclass(seed)
    window = fill("multiclass", data, seed)
    got = realised_metrics(window)
    y, pred = data.actuals[: data.labelled], data.predictions[: data.labelled]
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred), **EXACT)
    for name, score in [
        ("macro_precision", sk.precision_score),
        ("macro_recall", sk.recall_score),
        ("macro_f1", sk.f1_score),
    ]:
        assert got[name] == pytest.approx(
            score(y, pred, average="macro", zero_division=0), **EXACT
        ), name
    matrix = confusion_matrix(window)
    assert matrix.labels == sorted(set(y) | set(pred))  # corrected-away labels are gone
    assert matrix.rows == sk.confusion_matrix(y, pred, labels=matrix.labels).tolist()
    assert "log_loss" not in got  # only the predicted class's confidence is known


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", [0.0, 1e6])
def test_regression_metrics_match_scikit_learn(seed: int, level: float) -> None:
    data = regression(seed, level=level)
    got = realised_metrics(fill("regression", data, seed))
    y, pred = data.actuals[: data.labelled], data.predictions[: data.labelled]
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, pred), **EXACT)
    assert got["rmse"] == pytest.approx(sk.root_mean_squared_error(y, pred), **EXACT)
    # Exact at 1e6 +- 10 too: the sums are kept about the first actual value.
    assert got["r2"] == pytest.approx(sk.r2_score(y, pred), **EXACT)
    assert got["mean_error"] == pytest.approx(np.mean(np.subtract(pred, y)), **EXACT)


@pytest.mark.parametrize(
    ("actual", "predicted"), [([3.0, 3.0, 3.0], [3.0, 3.0, 3.0]), ([3.0, 3.0], [3.0, 4.0])]
)
def test_r2_of_constant_actuals_is_scikit_learns(
    actual: list[float], predicted: list[float]
) -> None:
    window = WindowPerformance("regression")
    for y, p in zip(actual, predicted, strict=True):
        window.add_outcome(p, None, y)
    assert realised_metrics(window)["r2"] == sk.r2_score(actual, predicted)


def test_undefined_metrics_are_left_out() -> None:
    assert realised_metrics(WindowPerformance("binary")) == {}
    assert realised_metrics(WindowPerformance("multiclass")) == {}
    assert realised_metrics(WindowPerformance("regression")) == {}
    one_class = WindowPerformance("binary")
    one_class.add_prediction(True, 0.9)
    one_class.add_outcome(True, 0.9, True)
    got = realised_metrics(one_class)
    assert "roc_auc" not in got
    assert got["accuracy"] == 1.0
    single = WindowPerformance("regression")
    single.add_outcome(2.0, None, 1.0)
    assert "r2" not in realised_metrics(single)


def test_a_window_whose_outcomes_were_all_taken_back_is_empty_again() -> None:
    data = binary(5, n=500)
    window = fill("binary", data)
    for i in range(data.labelled):
        window.add_outcome(data.predictions[i], data.scores[i], data.actuals[i], sign=-1)
    got = realised_metrics(window)
    assert set(got) == {"positive_rate"}  # the predictions are still there
    assert window.labelled == 0


def test_label_latency_quantiles_are_within_the_histogram_resolution() -> None:
    data = binary(11, n=5000)
    window = fill("binary", data)
    latencies = np.array(data.latencies[: data.labelled])
    factor = 10 ** (1 / (2 * LATENCY_PER_DECADE))  # 2.9 %
    for q in (0.5, 0.95):
        exact = float(np.quantile(latencies, q, method="inverted_cdf"))
        got = window.label_latency(q)
        assert got is not None
        assert exact / factor <= got <= exact * factor
    assert WindowPerformance("binary").label_latency(0.5) is None
