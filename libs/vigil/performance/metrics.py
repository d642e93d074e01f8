"""Realised metrics of a performance window: what its labelled outcomes say about the model.

Binary: accuracy, precision, recall, f1 (0 where a denominator is 0, as scikit-learn's
``zero_division=0``), roc_auc (from the score bins, within ``roc_auc_error_bound``), log_loss
(probabilities clipped to [eps, 1 - eps] as scikit-learn does), brier, ece (10 equal-width
bins: the mean |mean score - positive share|, weighted by the bins' outcomes), positive_rate
(predicted positive share of every prediction) and base_rate (actual positive share of the
labelled). Multiclass: accuracy and macro-averaged precision, recall and f1 over the labels
that occur. Regression: mae, rmse, r2 (as scikit-learn: 1 when the actual values do not vary
and the predictions are exact, 0 when they are not) and mean_error (prediction - actual).
A metric a window cannot define (no outcomes, one class only for AUC, ...) is left out.
"""

from __future__ import annotations

import math

import numpy as np

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.bins import ECE_BINS, SCORE_BINS, roc_auc
from vigil.performance.counts import BinaryCounts, ClassCounts, ErrorSums
from vigil.wire.performance import ConfusionMatrix

__all__ = ["classification_metrics", "confusion_matrix", "realised_metrics"]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def classification_metrics(tp: float, fp: float, tn: float, fn: float) -> dict[str, float]:
    """Accuracy, precision, recall and f1 of binary confusion counts (empty if all are 0).

    >>> classification_metrics(8, 2, 5, 0)
    {'accuracy': 0.8666666666666667, 'precision': 0.8, 'recall': 1.0, 'f1': 0.8888888888888888}
    """
    n = tp + fp + tn + fn
    if n <= 0:
        return {}
    return {
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _binary(counts: BinaryCounts, predictions: int) -> dict[str, float]:
    tp, fp, tn, fn = counts.confusion()
    metrics = classification_metrics(tp, fp, tn, fn)
    if metrics:
        metrics["base_rate"] = (tp + fn) / (tp + fp + tn + fn)
    if predictions > 0:
        metrics["positive_rate"] = int(counts.ints[counts.PREDICTED_POSITIVE]) / predictions
    auc = roc_auc(counts.positives, counts.negatives)
    if auc is not None:
        metrics["roc_auc"] = auc
    positives = counts.positives.reshape(ECE_BINS, SCORE_BINS // ECE_BINS).sum(axis=1)
    scored = positives + counts.negatives.reshape(ECE_BINS, -1).sum(axis=1)
    n = int(scored.sum())
    if n > 0:
        metrics["log_loss"] = float(counts.floats[counts.LOG_LOSS]) / n
        metrics["brier"] = float(counts.floats[counts.BRIER]) / n
        metrics["ece"] = float(np.abs(counts.ece_scores - positives).sum()) / n
    return metrics


def _multiclass(counts: ClassCounts) -> dict[str, float]:
    matrix = counts.matrix.astype(np.float64)
    actual, predicted, right = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    n = float(actual.sum())
    if n <= 0:
        return {}
    occur = (actual != 0) | (predicted != 0)
    actual, predicted, right = actual[occur], predicted[occur], right[occur]
    precision = np.divide(right, predicted, out=np.zeros_like(right), where=predicted > 0)
    recall = np.divide(right, actual, out=np.zeros_like(right), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(right), where=both > 0)
    return {
        "accuracy": float(right.sum()) / n,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
    }


def _regression(sums: ErrorSums) -> dict[str, float]:
    n = sums.count
    if n <= 0:
        return {}
    squared = sums.sum(sums.ERROR2)
    metrics = {
        "mae": sums.sum(sums.ABS_ERROR) / n,
        "rmse": math.sqrt(max(squared, 0.0) / n),
        "mean_error": sums.sum(sums.ERROR) / n,
    }
    if n >= 2:
        d = sums.sum(sums.D)
        total = max(sums.sum(sums.D2) - d * d / n, 0.0)
        if squared == 0:
            metrics["r2"] = 1.0
        else:
            metrics["r2"] = 1.0 - squared / total if total > 0 else 0.0
    return metrics


def realised_metrics(window: WindowPerformance) -> dict[str, float]:
    """The window's realised metrics by name (see the module's docstring)."""
    if window.binary is not None:
        return _binary(window.binary, window.predictions)
    if window.classes is not None:
        return _multiclass(window.classes)
    assert window.errors is not None
    return _regression(window.errors)


def confusion_matrix(window: WindowPerformance) -> ConfusionMatrix:
    """Counts of outcomes by actual (rows) and predicted (columns) label: binary negative then
    positive; multiclass the labels that occur, sorted; regression none."""
    if window.binary is not None:
        tp, fp, tn, fn = window.binary.confusion()
        return ConfusionMatrix(labels=["negative", "positive"], rows=[[tn, fp], [fn, tp]])
    if window.classes is None:
        return ConfusionMatrix()
    counts = window.classes
    matrix = counts.matrix
    occur = [i for i in range(len(counts.labels)) if matrix[i].any() or matrix[:, i].any()]
    order = sorted(occur, key=lambda i: counts.labels[i])
    return ConfusionMatrix(
        labels=[counts.labels[i] for i in order],
        rows=matrix[np.ix_(order, order)].tolist(),
    )
