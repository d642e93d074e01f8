"""Confidence intervals of the largest gap and the smallest ratio between groups' rates.

A fairness measure compares k groups at once: a difference is the highest rate less the lowest
(the largest of the k(k-1)/2 pairwise differences), the disparate-impact ratio the lowest rate
over the highest (the smallest pairwise ratio). Its interval comes from the pairwise intervals:

- each group's rate gets a Wilson score interval at a level adjusted for the number of pairs m
  compared (Bonferroni: z is the 1 - 0.05 / (2m) normal quantile, 1.96 when two groups are
  compared), so that every pairwise interval holds at once with 95 % probability;
- the difference of a pair is given Newcombe's hybrid score interval (Newcombe 1998, method
  10) from its two Wilson intervals; the ratio of a pair its MOVER-R interval (Donner & Zou
  2012), the same construction for a ratio, which handles rates of 0 and whose interval of
  b / a is exactly the reciprocal of a / b's;
- when every pairwise interval holds, the largest difference lies between the largest lower
  bound and the largest upper bound of the pairs (taken both ways round), and the smallest
  ratio between the smallest lower and the smallest upper bound (at most 1).

Picking the two extreme groups' interval alone would hold less often than 95 % as groups are
added, since the extremes are partly extreme by chance; the adjustment is what keeps the alert
rule's false alarms rare whatever the number of groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from vigil.performance.intervals import Interval, wilson

__all__ = ["Rates", "largest_gap", "pair_z", "smallest_ratio"]

Floats = npt.NDArray[np.float64]
# Per group: the successes and the total of a rate (e.g. predicted positives and predictions).
Rates = Sequence[tuple[int, int]]


def pair_z(pairs: int) -> float:
    """The normal quantile that makes ``pairs`` two-sided intervals hold together at 95 %."""
    return NormalDist().inv_cdf(1 - 0.05 / (2 * max(pairs, 1)))


def _wilson_arrays(rates: Rates, z: float) -> tuple[Floats, Floats, Floats]:
    """Each rate's value and Wilson interval at ``z``, as arrays."""
    p, low, high = [], [], []
    for successes, n in rates:
        interval = wilson(successes, n, z)
        assert interval is not None, "a rate without a denominator was compared"
        p.append(successes / n)
        low.append(min(interval[0], successes / n))
        high.append(max(interval[1], successes / n))
    return np.array(p), np.array(low), np.array(high)


def _off_diagonal(k: int) -> npt.NDArray[np.bool_]:
    return ~np.eye(k, dtype=bool)


def largest_gap(families: Sequence[Rates]) -> Interval | None:
    """The 95 % interval of the largest difference between two groups' rates in any of the
    ``families`` (one per rate, e.g. true and false positive rates); None if no family has two
    groups."""
    families = [f for f in families if len(f) >= 2]
    if not families:
        return None
    z = pair_z(sum(len(f) * (len(f) - 1) // 2 for f in families))
    low, high = 0.0, 0.0
    for rates in families:
        p, lo, hi = _wilson_arrays(rates, z)
        # Rows are the minuend i, columns the subtrahend j: p_i - p_j.
        d = p[:, None] - p[None, :]
        lower = d - np.sqrt((p - lo)[:, None] ** 2 + (hi - p)[None, :] ** 2)
        upper = d + np.sqrt((hi - p)[:, None] ** 2 + (p - lo)[None, :] ** 2)
        off = _off_diagonal(len(p))
        low = max(low, float(lower[off].max()))
        high = max(high, float(upper[off].max()))
    return max(low, 0.0), min(high, 1.0)


def _mover_r(p: Floats, lo: Floats, hi: Floats) -> tuple[Floats, Floats]:
    """MOVER-R bounds of every ratio p_i / p_j (rows i, columns j); the upper bound is inf
    where the denominator's lower bound is 0."""
    b = p[:, None] * p[None, :]
    # Lower bound: the smaller root of u_j(2p_j - u_j) t^2 - 2 p_i p_j t + l_i(2p_i - l_i) = 0,
    # written as c / (b + sqrt(b^2 - a c)) so that it stays exact as a approaches 0.
    a = (hi * (2 * p - hi))[None, :]
    c = (lo * (2 * p - lo))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        root = b + np.sqrt(np.maximum(b * b - a * c, 0.0))
        lower = np.where(c > 0, c / np.where(root > 0, root, 1.0), 0.0)
        # Upper bound: the larger root of l_j(2p_j - l_j) t^2 - 2 p_i p_j t + u_i(2p_i - u_i).
        a2 = (lo * (2 * p - lo))[None, :]
        c2 = (hi * (2 * p - hi))[:, None]
        upper = np.where(a2 > 0, (b + np.sqrt(np.maximum(b * b - a2 * c2, 0.0))) / a2, math.inf)
    return lower, upper


def smallest_ratio(rates: Rates) -> Interval | None:
    """The 95 % interval of the lowest rate over the highest; None with fewer than two groups
    or when every rate is 0."""
    if len(rates) < 2 or not any(successes > 0 for successes, _ in rates):
        return None
    p, lo, hi = _wilson_arrays(rates, pair_z(len(rates) * (len(rates) - 1) // 2))
    lower, upper = _mover_r(p, lo, hi)
    off = _off_diagonal(len(p))
    return max(float(lower[off].min()), 0.0), min(float(upper[off].min()), 1.0)
