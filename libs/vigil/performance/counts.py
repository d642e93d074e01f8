"""What a performance window keeps per task, in flat numpy arrays of fixed size (multiclass:
the square of the labels seen): counts that add and subtract exactly, and running sums.

``BinaryCounts``: the confusion counts, every prediction's score bin (for CBPE), the labelled
outcomes' positives and negatives per score bin (ROC AUC, ECE), and the sums of log loss,
squared error (Brier) and scores per ECE bin. ``ClassCounts``: a confusion matrix over a
vocabulary of labels that grows, up to ``MAX_CLASSES``. ``ErrorSums``: the sums regression
metrics need, about a shift (the first actual value) that keeps the variance accurate.
Each adds one event with a sign (+1, or -1 to take back what was added) and merges another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vigil.performance.bins import ECE_BINS, SCORE_BINS, Floats, Ints

__all__ = ["MAX_CLASSES", "BinaryCounts", "ClassCounts", "ErrorSums"]

# Labels a multiclass window tells apart (its matrix then takes 8 x 200 x 200 bytes); outcomes
# of further labels are counted in ClassCounts.overflow, outside the matrix.
MAX_CLASSES = 200
# sklearn's clipping of probabilities for log loss: float64's machine epsilon.
_EPS = float(np.finfo(np.float64).eps)
_PER_ECE_BIN = SCORE_BINS // ECE_BINS


class BinaryCounts:
    """A binary classifier's counts; scores are probabilities of the positive class."""

    PREDICTED_POSITIVE, TP, FP, TN, FN = range(5)
    _BINS = 5
    INTS = _BINS + 3 * SCORE_BINS
    LOG_LOSS, BRIER = range(2)
    FLOATS = 2 + ECE_BINS

    def __init__(self, ints: Ints | None = None, floats: Floats | None = None) -> None:
        self.ints = np.zeros(self.INTS, dtype="<i8") if ints is None else ints
        self.floats = np.zeros(self.FLOATS, dtype="<f8") if floats is None else floats
        b, s = self._BINS, SCORE_BINS
        self.scored = self.ints[b : b + s]  # every prediction with a score
        self.positives = self.ints[b + s : b + 2 * s]  # labelled, actually positive
        self.negatives = self.ints[b + 2 * s : b + 3 * s]
        self.ece_scores = self.floats[2:]  # sum of labelled scores per ECE bin

    def add_prediction(self, positive: bool, score_bin: int | None, sign: int) -> None:
        self.ints[self.PREDICTED_POSITIVE] += sign * positive
        if score_bin is not None:
            self.scored[score_bin] += sign

    def add_outcome(
        self, predicted: bool, actual: bool, score: float | None, score_bin: int | None, sign: int
    ) -> None:
        cell = (self.TP if actual else self.FP) if predicted else (self.FN if actual else self.TN)
        self.ints[cell] += sign
        if score is None or score_bin is None:
            return
        (self.positives if actual else self.negatives)[score_bin] += sign
        # As sklearn: the probability of the actual class, clipped to [eps, 1 - eps].
        p = min(max(score if actual else 1.0 - score, _EPS), 1.0 - _EPS)
        self.floats[self.LOG_LOSS] -= sign * math.log(p)
        self.floats[self.BRIER] += sign * (float(actual) - score) ** 2
        self.ece_scores[score_bin // _PER_ECE_BIN] += sign * score

    def add_outcomes(
        self, predicted: Sequence[bool], actual: Sequence[bool], scores: Sequence[float | None]
    ) -> None:
        """``add_outcome`` (sign +1) of each, in order: the same counts, and the same sums
        added in the same order."""
        cells = [
            (self.TP if a else self.FP) if p else (self.FN if a else self.TN)
            for p, a in zip(predicted, actual, strict=True)
        ]
        self.ints[: self._BINS] += np.bincount(cells, minlength=self._BINS)
        log_loss, brier = self.floats[: self.BRIER + 1].tolist()
        ece = self.ece_scores.tolist()
        positives: list[int] = []
        negatives: list[int] = []
        for a, score in zip(actual, scores, strict=True):
            if score is None:
                continue
            score_bin = min(int(score * SCORE_BINS), SCORE_BINS - 1)
            (positives if a else negatives).append(score_bin)
            p = min(max(score if a else 1.0 - score, _EPS), 1.0 - _EPS)
            log_loss -= math.log(p)
            brier += (float(a) - score) ** 2
            ece[score_bin // _PER_ECE_BIN] += score
        self.floats[self.LOG_LOSS] = log_loss
        self.floats[self.BRIER] = brier
        self.ece_scores[:] = ece
        for found, counts in ((positives, self.positives), (negatives, self.negatives)):
            if found:
                counts += np.bincount(found, minlength=SCORE_BINS)

    def merge(self, other: BinaryCounts) -> None:
        self.ints += other.ints
        self.floats += other.floats

    def confusion(self) -> tuple[int, int, int, int]:
        """True positives, false positives, true negatives, false negatives."""
        tp, fp, tn, fn = self.ints[self.TP : self.FN + 1].tolist()
        return tp, fp, tn, fn


class ClassCounts:
    """A confusion matrix (actual rows, predicted columns) over the labels seen, in order."""

    def __init__(self, labels: list[str] | None = None, ints: Ints | None = None) -> None:
        self.labels: list[str] = list(labels or [])
        k = len(self.labels)
        self.ints = np.zeros(1 + k * k, dtype="<i8") if ints is None else ints
        self._index = {label: i for i, label in enumerate(self.labels)}

    @property
    def matrix(self) -> Ints:
        k = len(self.labels)
        return self.ints[1:].reshape(k, k)

    @property
    def overflow(self) -> int:
        """Outcomes of a label beyond the first MAX_CLASSES, outside the matrix."""
        return int(self.ints[0])

    def _position(self, label: str) -> int | None:
        """The label's row and column, added if new; None when the vocabulary is full."""
        i = self._index.get(label)
        if i is None and len(self.labels) < MAX_CLASSES:
            k = len(self.labels)
            grown = np.zeros(1 + (k + 1) ** 2, dtype="<i8")
            grown[0] = self.ints[0]
            grown[1:].reshape(k + 1, k + 1)[:k, :k] = self.matrix
            self.ints = grown
            self.labels.append(label)
            i = self._index[label] = k
        return i

    def add_outcome(self, predicted: str, actual: str, sign: int) -> None:
        row, column = self._position(actual), self._position(predicted)
        if row is None or column is None:
            self.ints[0] += sign
        else:
            self.matrix[row, column] += sign

    def merge(self, other: ClassCounts) -> None:
        where = [self._position(label) for label in other.labels]
        kept = np.array([i is not None for i in where], dtype=bool)
        at = np.array([i for i in where if i is not None], dtype=np.int64)
        theirs = other.matrix
        self.matrix[np.ix_(at, at)] += theirs[np.ix_(kept, kept)]
        self.ints[0] += other.ints[0] + theirs.sum() - theirs[np.ix_(kept, kept)].sum()


class ErrorSums:
    """Sums over regression outcomes: of d = actual - shift and d², and of the error
    (prediction - actual), its absolute value and its square."""

    COUNT, HAS_SHIFT = range(2)
    INTS = 2
    SHIFT, D, D2, ERROR, ABS_ERROR, ERROR2 = range(6)
    FLOATS = 6

    def __init__(self, ints: Ints | None = None, floats: Floats | None = None) -> None:
        self.ints = np.zeros(self.INTS, dtype="<i8") if ints is None else ints
        self.floats = np.zeros(self.FLOATS, dtype="<f8") if floats is None else floats

    @property
    def count(self) -> int:
        return int(self.ints[self.COUNT])

    def sum(self, which: int) -> float:
        return float(self.floats[which])

    def add_outcome(self, predicted: float, actual: float, sign: int) -> None:
        if not self.ints[self.HAS_SHIFT]:
            self.ints[self.HAS_SHIFT] = 1
            self.floats[self.SHIFT] = actual
        d = actual - float(self.floats[self.SHIFT])
        error = predicted - actual
        self.ints[self.COUNT] += sign
        self.floats[self.D :] += sign * np.array([d, d * d, error, abs(error), error * error])

    def merge(self, other: ErrorSums) -> None:
        count = other.count
        self.ints[self.COUNT] += count
        if not other.ints[self.HAS_SHIFT]:
            return
        if not self.ints[self.HAS_SHIFT]:
            self.ints[self.HAS_SHIFT] = 1
            self.floats[self.SHIFT] = other.floats[self.SHIFT]
        # Their d is about their shift: move it to ours.
        delta = float(other.floats[self.SHIFT] - self.floats[self.SHIFT])
        d = other.sum(self.D)
        self.floats[self.D] += d + count * delta
        self.floats[self.D2] += other.sum(self.D2) + 2 * delta * d + count * delta * delta
        self.floats[self.ERROR :] += other.floats[self.ERROR :]
