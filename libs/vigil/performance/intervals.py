"""95 % confidence intervals of a window's realised metrics, from the counts and sums it keeps.

- Proportions: the Wilson score interval (no continuity correction) of accuracy (n: the
  labelled outcomes), precision (n: the predicted positives), recall (n: the actual positives),
  base_rate (n: the labelled) and positive_rate (n: every prediction); multiclass accuracy
  likewise.
- f1: through the Jaccard index J = tp / (tp + fp + fn), the share of true positives among
  the outcomes that are not true negatives, hence a proportion; F1 = 2J / (1 + J) increases
  with J, so the Wilson interval of J maps to one of F1.
- roc_auc: a normal approximation with DeLong's standard error, computed exactly on the score
  bins (each positive's share of negatives below it, each negative's of positives above it),
  widened on each side by ``roc_auc_error_bound`` (what the bins themselves may be off by).
  The Hanley & McNeil (1982) formula, from the AUC and the class sizes alone, was off from
  DeLong's by -40 % to +50 % on binormal scores with one class 15 times the other; DeLong's
  needs no assumption on the scores' distribution.
- brier: a normal approximation of a mean; the spread of the per-outcome loss (in [0, 1]) is
  estimated from the score bins (each outcome at its bin's middle), the mean itself is exact.
- mae and mean_error: a normal approximation of a mean, the spread exact from the sums of the
  errors and of their squares.
- rmse: the normal interval of the mean squared error, the variance of a squared error taken
  as 2 v^2 + 4 m^2 v (errors assumed normally distributed, of mean m and variance v), then the
  square root.
- None for log_loss (one confidently wrong outcome, at a score of 0 or 1, costs 36: so heavy
  a tail that no normal interval holds for windows of hundreds), ece, r2 and the multiclass
  macro metrics (the counts kept do not give their spread).

Every interval is clipped to its metric's range, and holds the metric's value. The reference's
own sampling noise is not in them: they are of the window's metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.bins import SCORE_BINS, Counts, roc_auc, roc_auc_error_bound
from vigil.performance.counts import BinaryCounts, ClassCounts, ErrorSums
from vigil.performance.metrics import realised_metrics

__all__ = ["Z95", "Interval", "delong_error", "metric_intervals", "wilson"]

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
Interval = tuple[float, float]

_MIDDLES = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS


def wilson(successes: float, n: float, z: float = Z95) -> Interval | None:
    """The Wilson score interval of a proportion; None when ``n`` is 0.

    >>> [round(x, 4) for x in wilson(32, 40)]
    [0.6524, 0.895]
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def delong_error(positives: Counts, negatives: Counts) -> float:
    """DeLong's standard error of the ROC AUC of outcomes counted in ascending score bins (ties
    within a bin count half, as ``roc_auc``); 0 without both classes.

    >>> round(delong_error(np.array([0, 1, 2]), np.array([2, 1, 0])), 4)
    0.0786
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    p, q = float(pos.sum()), float(neg.sum())
    if p <= 0 or q <= 0:
        return 0.0
    # Per bin: a positive's share of negatives ranked below it, a negative's of positives above.
    below = (np.cumsum(neg) - 0.5 * neg) / q
    above = (np.cumsum(pos[::-1])[::-1] - 0.5 * pos) / p
    auc = float(pos @ below) / p
    s10 = float(pos @ (below - auc) ** 2) / max(p - 1, 1)
    s01 = float(neg @ (above - auc) ** 2) / max(q - 1, 1)
    return math.sqrt(s10 / p + s01 / q)


def _normal(value: float, error: float, low: float = -math.inf, high: float = math.inf) -> Interval:
    return max(value - Z95 * error, low), min(value + Z95 * error, high)


def _jaccard_f1(tp: float, others: float) -> Interval | None:
    j = wilson(tp, tp + others)
    return None if j is None else (2 * j[0] / (1 + j[0]), 2 * j[1] / (1 + j[1]))


def _brier(counts: BinaryCounts, brier: float, n: int) -> Interval:
    """The Brier score's interval, the spread of its per-outcome loss from the bins' middles."""
    positive_loss, negative_loss = (1 - _MIDDLES) ** 2, _MIDDLES**2
    positives, negatives = counts.positives, counts.negatives
    second = float(positives @ positive_loss**2 + negatives @ negative_loss**2) / n
    first = float(positives @ positive_loss + negatives @ negative_loss) / n
    return _normal(brier, math.sqrt(max(second - first * first, 0.0) / n), 0.0, 1.0)


def _binary(
    counts: BinaryCounts, predictions: int, metrics: dict[str, float]
) -> dict[str, Interval]:
    tp, fp, tn, fn = counts.confusion()
    found = {
        "accuracy": wilson(tp + tn, tp + fp + tn + fn),
        "precision": wilson(tp, tp + fp),
        "recall": wilson(tp, tp + fn),
        "f1": _jaccard_f1(tp, fp + fn),
        "base_rate": wilson(tp + fn, tp + fp + tn + fn),
        "positive_rate": wilson(int(counts.ints[counts.PREDICTED_POSITIVE]), predictions),
    }
    auc = roc_auc(counts.positives, counts.negatives)
    if auc is not None:
        spread = Z95 * delong_error(counts.positives, counts.negatives)
        spread += roc_auc_error_bound(counts.positives, counts.negatives)
        found["roc_auc"] = max(auc - spread, 0.0), min(auc + spread, 1.0)
    n = int(counts.positives.sum() + counts.negatives.sum())
    if n > 0 and "brier" in metrics:
        found["brier"] = _brier(counts, metrics["brier"], n)
    return {name: i for name, i in found.items() if i is not None and name in metrics}


def _multiclass(counts: ClassCounts) -> dict[str, Interval]:
    matrix = counts.matrix
    accuracy = wilson(float(np.trace(matrix)), float(matrix.sum()))
    return {} if accuracy is None else {"accuracy": accuracy}


def _regression(sums: ErrorSums, metrics: dict[str, float]) -> dict[str, Interval]:
    n = sums.count
    if n < 2:
        return {}
    mean, mae = metrics["mean_error"], metrics["mae"]
    mean_square = max(sums.sum(sums.ERROR2), 0.0) / n
    unbiased = n / (n - 1)
    variance = max(mean_square - mean * mean, 0.0) * unbiased
    spread = max(mean_square - mae * mae, 0.0) * unbiased
    squared = math.sqrt((2 * variance * variance + 4 * mean * mean * variance) / n)
    low, high = _normal(mean_square, squared, low=0.0)
    return {
        "mean_error": _normal(mean, math.sqrt(variance / n)),
        "mae": _normal(mae, math.sqrt(spread / n), low=0.0),
        "rmse": (math.sqrt(low), math.sqrt(high)),
    }


def metric_intervals(
    window: WindowPerformance, metrics: Mapping[str, float] | None = None
) -> dict[str, Interval]:
    """The 95 % interval of each of the window's realised metrics (``metrics``, if computed
    already) that has one (see the module), by name."""
    metrics = dict(realised_metrics(window) if metrics is None else metrics)
    if window.binary is not None:
        found = _binary(window.binary, window.predictions, metrics)
    elif window.classes is not None:
        found = _multiclass(window.classes) if "accuracy" in metrics else {}
    else:
        assert window.errors is not None
        found = _regression(window.errors, metrics) if "mean_error" in metrics else {}
    # Floating rounding must not leave the value just outside its own interval.
    return {
        name: (min(lo, metrics[name]), max(hi, metrics[name])) for name, (lo, hi) in found.items()
    }
