"""Confidence-based performance estimation (CBPE) of a binary classifier, before its labels.

If the scores, once calibrated, are the probabilities of the positive class, a prediction of
score s is a true positive with probability p(s) when predicted positive (s >= threshold) and a
false positive with probability 1 - p(s); likewise a false or true negative below the
threshold. Adding these over a window's score histogram (every prediction, labelled or not)
gives the expected confusion counts, hence estimated accuracy, precision, recall and f1; the
expected positives and negatives per score bin give an estimated ROC AUC. ``Calibration`` maps
scores to p(s): isotonic regression (pool adjacent violators) fitted on labelled reference data,
binned in the window's score bins (``Calibration.fit`` on scores and labels,
``Calibration.from_window`` on the outcomes a reference window counted per score bin;
``calibration_of`` is the identity for a reference without scored outcomes). The idea is
NannyML's CBPE; the estimate holds while the calibration does (covariate shift: yes; concept
drift, where p(s) itself changes: no).

How close: CBPE estimates the expected value of a metric; the realised value of a window
scatters around it with the metric's own sampling noise, sd about 0.006 to 0.009 for windows of
5,000 (precision: sqrt(p (1 - p) / predicted positives)). On synthetic data (labels ~
Bernoulli(true probability), calibrated or not, scores shifted from the reference) with a
calibration fitted on 20,000 reference outcomes, every estimate of a window of 5,000 is within
0.03 of the realised value, and within 0.015 on average over windows: what remains is the
calibration's own error, shared by every window, which shrinks with a larger reference
(``tests/unit/test_performance_cbpe.py``). Both shrink as 1/sqrt(size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.bins import SCORE_BINS, Floats, roc_auc
from vigil.performance.metrics import classification_metrics

__all__ = [
    "Calibration",
    "ExpectedConfusion",
    "calibration_of",
    "estimated_metrics",
    "expected_confusion",
]

_MIDDLES = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS


def _pool_adjacent_violators(y: Floats, w: Floats) -> Floats:
    """The non-decreasing sequence closest to ``y`` in weighted least squares."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        means.append(value)
        weights.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] >= means[-1]:
            total = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / total
            weights[-2] = total
            sizes[-2] += sizes[-1]
            del means[-1], weights[-1], sizes[-1]
    return np.repeat(np.array(means), sizes)


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from scores to probabilities of the positive class: linear between
    the knots (``scores``, ``probabilities``), constant beyond them."""

    scores: Floats
    probabilities: Floats

    @classmethod
    def fit(
        cls, scores: npt.ArrayLike, labels: npt.ArrayLike, bins: int = SCORE_BINS
    ) -> Calibration:
        """Isotonic regression of ``labels`` (1: positive) on ``scores`` in [0, 1], grouped in
        ``bins`` equal-width score bins; ValueError without any labelled score.

        >>> c = Calibration.fit([0.1, 0.2, 0.3, 0.8], [0, 1, 0, 1], bins=10)
        >>> c([0.1, 0.25, 0.9]).round(2).tolist()
        [0.0, 0.5, 1.0]
        """
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        if s.size == 0 or s.shape != y.shape:
            raise ValueError(f"scores and labels of one equal, non-zero length; {s.shape, y.shape}")
        if not np.all((s >= 0) & (s <= 1)):
            raise ValueError("scores: probabilities in [0, 1] were expected")
        where = np.minimum((s * bins).astype(np.int64), bins - 1)
        count = np.bincount(where, minlength=bins).astype(np.float64)
        scores_sum = np.bincount(where, weights=s, minlength=bins).astype(np.float64)
        positives = np.bincount(where, weights=y, minlength=bins).astype(np.float64)
        return cls._isotonic(scores_sum, positives, count)

    @classmethod
    def from_window(cls, window: WindowPerformance) -> Calibration:
        """Isotonic regression of the outcomes a binary window counted per score bin (each at
        its bin's middle, within 1 / (2 SCORE_BINS) of its score); ValueError without any
        scored outcome.

        >>> w = WindowPerformance("binary")
        >>> for score, actual in [(0.1, 0), (0.2, 1), (0.3, 0), (0.8, 1)]:
        ...     w.add_outcome(score >= 0.5, score, actual)
        >>> Calibration.from_window(w)([0.1, 0.25, 0.9]).round(2).tolist()
        [0.0, 0.5, 1.0]
        """
        if window.binary is None:
            raise ValueError(f"a calibration is fitted on binary outcomes, not {window.task} ones")
        positives = window.binary.positives.astype(np.float64)
        count = positives + window.binary.negatives
        if not np.any(count > 0):
            raise ValueError("no scored outcome to fit a calibration on")
        return cls._isotonic(count * _MIDDLES, positives, count)

    @classmethod
    def _isotonic(cls, scores_sum: Floats, positives: Floats, count: Floats) -> Calibration:
        """The fit of bins' summed scores, positives and counts (bins without any left out)."""
        used = count > 0
        mean_score = scores_sum[used] / count[used]
        rate = positives[used] / count[used]
        return cls(mean_score, _pool_adjacent_violators(rate, count[used]))

    @classmethod
    def identity(cls) -> Calibration:
        """For scores that are calibrated probabilities already."""
        return cls(np.array([0.0, 1.0]), np.array([0.0, 1.0]))

    def __call__(self, scores: npt.ArrayLike) -> Floats:
        """Calibrated probabilities of ``scores``."""
        return np.interp(np.asarray(scores, dtype=np.float64), self.scores, self.probabilities)


def calibration_of(reference: WindowPerformance | None) -> Calibration:
    """The calibration fitted on a reference's scored outcomes (binary); the identity (scores
    read as calibrated probabilities) when there is no reference or it has none."""
    if reference is None or reference.binary is None:
        return Calibration.identity()
    if not (reference.binary.positives.any() or reference.binary.negatives.any()):
        return Calibration.identity()
    return Calibration.from_window(reference)


@dataclass(frozen=True)
class ExpectedConfusion:
    """Expected confusion counts of a window's scored predictions."""

    true_positive: float
    false_positive: float
    true_negative: float
    false_negative: float


def _expected(
    window: WindowPerformance, calibration: Calibration, threshold: float
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """Expected positives and negatives per score bin, and which bins are predicted positive."""
    if window.binary is None:
        raise ValueError(f"CBPE estimates binary classifiers, not a {window.task} one")
    counts = window.binary.scored.astype(np.float64)
    p = np.clip(calibration(_MIDDLES), 0.0, 1.0)
    return counts * p, counts * (1.0 - p), threshold <= _MIDDLES


def expected_confusion(
    window: WindowPerformance, calibration: Calibration, threshold: float = 0.5
) -> ExpectedConfusion:
    """Expected TP/FP/TN/FN of every scored prediction of a binary window, a prediction being
    positive when its score (bin middle) is at least ``threshold``."""
    positives, negatives, predicted = _expected(window, calibration, threshold)
    return ExpectedConfusion(
        true_positive=float(positives[predicted].sum()),
        false_positive=float(negatives[predicted].sum()),
        true_negative=float(negatives[~predicted].sum()),
        false_negative=float(positives[~predicted].sum()),
    )


def estimated_metrics(
    window: WindowPerformance, calibration: Calibration, threshold: float = 0.5
) -> dict[str, float]:
    """Estimated accuracy, precision, recall, f1 and roc_auc of a binary window (empty without
    scored predictions; no roc_auc if only one class is expected)."""
    e = expected_confusion(window, calibration, threshold)
    metrics = classification_metrics(
        e.true_positive, e.false_positive, e.true_negative, e.false_negative
    )
    positives, negatives, _ = _expected(window, calibration, threshold)
    auc = roc_auc(positives, negatives)
    if auc is not None and metrics:
        metrics["roc_auc"] = auc
    return metrics
