"""The comparison statistics agree with statsmodels, and the verdict needs significance."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from vigil.performance import comparison
from vigil.performance.comparison import (
    mcnemar,
    mean_difference,
    paired_mean_difference,
    two_proportions,
    verdict,
)

TABLES = [(80, 3, 12, 5), (500, 40, 41, 19), (10, 0, 0, 2), (0, 7, 1, 0), (900, 25, 60, 15)]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(comparison).failed == 0


@pytest.mark.parametrize("table", TABLES)
def test_mcnemar_is_statsmodels_exact_test(table: tuple[int, int, int, int]) -> None:
    both, first_only, second_only, neither = table
    ours = mcnemar(both, first_only, second_only, neither)
    theirs = sm_mcnemar([[both, first_only], [second_only, neither]], exact=True)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)
    n = sum(table)
    assert ours.difference == pytest.approx((second_only - first_only) / n)
    assert ours.second - ours.first == pytest.approx(ours.difference)
    assert ours.low <= ours.difference <= ours.high
    assert (ours.test, ours.n, ours.first_only, ours.second_only) == (
        "paired: mcnemar",
        n,
        first_only,
        second_only,
    )


def test_the_paired_interval_covers_the_true_difference_95_times_in_100() -> None:
    # Accuracies 0.85 and 0.88 on 300 shared requests, correlated: few discordant pairs.
    rng = np.random.default_rng(7)
    probabilities = [0.80, 0.05, 0.08, 0.07]  # both, first only, second only, neither
    truth = probabilities[2] - probabilities[1]
    covered = 0
    draws = 2000
    for table in rng.multinomial(300, probabilities, size=draws):
        d = mcnemar(*(int(x) for x in table))
        covered += d.low <= truth <= d.high
    assert 0.93 <= covered / draws <= 0.97


@pytest.mark.parametrize(
    "counts", [(880, 1000, 920, 1000), (45, 50, 30, 40), (3, 10, 9, 12), (100, 100, 95, 100)]
)
def test_two_proportions_are_statsmodels_newcombe_interval_and_z_test(
    counts: tuple[int, int, int, int],
) -> None:
    first, first_n, second, second_n = counts
    ours = two_proportions(first, first_n, second, second_n)
    low, high = confint_proportions_2indep(
        second, second_n, first, first_n, method="newcomb", compare="diff"
    )
    _, p_value = proportions_ztest([second, first], [second_n, first_n])
    assert (ours.low, ours.high) == pytest.approx((low, high), abs=1e-9)
    assert ours.p_value == pytest.approx(p_value, abs=1e-12)
    assert ours.difference == pytest.approx(second / second_n - first / first_n)
    assert ours.test == "unpaired: two-proportion z"
    assert "first_only" not in ours.as_dict()


def test_mean_differences_are_normal_intervals() -> None:
    unpaired = mean_difference((1.0, 4.0, 400), (1.5, 9.0, 100))
    error = np.sqrt(4.0 / 400 + 9.0 / 100)
    assert unpaired.high - unpaired.difference == pytest.approx(1.959963984540054 * error)
    first = [0.0, 1.0, 2.0, 3.0, 5.0]
    second = [1.0, 1.0, 4.0, 3.0, 8.0]
    paired = paired_mean_difference(first, second)
    diffs = np.subtract(second, first)
    assert paired.difference == pytest.approx(diffs.mean())
    spread = 1.959963984540054 * diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert (paired.low, paired.high) == pytest.approx(
        (diffs.mean() - spread, diffs.mean() + spread)
    )


def test_the_verdict_is_never_better_or_worse_without_significance() -> None:
    assert verdict(mcnemar(80, 3, 12, 5)) == "better"  # p = 0.035
    assert verdict(mcnemar(80, 12, 3, 5)) == "worse"
    assert verdict(mcnemar(80, 3, 8, 5)) == "no significant difference"  # p = 0.23
    assert verdict(mcnemar(100, 0, 0, 0)) == "no significant difference"
    assert verdict(two_proportions(88, 100, 92, 100)) == "no significant difference"
    assert verdict(two_proportions(920, 1000, 880, 1000)) == "worse"


def test_nothing_to_compare_is_refused() -> None:
    with pytest.raises(ValueError):
        mcnemar(0, 0, 0, 0)
    with pytest.raises(ValueError):
        two_proportions(0, 0, 5, 10)
    with pytest.raises(ValueError):
        paired_mean_difference([], [])
