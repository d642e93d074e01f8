"""Is one model version better than another? Differences of accuracy (and of business value)
with a 95 % interval, a two-sided p-value and a verdict. Pure computation, no I/O.

- Paired (both versions scored the same requests, e.g. a shadow beside the champion):
  McNemar's exact test on the discordant pairs — ``first_only`` requests only the first version
  got right, ``second_only`` only the second — a two-sided binomial test of
  ``min(first_only, second_only)`` out of their sum at one half (statsmodels' ``mcnemar`` with
  ``exact=True``). The difference of accuracy, second minus first, is
  ``(second_only - first_only) / n`` over the ``n`` shared labelled requests; its interval is
  Bonett & Price's (2012) adjusted Wald interval (one success added to each discordant cell),
  whose coverage stays near 95 % even with few discordant pairs, where the plain Wald's does not.
- Unpaired (different traffic, e.g. a challenger on a share of it): the two-proportion z test
  with the pooled proportion (statsmodels' ``proportions_ztest``) and Newcombe's hybrid score
  interval from the two Wilson intervals (statsmodels' ``confint_proportions_2indep`` with
  ``method="newcomb"``).
- Business value per labelled outcome: a normal interval of a difference of means (paired: the
  mean of the per-request differences; unpaired: Welch's standard error) and its z p-value.

The verdict is never ``better`` without significance: ``better`` when p < ``ALPHA`` and the
difference favours the second version, ``worse`` when p < ``ALPHA`` and it favours the first,
else ``no significant difference``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import stats

from vigil.performance.intervals import Z95, wilson

__all__ = [
    "ALPHA",
    "Difference",
    "Verdict",
    "mcnemar",
    "mean_difference",
    "paired_mean_difference",
    "two_proportions",
    "verdict",
]

ALPHA = 0.05
Verdict = Literal["better", "worse", "no significant difference"]


@dataclass(frozen=True)
class Difference:
    """Second minus first: the difference, its 95 % interval, the two-sided p-value, the test."""

    test: str
    n: int
    first: float
    second: float
    difference: float
    low: float
    high: float
    p_value: float
    first_only: int | None = None  # paired: discordant requests only the first got right
    second_only: int | None = None  # … only the second got right

    def as_dict(self) -> dict[str, Any]:
        """As the API answers it (the discordant counts only for a paired test)."""
        found = asdict(self)
        if self.first_only is None:
            del found["first_only"], found["second_only"]
        return found


def _two_sided_normal(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z)))


def _holding(value: float, low: float, high: float, lo: float, hi: float) -> tuple[float, float]:
    """The interval clipped to [lo, hi], widened (for rounding) to hold its value."""
    return min(max(low, lo), value), max(min(high, hi), value)


def mcnemar(both: int, first_only: int, second_only: int, neither: int) -> Difference:
    """Paired accuracies of two versions on the same ``n`` labelled requests: McNemar's exact
    test and Bonett-Price's interval of the difference (second minus first).

    >>> d = mcnemar(80, 3, 12, 5)
    >>> round(d.difference, 2), round(d.p_value, 4)
    (0.09, 0.0352)
    """
    n = both + first_only + second_only + neither
    if n <= 0:
        raise ValueError("no shared labelled request")
    discordant = first_only + second_only
    if discordant == 0:
        p_value = 1.0
    else:
        tail = stats.binom.cdf(min(first_only, second_only), discordant, 0.5)
        p_value = float(min(1.0, 2 * tail))
    difference = (second_only - first_only) / n
    # Bonett & Price (2012): one success added to each discordant cell, two to n.
    p12, p21 = (first_only + 1) / (n + 2), (second_only + 1) / (n + 2)
    adjusted = p21 - p12
    error = math.sqrt(max(p12 + p21 - adjusted * adjusted, 0.0) / (n + 2))
    low, high = _holding(difference, adjusted - Z95 * error, adjusted + Z95 * error, -1.0, 1.0)
    return Difference(
        "paired: mcnemar",
        n,
        (both + first_only) / n,
        (both + second_only) / n,
        difference,
        low,
        high,
        p_value,
        first_only,
        second_only,
    )


def two_proportions(first: int, first_n: int, second: int, second_n: int) -> Difference:
    """Unpaired proportions (successes of ``n`` each): the pooled two-proportion z test and
    Newcombe's hybrid score interval of the difference (second minus first).

    >>> d = two_proportions(880, 1000, 920, 1000)
    >>> round(d.difference, 2), round(d.low, 4), round(d.p_value, 4)
    (0.04, 0.0137, 0.0029)
    """
    w1, w2 = wilson(first, first_n), wilson(second, second_n)
    if w1 is None or w2 is None:
        raise ValueError("each version needs labelled outcomes")
    p1, p2 = first / first_n, second / second_n
    difference = p2 - p1
    low = difference - math.sqrt((p2 - w2[0]) ** 2 + (w1[1] - p1) ** 2)
    high = difference + math.sqrt((w2[1] - p2) ** 2 + (p1 - w1[0]) ** 2)
    pooled = (first + second) / (first_n + second_n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / first_n + 1 / second_n))
    p_value = 1.0 if spread == 0 else _two_sided_normal(difference / spread)
    low, high = _holding(difference, low, high, -1.0, 1.0)
    return Difference(
        "unpaired: two-proportion z", first_n + second_n, p1, p2, difference, low, high, p_value
    )


def _normal_difference(test: str, n: int, first: float, second: float, error: float) -> Difference:
    difference = second - first
    if error == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = _two_sided_normal(difference / error)
    spread = Z95 * error
    return Difference(
        test, n, first, second, difference, difference - spread, difference + spread, p_value
    )


def mean_difference(
    first: tuple[float, float, int], second: tuple[float, float, int]
) -> Difference:
    """Unpaired means, each given as (mean, variance, n): Welch's normal interval and z test.

    >>> round(mean_difference((1.0, 4.0, 400), (1.5, 4.0, 400)).p_value, 4)
    0.0004
    """
    (m1, v1, n1), (m2, v2, n2) = first, second
    if n1 <= 0 or n2 <= 0:
        raise ValueError("each version needs labelled outcomes")
    error = math.sqrt(max(v1, 0.0) / n1 + max(v2, 0.0) / n2)
    return _normal_difference("unpaired: welch z", n1 + n2, m1, m2, error)


def paired_mean_difference(first: Sequence[float], second: Sequence[float]) -> Difference:
    """Paired values (one per shared request, in the same order): the normal interval of their
    mean difference and its z test (n in the hundreds; a t test for a handful would be wider).

    >>> round(paired_mean_difference([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]).difference, 4)
    1.0
    """
    n = len(first)
    if n == 0 or len(second) != n:
        raise ValueError("paired values: as many of each, at least one")
    diffs = [b - a for a, b in zip(first, second, strict=True)]
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return _normal_difference(
        "paired: z", n, sum(first) / n, sum(second) / n, math.sqrt(variance / n)
    )


def verdict(difference: Difference, alpha: float = ALPHA, lower_is_better: bool = False) -> Verdict:
    """``better`` (the second version) or ``worse`` only with p < ``alpha``; for an error such
    as the mean absolute error (``lower_is_better``) a negative difference is the better one.

    >>> verdict(two_proportions(880, 1000, 920, 1000)), verdict(two_proportions(88, 100, 92, 100))
    ('better', 'no significant difference')
    >>> verdict(mean_difference((2.0, 1.0, 400), (1.5, 1.0, 400)), lower_is_better=True)
    'better'
    """
    if difference.p_value >= alpha or difference.difference == 0:
        return "no significant difference"
    return "better" if (difference.difference > 0) != lower_is_better else "worse"
