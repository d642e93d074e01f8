"""The fixed bins the performance accumulators count in, and what is read from them.

Scores (probabilities of the positive class) fall in ``SCORE_BINS`` equal-width bins on [0, 1];
ROC AUC from them counts a positive and a negative in the same bin as half a correctly ordered
pair, so it is off from the exact value by at most :func:`roc_auc_error_bound` (the share of
pairs that share a bin, halved). Calibration error (ECE) uses ``ECE_BINS`` groups of
``SCORE_BINS // ECE_BINS`` of them. Label latencies fall in log-spaced bins,
``LATENCY_PER_DECADE`` per factor of 10 from ``LATENCY_MIN`` to ``LATENCY_MAX`` seconds, so a
quantile is known to within a factor of ``10 ** (1 / (2 * LATENCY_PER_DECADE))`` (2.9 %).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "ECE_BINS",
    "LATENCY_BINS",
    "LATENCY_MAX",
    "LATENCY_MIN",
    "LATENCY_PER_DECADE",
    "SCORE_BINS",
    "Counts",
    "Floats",
    "Ints",
    "latency_bin",
    "latency_quantile",
    "roc_auc",
    "roc_auc_error_bound",
    "score_bin",
]

SCORE_BINS = 1000
ECE_BINS = 10
LATENCY_PER_DECADE = 40
LATENCY_MIN = 1e-3  # seconds; below, the first bin (reported as 0)
LATENCY_MAX = 1e8  # seconds (3 years); at or above, the last bin (reported as LATENCY_MAX)
_DECADES = round(math.log10(LATENCY_MAX / LATENCY_MIN))
LATENCY_BINS = _DECADES * LATENCY_PER_DECADE + 2

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
# Counts per bin: integer counts, or expected (fractional) ones.
Counts = Ints | Floats


def score_bin(score: float) -> int:
    """The bin of a probability; ValueError if it is not in [0, 1].

    >>> score_bin(0.0), score_bin(0.4999), score_bin(1.0)
    (0, 499, 999)
    """
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score: a probability in [0, 1] was expected, received {score!r}")
    return min(int(score * SCORE_BINS), SCORE_BINS - 1)


def roc_auc(positives: Counts, negatives: Counts) -> float | None:
    """ROC AUC of scores counted in ascending bins (ties within a bin count half); None without
    both classes.

    >>> roc_auc(np.array([0, 1, 2]), np.array([2, 1, 0]))
    0.9444444444444444
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    p, n = float(pos.sum()), float(neg.sum())
    if p <= 0 or n <= 0:
        return None
    above = np.cumsum(pos[::-1])[::-1] - pos  # positives in higher bins
    return float(neg @ (above + 0.5 * pos) / (p * n))


def roc_auc_error_bound(positives: Counts, negatives: Counts) -> float:
    """How far :func:`roc_auc` of these bins can be from the exact AUC of the scores binned:
    the share of positive-negative pairs within one bin, halved.

    >>> roc_auc_error_bound(np.array([0, 1, 2]), np.array([2, 1, 0]))
    0.05555555555555555
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    p, n = float(pos.sum()), float(neg.sum())
    return float(pos @ neg / (2 * p * n)) if p > 0 and n > 0 else 0.0


def latency_bin(seconds: float) -> int:
    """The log-spaced bin of a label latency (negative ones, clock skew, count as 0).

    >>> latency_bin(0.0), latency_bin(1.0), latency_bin(1e9) == LATENCY_BINS - 1
    (0, 121, True)
    """
    if not seconds >= LATENCY_MIN:  # also NaN
        return 0
    k = math.floor(LATENCY_PER_DECADE * math.log10(seconds / LATENCY_MIN)) + 1
    return min(k, LATENCY_BINS - 1)


def latency_quantile(counts: Ints, q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of latencies counted in bins: the geometric middle of
    the bin of the ceil(q * n)-th smallest; None when none are counted.

    >>> counts = np.zeros(LATENCY_BINS, dtype=np.int64)
    >>> counts[[latency_bin(2.0), latency_bin(60.0)]] = 1
    >>> round(latency_quantile(counts, 0.5), 2), round(latency_quantile(counts, 0.95), 1)
    (2.05, 61.3)
    """
    n = int(counts.sum())
    if n <= 0:
        return None
    rank = max(math.ceil(q * n), 1)
    k = int(np.searchsorted(np.cumsum(counts), rank))
    if k == 0:
        return 0.0
    if k >= LATENCY_BINS - 1:
        return LATENCY_MAX
    return LATENCY_MIN * 10 ** ((k - 0.5) / LATENCY_PER_DECADE)
