"""The intervals of the fairness measures and the verdicts drawn from them: Newcombe's published
intervals, MOVER-R's bounds as the roots they are defined by, coverage of about 95 % or more
over simulated windows whatever the number of groups, and alerts only for groups large enough
and evidence strong enough."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from vigil.fairness import (
    DEMOGRAPHIC_PARITY,
    DISPARATE_IMPACT,
    EQUAL_OPPORTUNITY,
    EQUALIZED_ODDS,
    MEASURES,
    OTHER,
    FairnessTolerances,
    GroupCounts,
    fairness_metrics,
)
from vigil.fairness.intervals import largest_gap, pair_z, smallest_ratio
from vigil.performance import wilson


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [((56, 70), (48, 80), (0.0524, 0.3339)), ((9, 10), (3, 10), (0.1705, 0.8090))],
)
def test_two_groups_gap_is_newcombes_hybrid_score_interval(
    a: tuple[int, int], b: tuple[int, int], expected: tuple[float, float]
) -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10.
    assert largest_gap([[a, b]]) == pytest.approx(expected, abs=5e-5)
    assert largest_gap([[b, a]]) == largest_gap([[a, b]])
    assert pair_z(1) == pytest.approx(1.959963984540054)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(12, 20, 30, 40), (3, 50, 40, 41), (0, 9, 5, 7)]
)
def test_two_groups_ratio_bounds_solve_the_mover_r_equations(
    x1: int, n1: int, x2: int, n2: int
) -> None:
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)  # type: ignore[misc]

    def lower(t: float) -> float:
        return (p1 - t * p2) ** 2 - (p1 - l1) ** 2 - t * t * (u2 - p2) ** 2

    def upper(t: float) -> float:
        return (p1 - t * p2) ** 2 - (u1 - p1) ** 2 - t * t * (p2 - l2) ** 2

    ratio = p1 / p2
    expected_low = 0.0 if x1 == 0 else brentq(lower, 0.0, ratio)
    expected_high = min(brentq(upper, ratio, 100.0), 1.0)
    assert smallest_ratio([(x1, n1), (x2, n2)]) == pytest.approx(
        (expected_low, expected_high), abs=1e-9
    )


@pytest.mark.parametrize(
    "rates", [[0.3, 0.4], [0.1, 0.1], [0.3] * 6, [0.05, 0.2, 0.2, 0.6], [0.5, 0.45, 0.4]]
)
def test_intervals_cover_the_populations_measures(rates: list[float]) -> None:
    rng = np.random.default_rng(5)
    p = np.array(rates)
    n, trials, gaps, ratios = 60, 400, 0, 0
    for _ in range(trials):
        drawn = [(int(x), n) for x in rng.binomial(n, p)]
        low, high = largest_gap([drawn])  # type: ignore[misc]
        gaps += low <= p.max() - p.min() <= high
        ratio = smallest_ratio(drawn)
        ratios += ratio is None or ratio[0] <= p.min() / p.max() <= ratio[1]
    assert gaps / trials >= 0.93 and ratios / trials >= 0.93


def _window(spec: dict[str, tuple[int, float, float, float]]) -> GroupCounts:
    """Per group: size, selection rate, true-positive rate and false-positive rate, exactly
    (half of each group's outcomes actually positive)."""
    counts = GroupCounts("sex")
    for group, (n, selected, tpr, fpr) in spec.items():
        positives = n // 2
        tp, fp = round(tpr * positives), round(fpr * (n - positives))
        assert tp + fp == round(selected * n), "inconsistent spec"
        for i in range(n):
            actual = i < positives
            predicted = i < tp if actual else i - positives < fp
            counts.add_prediction(group, predicted)
            counts.add_outcome(group, predicted, actual)
    return counts


UNFAIR = {"f": (0.3, 0.5, 0.1), "m": (0.6, 0.8, 0.4)}


def test_a_clearly_unfair_large_window_violates_every_measure() -> None:
    result = fairness_metrics(_window({g: (2_500, *r) for g, r in UNFAIR.items()}))
    assert result.violations == MEASURES
    di = result.judged[DISPARATE_IMPACT]
    assert di.value == pytest.approx(0.5) and (di.lowest, di.highest) == ("f", "m")
    assert di.interval[1] < 0.8
    for name in (DEMOGRAPHIC_PARITY, EQUAL_OPPORTUNITY, EQUALIZED_ODDS):
        assert result.judged[name].value == pytest.approx(0.3)
        assert result.judged[name].interval[0] > 0.1


def test_the_same_rates_in_forty_rows_are_no_evidence() -> None:
    counts = _window({g: (20, *r) for g, r in UNFAIR.items()})
    assert fairness_metrics(counts).judged == {}  # below the minimum size
    judged = fairness_metrics(counts, min_size=1)
    assert judged.judged[DISPARATE_IMPACT].value == pytest.approx(0.5)
    assert judged.violations == ()  # judged, but the intervals reach the tolerances


def test_a_small_group_is_reported_but_never_judged() -> None:
    fair = (0.5, 0.7, 0.3)
    counts = _window({"a": (1_000, *fair), "b": (1_000, *fair), "tiny": (20, 0.0, 0.0, 0.0)})
    result = fairness_metrics(counts)
    tiny = next(g for g in result.groups if g.group == "tiny")
    assert tiny.selection_rate is not None and tiny.selection_rate.value == 0.0
    assert result.measures[DISPARATE_IMPACT].value == 0.0  # reported...
    assert result.measures[DEMOGRAPHIC_PARITY].value == pytest.approx(0.5)
    assert all("tiny" not in m.groups for m in result.judged.values())  # ...never judged
    assert result.judged[DISPARATE_IMPACT].value == pytest.approx(1.0)
    assert result.violations == ()


def test_selection_measures_are_judged_before_labels() -> None:
    counts = GroupCounts("sex")
    for group, chosen in (("f", 300), ("m", 600)):
        counts.add_predictions([group] * 1_000, np.arange(1_000) < chosen)
    result = fairness_metrics(counts)
    assert set(result.judged) == {DISPARATE_IMPACT, DEMOGRAPHIC_PARITY}
    assert result.violations == (DISPARATE_IMPACT, DEMOGRAPHIC_PARITY)
    lenient = FairnessTolerances(disparate_impact=0.4, demographic_parity_difference=0.4)
    assert fairness_metrics(counts, tolerances=lenient).violations == ()


def test_one_judged_group_gives_no_verdict_and_other_is_never_judged() -> None:
    counts = _window({"f": (1_000, *UNFAIR["f"]), "m": (50, *UNFAIR["m"])})
    counts.add_predictions([OTHER] * 500, np.ones(500, dtype=bool))
    result = fairness_metrics(counts)
    assert result.judged == {} and result.violations == ()
    assert {g.group for g in result.groups} == {"f", "m", OTHER}
    assert all(OTHER not in m.groups for m in result.measures.values())


def test_counts_that_are_no_proportion_give_no_rate() -> None:
    counts = _window({"f": (200, *UNFAIR["f"]), "m": (200, *UNFAIR["m"])})
    counts.add_outcome("late", True, True, sign=-1)  # a retraction without its outcome
    counts.add_prediction("late", True, sign=-1)
    result = fairness_metrics(counts, min_size=0)
    late = next(g for g in result.groups if g.group == "late")
    assert late.selection_rate is None and late.true_positive_rate is None
    assert "late" not in result.measures[DISPARATE_IMPACT].groups
