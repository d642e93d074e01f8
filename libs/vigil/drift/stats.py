"""Drift statistics, each a function of (reference counts, window counts) in the same bins.

Nothing here sees raw values: every statistic is computed from the mergeable summaries of
``vigil.drift.window`` (coarse bins, category counts, or the fine slots of a numeric
feature), so a window of any size costs the same to judge.

Fine slots (numeric features) are laid out over K sorted, distinct reference values ``e`` (the
fine edges): 2K+1 slots, where slot 2i counts the values strictly between ``e[i-1]`` and ``e[i]``
(``e[-1] = -inf``, ``e[K] = +inf``) and slot 2i+1 the values exactly equal to ``e[i]``; each slot
also carries the sum of its values.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.stats import kstwo

__all__ = [
    "PSI_FLOOR",
    "StatResult",
    "chi2",
    "js",
    "ks",
    "ks_pvalue",
    "psi",
    "wasserstein",
]

# Empty bins would make PSI infinite; proportions are floored at this share before the log.
PSI_FLOOR = 1e-4

Counts = npt.ArrayLike
Floats = npt.NDArray[np.float64]


class StatResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    pvalue: float


def _floats(values: Counts) -> Floats:
    return np.asarray(values, dtype=np.float64)


def psi(reference: Counts, window: Counts) -> float:
    """Population stability index of two count vectors over the same bins.

    ``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` with ``p``, ``q`` the reference's and the
    window's proportions (counts / total). Smoothing: each proportion is floored at
    ``PSI_FLOOR`` (1e-4) before the formula, so an empty bin on either side adds a large but
    finite term instead of an infinite one (the floored proportions are not renormalised).
    Natural logarithm. 0 when either side has no counts.

    Examples
    --------
    >>> round(psi([50, 30, 20], [30, 30, 40]), 4)
    0.2408
    >>> psi([50, 30, 20], [5, 3, 2])
    0.0
    """
    r = _floats(reference)
    w = _floats(window)
    if r.sum() == 0 or w.sum() == 0:
        return 0.0
    p = np.maximum(r / r.sum(), PSI_FLOOR)
    q = np.maximum(w / w.sum(), PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def js(reference: Counts, window: Counts) -> float:
    """Jensen-Shannon distance of two count vectors over the same bins.

    Exactly ``scipy.spatial.distance.jensenshannon(reference, window)``: both vectors are
    normalised to proportions ``p``, ``q``; with ``m = (p + q) / 2``,
    ``JS = sqrt((KL(p || m) + KL(q || m)) / 2)``, natural logarithm (so 0 <= JS <= sqrt(ln 2)),
    where ``KL(a || b) = sum a_i ln(a_i / b_i)`` over the bins with ``a_i > 0`` (no smoothing:
    an empty bin contributes 0). 0 when either side has no counts.

    Examples
    --------
    >>> round(js([50, 30, 20], [30, 30, 40]), 4)
    0.1721
    >>> round(js([1, 0], [0, 1]), 4)  # disjoint: the maximum, sqrt(ln 2)
    0.8326
    """
    r = _floats(reference)
    w = _floats(window)
    if r.sum() == 0 or w.sum() == 0:
        return 0.0
    p = r / r.sum()
    q = w / w.sum()
    m = (p + q) / 2.0
    divergence = float(np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m)))
    return math.sqrt(max(divergence, 0.0) / 2.0)


def chi2(reference: Counts, window: Counts) -> StatResult:
    """Pearson's chi-square test of homogeneity of two count vectors (categories + other).

    The 2 x k contingency table ``[reference, window]`` without its all-zero columns; with
    ``E = row total * column total / grand total``, the statistic is ``sum (O - E)^2 / E`` and
    the p-value the chi-square survival function at ``k - 1`` degrees of freedom, as
    ``scipy.stats.chi2_contingency(table, correction=False)`` computes them. No smoothing.
    (0, 1) when either side has no counts or fewer than two columns remain.

    Examples
    --------
    >>> result = chi2([50, 30, 20], [30, 30, 40])
    >>> round(result.statistic, 3), round(result.pvalue, 5)
    (11.667, 0.00293)
    >>> chi2([10, 0], [5, 0])
    StatResult(statistic=0.0, pvalue=1.0)
    """
    r = _floats(reference)
    w = _floats(window)
    keep = (r > 0) | (w > 0)
    r, w = r[keep], w[keep]
    total_r, total_w = r.sum(), w.sum()
    if r.size < 2 or total_r == 0 or total_w == 0:
        return StatResult(0.0, 1.0)
    columns = r + w
    total = total_r + total_w
    expected_r = columns * (total_r / total)
    expected_w = columns * (total_w / total)
    statistic = float(
        np.sum((r - expected_r) ** 2 / expected_r) + np.sum((w - expected_w) ** 2 / expected_w)
    )
    return StatResult(statistic, float(special.chdtrc(r.size - 1, statistic)))


KOLMOGOROV_FROM = 5_000


def ks_pvalue(statistic: float, n_reference: int, n_window: int) -> float:
    """Two-sided p-value of a two-sample Kolmogorov-Smirnov statistic.

    Exactly what ``scipy.stats.ks_2samp(..., method="asymp")`` returns:
    ``kstwo.sf(D, round(n * m / (n + m)))``, clipped to [0, 1]. scipy's default
    ``method="auto"`` would compute the exact distribution when both samples have at most
    10,000 values; the drift verdicts only need the p-value around ``ALPHA`` = 1e-3 with windows
    of hundreds of events or more, where the two agree closely, so the asymptotic form is used
    at every size. 1 when either sample is empty. Beyond ``KOLMOGOROV_FROM`` effective
    observations, where ``kstwo.sf`` takes milliseconds, its limit, Kolmogorov's distribution
    ``special.kolmogorov(D * sqrt(n_eff))``, is used: microseconds, and the same value to a few
    parts in a thousand there.

    Examples
    --------
    >>> round(ks_pvalue(0.05, 1000, 1000), 4)
    0.1587
    >>> ks_pvalue(0.3, 0, 10)
    1.0
    """
    if n_reference <= 0 or n_window <= 0:
        return 1.0
    m, n = float(max(n_reference, n_window)), float(min(n_reference, n_window))
    effective = round(m * n / (m + n))
    if effective < 1:
        return 1.0
    if effective > KOLMOGOROV_FROM:
        return float(np.clip(special.kolmogorov(statistic * math.sqrt(effective)), 0.0, 1.0))
    return float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))


def ks(reference: Counts, window: Counts) -> StatResult:
    """Two-sample Kolmogorov-Smirnov statistic and p-value from fine-slot counts.

    ``D = sup |F_ref - F_win|`` evaluated exactly at every fine edge from both sides: the
    cumulative sums of the 2K+1 slot counts give ``F(e_i-)`` (after slot 2i) and ``F(e_i)``
    (after slot 2i+1). Inside a gap both empirical CDFs are non-decreasing, so the true
    supremum (``scipy.stats.ks_2samp`` on the raw samples) exceeds this one by at most the
    reference mass strictly inside one gap: at most 1/120 with the fine edges of
    ``vigil.drift.reference`` (continuous data), 0 for data whose values are all fine edges (e.g.
    small integers). p-value: :func:`ks_pvalue`.

    Examples
    --------
    Values 1 and 2 as the fine edges; 40 % of the reference and 10 % of the window equal 1:

    >>> result = ks([0, 40, 0, 60, 0], [0, 10, 0, 90, 0])
    >>> round(result.statistic, 3), f"{result.pvalue:.2e}"
    (0.3, '1.74e-04')
    """
    r = _floats(reference)
    w = _floats(window)
    n_r, n_w = r.sum(), w.sum()
    if n_r == 0 or n_w == 0:
        return StatResult(0.0, 1.0)
    d = float(np.max(np.abs(np.cumsum(r) / n_r - np.cumsum(w) / n_w)))
    return StatResult(d, ks_pvalue(d, round(n_r), round(n_w)))


# Gauss-Legendre nodes and weights on [0, 1] for the within-gap integral of E|F_ref - F_win|.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)
_T = (_NODES + 1.0) / 2.0
_W = _WEIGHTS / 2.0
_U = _T * (1.0 - _T)
# The conditioned bridge at the nodes: mean = [D(a), D(b-), mean of D] @ _MEAN_SHAPE,
# sd = s * _SD_SHAPE.
_MEAN_SHAPE = np.vstack([1.0 - _T - 3.0 * _U, _T - 3.0 * _U, 6.0 * _U])
_SD_SHAPE = np.sqrt(_U - 3.0 * _U * _U)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)


def wasserstein(
    edges: npt.ArrayLike,
    reference_counts: Counts,
    reference_sums: Counts,
    window_counts: Counts,
    window_sums: Counts,
    window_extremes: npt.ArrayLike | None = None,
) -> float:
    """Wasserstein-1 distance ``integral |F_ref(x) - F_win(x)| dx`` from fine slots.

    Not scaled: divide by the reference's std for the reported statistic. 0 when either side
    has no values. With ``D = F_ref - F_win``:

    - The two open tails (below ``e[0]``, above ``e[K-1]``) are exact. The reference has no
      values there (its min and max are fine edges), so ``D`` keeps its sign and the integral
      is ``sum over the window values below e[0] of (e[0] - x) / n``, and the mirror image above.
    - Over each gap ``(a, b) = (e[i-1], e[i])`` the signed integral is exact from the slots:
      the integral of an empirical CDF over the gap is ``F(a) * (b - a) + (c * b - s) / n``,
      ``c`` and ``s`` the count and sum of the values strictly inside the gap. When ``D`` keeps
      its sign inside the gap, ``|integral of D|`` is the exact contribution.
    - When ``D`` may change sign inside a gap, the contribution is estimated:
      * if neither side has more than one value inside the gap, or one side has none (``D``
        is then monotone in the gap), each side's values are placed at their mean: exact
        for single values;
      * otherwise ``D`` is modelled as a Brownian bridge between its known end values
        ``D(a)`` and ``D(b-)``, conditioned on its known integral (mean
        ``lin(t) + 6 t (1 - t) (I - lin_avg)``, variance
        ``s2 (t (1 - t) - 3 t^2 (1 - t)^2)``, ``t = (x - a) / (b - a)``, with
        ``s2 = c_win / n_win^2 + c_ref / n_ref^2`` the variance of the interior values'
        empirical process), and the contribution is ``(b - a) * integral of E|D(t)| dt``
        (folded normal, 8-point Gauss-Legendre); it is never below ``|integral of D|``.

    Against ``scipy.stats.wasserstein_distance`` on the raw samples (reference 5,000-50,000
    values, windows 1,000-6,000, fine edges from ``vigil.drift.reference``): typically within 0.5 %,
    99th percentile about 1 % for normal and exponential data and 1.5-3 % for heavy-tailed
    (lognormal, Student-t df=2, Pareto 1.5) data; exact for integer-valued data.

    Examples
    --------
    Reference values 0, 1, 2 (the fine edges) against window values 1, 2, 3, as
    ``scipy.stats.wasserstein_distance([0, 1, 2], [1, 2, 3])``:

    >>> edges = [0.0, 1.0, 2.0]
    >>> reference_counts, reference_sums = [0, 1, 0, 1, 0, 1, 0], [0, 0, 0, 1, 0, 2, 0]
    >>> window_counts, window_sums = [0, 0, 0, 1, 0, 1, 1], [0, 0, 0, 1, 0, 2, 3]
    >>> wasserstein(edges, reference_counts, reference_sums, window_counts, window_sums)
    1.0
    """
    e = _floats(edges)
    cr, sr = _floats(reference_counts), _floats(reference_sums)
    cw, sw = _floats(window_counts), _floats(window_sums)
    n_r, n_w = cr.sum(), cw.sum()
    k = e.size
    if n_r == 0 or n_w == 0 or k == 0:
        return 0.0
    below = (cr[0] * e[0] - sr[0]) / n_r - (cw[0] * e[0] - sw[0]) / n_w
    above = (sw[-1] - cw[-1] * e[-1]) / n_w - (sr[-1] - cr[-1] * e[-1]) / n_r
    tails = abs(float(below)) + abs(float(above))
    if k == 1:
        return tails
    # Per gap i (between e[i-1] and e[i]): interior counts and sums of both sides.
    ir, iw = cr[2 : 2 * k : 2], cw[2 : 2 * k : 2]
    jr, jw = sr[2 : 2 * k : 2], sw[2 : 2 * k : 2]
    a, b = e[:-1], e[1:]
    width = b - a
    d_a = (np.cumsum(cr)[1::2] / n_r - np.cumsum(cw)[1::2] / n_w)[:-1]  # D right at a
    d_b = d_a + ir / n_r - iw / n_w  # D just below b
    signed = d_a * width + (ir * b - jr) / n_r - (iw * b - jw) / n_w
    contribution = np.abs(signed)
    # Point-mass estimate where one side has no interior value or neither has more than one.
    few = np.flatnonzero(((ir <= 1) & (iw <= 1)) | (ir == 0) | (iw == 0))
    if few.size:
        a_, b_, da_, db_ = a[few], b[few], d_a[few], d_b[few]
        ir_, iw_ = ir[few], iw[few]
        mr = np.divide(jr[few], ir_, out=a_.copy(), where=ir_ > 0)
        mw = np.divide(jw[few], iw_, out=a_.copy(), where=iw_ > 0)
        first, second = np.minimum(mr, mw), np.maximum(mr, mw)
        middle = np.where(mr <= mw, da_ + ir_ / n_r, da_ - iw_ / n_w)
        contribution[few] = (
            np.abs(da_) * (first - a_)
            + np.abs(middle) * (second - first)
            + np.abs(db_) * (b_ - second)
        )
    # Brownian-bridge estimate of the integral of |D| over the other gaps.
    rows = np.flatnonzero(((ir > 1) | (iw > 1)) & (ir > 0) & (iw > 0) & (width > 0))
    if rows.size:
        w_ = width[rows]
        ends = np.column_stack([d_a[rows], d_b[rows], signed[rows] / w_])
        mu = ends @ _MEAN_SHAPE
        sd = np.sqrt(iw[rows] / n_w**2 + ir[rows] / n_r**2)[:, None] * _SD_SHAPE
        z = mu / sd
        folded = sd * _SQRT_2_OVER_PI * np.exp(-0.5 * z * z) + mu * special.erf(z * _SQRT_HALF)
        contribution[rows] = np.maximum(w_ * (folded @ _W), contribution[rows])
    if window_extremes is not None:
        _exact_where_known(contribution, a, b, d_a, ir, iw, n_w, _floats(window_extremes))
    return float(np.sum(contribution)) + tails


def _exact_where_known(
    contribution: Floats,
    a: Floats,
    b: Floats,
    d_a: Floats,
    ir: Floats,
    iw: Floats,
    n_w: float,
    extremes: Floats,
) -> None:
    """Exact contributions of the gaps with no reference value inside and whose window values
    are all among the window's known extreme values (the long gaps of heavy tails): there
    ``F_ref`` is constant and ``F_win`` steps at known points."""
    known = np.sort(extremes[np.isfinite(extremes)])
    if known.size == 0:
        return
    # Gap of each known value (values on an edge are in no gap).
    gap = np.searchsorted(b, known, side="left")
    interior = (gap < b.size) & (known > a[np.minimum(gap, b.size - 1)])
    per_gap = np.bincount(gap[interior], minlength=b.size)
    for g in np.flatnonzero((ir == 0) & (iw > 0) & (per_gap == iw)):
        inside = known[interior & (gap == g)]
        points = np.concatenate([[a[g]], inside, [b[g]]])
        steps = d_a[g] - np.arange(inside.size + 1) / n_w
        contribution[g] = float(np.abs(steps) @ np.diff(points))
