"""CBPE: from scores alone, a binary window's estimated metrics land within the stated tolerance
of the realised ones (once its labels arrive), also when the scores shift away from the
reference and when the model is not calibrated (the fitted calibration corrects it)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from vigil.performance import (
    Calibration,
    WindowPerformance,
    calibration_of,
    estimated_metrics,
    expected_confusion,
    expected_value,
    realised_metrics,
    realised_value,
)
from vigil.performance.cbpe import _pool_adjacent_violators
from vigil.wire.performance import BusinessValue

WINDOW = 5000
TOLERANCE = 0.03  # any one window of 5,000 (cbpe's docstring)
MEAN_TOLERANCE = 0.015  # on average over windows: the reference's own noise stays
# Score distributions of the windows: the reference's (Beta(2, 2)), then shifted ones.
SHIFTS = [(2.0, 2.0), (2.0, 3.0), (3.0, 2.0), (1.0, 1.0), (1.5, 1.5)]
Truth = Callable[[np.ndarray], np.ndarray]
CALIBRATED: Truth = lambda s: s  # noqa: E731
OVERCONFIDENT: Truth = lambda s: s**2  # noqa: E731


def _window(scores: np.ndarray, labels: np.ndarray | None) -> WindowPerformance:
    window = WindowPerformance("binary")
    for i, score in enumerate(scores.tolist()):
        window.add_prediction(score >= 0.5, score)
        if labels is not None:
            window.add_outcome(score >= 0.5, score, bool(labels[i]))
    return window


def _calibration(truth: Truth) -> Calibration:
    rng = np.random.default_rng(0)
    reference = rng.beta(2, 2, 20_000)
    return Calibration.fit(reference, rng.random(reference.size) < truth(reference))


@pytest.mark.parametrize("truth", [CALIBRATED, OVERCONFIDENT], ids=["calibrated", "overconfident"])
def test_estimates_are_within_the_tolerance_of_the_realised_metrics(truth: Truth) -> None:
    calibration = _calibration(truth)
    errors: list[list[float]] = []
    for seed in range(15):
        rng = np.random.default_rng(100 + seed)
        scores = rng.beta(*SHIFTS[seed % len(SHIFTS)], WINDOW)
        labels = rng.random(WINDOW) < truth(scores)
        estimated = estimated_metrics(_window(scores, None), calibration)  # before the labels
        realised = realised_metrics(_window(scores, labels))
        assert set(estimated) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
        errors.append([abs(estimated[k] - realised[k]) for k in sorted(estimated)])
    assert np.max(errors) <= TOLERANCE
    assert np.mean(errors, axis=0).max() <= MEAN_TOLERANCE


def test_an_uncalibrated_model_is_misjudged_without_its_calibration() -> None:
    """The check above is not vacuous: taken at face value, overconfident scores mislead."""
    rng = np.random.default_rng(7)
    scores = rng.beta(2, 2, WINDOW)
    labels = rng.random(WINDOW) < OVERCONFIDENT(scores)
    window = _window(scores, labels)
    face_value = estimated_metrics(window, Calibration.identity())
    fitted = estimated_metrics(window, _calibration(OVERCONFIDENT))
    realised = realised_metrics(window)
    assert abs(face_value["precision"] - realised["precision"]) > 0.1
    assert abs(fitted["precision"] - realised["precision"]) <= TOLERANCE


def test_expected_value_is_close_to_the_realised_value() -> None:
    value = BusinessValue(true_positive=10.0, false_positive=-4.0, false_negative=-20.0)
    rng = np.random.default_rng(3)
    scores = rng.beta(2, 3, WINDOW)
    window = _window(scores, rng.random(WINDOW) < scores)
    expected = expected_value(expected_confusion(window, Calibration.identity()), value)
    realised = realised_value(window, value)
    assert expected == pytest.approx(realised, rel=0.05)


def test_expected_counts_add_up_to_the_scored_predictions() -> None:
    rng = np.random.default_rng(5)
    window = _window(rng.random(1000), None)
    window.add_prediction(True, None)  # no score: not estimated
    e = expected_confusion(window, Calibration.identity(), threshold=0.7)
    total = e.true_positive + e.false_positive + e.true_negative + e.false_negative
    assert total == pytest.approx(1000)
    # Predicted positive: scores at or above 0.7, about 30 % of uniform scores.
    assert e.true_positive + e.false_positive == pytest.approx(300, abs=60)


@pytest.mark.parametrize("seed", range(3))
def test_pool_adjacent_violators_is_isotonic_regression(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.random(300))
    y = (rng.random(300) < x).astype(float)
    w = rng.integers(1, 20, 300).astype(float)
    expected = IsotonicRegression().fit(x, y, sample_weight=w).predict(x)
    assert _pool_adjacent_violators(y, w) == pytest.approx(expected, abs=1e-12)


def test_calibration_is_non_decreasing_and_refuses_bad_reference_data() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(5000)
    calibration = Calibration.fit(scores, rng.random(5000) < scores**3)
    grid = calibration(np.linspace(0, 1, 101))
    assert np.all(np.diff(grid) >= 0)
    assert grid[0] < 0.05 and grid[-1] > 0.8
    with pytest.raises(ValueError, match="probabilities"):
        Calibration.fit([0.5, 1.5], [0, 1])
    with pytest.raises(ValueError, match="length"):
        Calibration.fit([], [])


def test_cbpe_is_for_binary_models_only() -> None:
    with pytest.raises(ValueError, match="binary"):
        estimated_metrics(WindowPerformance("regression"), Calibration.identity())
    assert estimated_metrics(WindowPerformance("binary"), Calibration.identity()) == {}


def test_a_calibration_fitted_on_a_reference_window_is_the_one_fitted_on_its_scores() -> None:
    rng = np.random.default_rng(4)
    scores = rng.beta(2, 2, 20_000)
    labels = rng.random(scores.size) < OVERCONFIDENT(scores)
    from_scores = Calibration.fit(scores, labels)
    from_window = Calibration.from_window(_window(scores, labels))
    grid = np.linspace(0, 1, 201)
    # The window knows each score to its bin (1/1000): the knots move by half a bin at most,
    # which moves the interpolated probabilities by a few thousandths where they rise steeply.
    assert from_window(grid) == pytest.approx(from_scores(grid), abs=5e-3)
    assert calibration_of(_window(scores, labels))(grid) == pytest.approx(from_window(grid))


def test_cbpe_calibrated_on_a_reference_window_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(8)
    reference_scores = rng.beta(2, 2, 20_000)
    reference = _window(reference_scores, rng.random(20_000) < OVERCONFIDENT(reference_scores))
    scores = rng.beta(2, 3, WINDOW)  # shifted away from the reference
    window = _window(scores, rng.random(WINDOW) < OVERCONFIDENT(scores))
    realised = realised_metrics(window)
    estimated = estimated_metrics(window, calibration_of(reference))
    assert max(abs(estimated[k] - realised[k]) for k in estimated) <= TOLERANCE
    face_value = estimated_metrics(window, calibration_of(None))
    assert abs(face_value["precision"] - realised["precision"]) > 0.1


def test_without_scored_reference_outcomes_the_scores_are_read_as_calibrated() -> None:
    unscored = WindowPerformance("binary")
    unscored.add_outcome(True, None, True)
    grid = np.linspace(0, 1, 11)
    for reference in (None, unscored, WindowPerformance("regression")):
        assert calibration_of(reference)(grid) == pytest.approx(grid)
    with pytest.raises(ValueError, match="no scored outcome"):
        Calibration.from_window(unscored)
    with pytest.raises(ValueError, match="binary"):
        Calibration.from_window(WindowPerformance("multiclass"))
