"""Random predictions and outcomes for the performance tests, and windows filled with them the
way the streaming stage will: every prediction, then the outcomes, some first with a wrong label
that is corrected later (taken back with sign=-1, then added right)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.performance import WindowPerformance
from vigil.wire.performance import Task


@dataclass
class Outcomes:
    """Predictions (``scores`` may be None per row), and labels of the first ``labelled``."""

    predictions: list[Any]
    scores: list[float | None]
    actuals: list[Any]
    latencies: list[float | None]
    labelled: int


def binary(seed: int, n: int = 4000, base_rate: float = 0.3, spread: float = 0.2) -> Outcomes:
    """Scores of a decent, imperfect classifier (clipped, so some are exactly 0 or 1)."""
    rng = np.random.default_rng(seed)
    actual = rng.random(n) < base_rate
    scores = np.clip(rng.normal(0.35 + 0.3 * actual, spread), 0.0, 1.0)
    unlabelled = n // 5
    return Outcomes(
        predictions=(scores >= 0.5).tolist(),
        scores=scores.tolist(),
        actuals=actual.tolist(),
        latencies=rng.lognormal(6.0, 2.0, n).tolist(),
        labelled=n - unlabelled,
    )


def multiclass(seed: int, n: int = 3000) -> Outcomes:
    """Four imbalanced classes, right 60 % of the time, one label only ever predicted."""
    rng = np.random.default_rng(seed)
    classes = np.array(["cat", "dog", "bird", "fish"])
    actual = rng.choice(classes, n, p=[0.6, 0.25, 0.1, 0.05])
    wrong = rng.choice([*classes, "axolotl"], n)
    predicted = np.where(rng.random(n) < 0.6, actual, wrong)
    return Outcomes(predicted.tolist(), [None] * n, actual.tolist(), [None] * n, n - n // 10)


def regression(seed: int, n: int = 3000, level: float = 1e6) -> Outcomes:
    """Actual values around ``level`` (large: the variance must not cancel away)."""
    rng = np.random.default_rng(seed)
    actual = level + rng.normal(0.0, 10.0, n)
    predicted = actual + rng.normal(1.0, 4.0, n)
    return Outcomes(predicted.tolist(), [None] * n, actual.tolist(), [None] * n, n - n // 10)


def _wrong(task: Task, actual: Any) -> Any:
    if task == "binary":
        return not actual
    if task == "multiclass":
        return "wrong-" + actual
    return actual + 100.0


def fill(task: Task, data: Outcomes, seed: int = 0, corrections: float = 0.2) -> WindowPerformance:
    """A window of ``data``: every prediction, then the outcomes, a share of them first with a
    wrong label, corrected after the others."""
    window = WindowPerformance(task)
    for prediction, score in zip(data.predictions, data.scores, strict=True):
        window.add_prediction(prediction, score)
    rng = np.random.default_rng(seed)
    corrected = rng.random(data.labelled) < corrections
    for i in range(data.labelled):
        actual = _wrong(task, data.actuals[i]) if corrected[i] else data.actuals[i]
        window.add_outcome(data.predictions[i], data.scores[i], actual, data.latencies[i])
    for i in np.flatnonzero(corrected).tolist():
        p, s, lat = data.predictions[i], data.scores[i], data.latencies[i]
        window.add_outcome(p, s, _wrong(task, data.actuals[i]), lat, sign=-1)
        window.add_outcome(p, s, data.actuals[i], lat)
    return window
