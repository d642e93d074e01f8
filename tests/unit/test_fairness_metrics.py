"""Fairness measures from per-group counts agree with Fairlearn's on the same predictions and
labels: per-group rates from ``MetricFrame``, and the parity ratio and differences, on random
data with tiny groups, a group without positives and tied rates. Where a rate's denominator is
0, Fairlearn reports 0 and Vigil None, leaving the group out of that rate's comparison."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fairlearn import metrics as fm
from sklearn.metrics import precision_score

from vigil.fairness import (
    DEMOGRAPHIC_PARITY,
    DISPARATE_IMPACT,
    EQUAL_OPPORTUNITY,
    EQUALIZED_ODDS,
    GroupCounts,
    fairness_metrics,
)

RATES = {
    "selection_rate": fm.selection_rate,
    "true_positive_rate": fm.true_positive_rate,
    "false_positive_rate": fm.false_positive_rate,
    "precision": lambda t, p: precision_score(t, p, zero_division=0),
}


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions and groups: three sizeable groups of different rates, a tiny one, a
    group without actual positives and (on odd seeds) one without predicted positives."""
    rng = np.random.default_rng(seed)
    sizes = {"a": 400, "b": 250, "c": 120, "tiny": 3, "no positives": 30, "never chosen": 25}
    groups, y_true, y_pred = [], [], []
    for i, (name, n) in enumerate(sizes.items()):
        base = 0.0 if name == "no positives" else rng.uniform(0.1, 0.6)
        chosen = 0.0 if name == "never chosen" and seed % 2 else rng.uniform(0.1, 0.7)
        actual = rng.random(n) < base
        right = rng.random(n) < 0.6 + 0.1 * i / len(sizes)
        predicted = np.where(right, actual, rng.random(n) < chosen) & (chosen > 0)
        groups += [name] * n
        y_true.append(actual)
        y_pred.append(predicted)
    return np.concatenate(y_true).astype(int), np.concatenate(y_pred).astype(int), np.array(groups)


def _counts(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> GroupCounts:
    counts = GroupCounts("group")
    counts.add_predictions(groups.tolist(), y_pred.astype(bool))
    counts.add_outcomes(groups.tolist(), y_pred.astype(bool), y_true.astype(bool))
    return counts


def _fairlearn(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            DISPARATE_IMPACT: fm.demographic_parity_ratio(
                y_true, y_pred, sensitive_features=groups
            ),
            DEMOGRAPHIC_PARITY: fm.demographic_parity_difference(
                y_true, y_pred, sensitive_features=groups
            ),
            EQUAL_OPPORTUNITY: fm.equal_opportunity_difference(
                y_true, y_pred, sensitive_features=groups
            ),
            EQUALIZED_ODDS: fm.equalized_odds_difference(y_true, y_pred, sensitive_features=groups),
        }


@pytest.mark.parametrize("seed", range(8))
def test_group_rates_are_fairlearns(seed: int) -> None:
    y_true, y_pred, groups = _data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = fm.MetricFrame(
            metrics=RATES, y_true=y_true, y_pred=y_pred, sensitive_features=groups
        ).by_group
    result = fairness_metrics(_counts(y_true, y_pred, groups), min_size=1)
    assert [g.group for g in result.groups] == sorted(set(groups.tolist()))
    undefined = 0
    for g in result.groups:
        assert g.predictions == g.labelled == int((groups == g.group).sum())
        for name in RATES:
            mine = getattr(g, name)
            if mine is None:
                undefined += 1
                assert frame.loc[g.group, name] == 0.0  # Fairlearn's value for 0 / 0
            else:
                assert mine.value == pytest.approx(frame.loc[g.group, name], abs=1e-9)
                assert mine.interval[0] <= mine.value <= mine.interval[1]
    assert undefined >= 1  # the group without positives has no true-positive rate


def _having(y_true: np.ndarray, groups: np.ndarray, actual: int) -> np.ndarray:
    """The rows of the groups that have some outcome actually ``actual``."""
    return np.isin(groups, np.unique(groups[y_true == actual]))


@pytest.mark.parametrize("seed", range(8))
def test_measures_are_fairlearns(seed: int) -> None:
    y_true, y_pred, groups = _data(seed)
    result = fairness_metrics(_counts(y_true, y_pred, groups), min_size=1)
    everyone = _fairlearn(y_true, y_pred, groups)
    assert result.measures[DISPARATE_IMPACT].value == pytest.approx(
        everyone[DISPARATE_IMPACT], abs=1e-9
    )
    assert result.measures[DEMOGRAPHIC_PARITY].value == pytest.approx(
        everyone[DEMOGRAPHIC_PARITY], abs=1e-9
    )
    # Fairlearn compares a rate of 0 for a group without actual positives (negatives); Vigil
    # leaves that group out of the comparison of the true- (false-) positive rates.
    pos, neg = _having(y_true, groups, 1), _having(y_true, groups, 0)
    assert not pos.all()  # the group without positives
    tpr_gap = _fairlearn(y_true[pos], y_pred[pos], groups[pos])[EQUAL_OPPORTUNITY]
    fpr_gap = fm.MetricFrame(
        metrics=fm.false_positive_rate,
        y_true=y_true[neg],
        y_pred=y_pred[neg],
        sensitive_features=groups[neg],
    ).difference()
    assert result.measures[EQUAL_OPPORTUNITY].value == pytest.approx(tpr_gap, abs=1e-9)
    eo = result.measures[EQUALIZED_ODDS]
    assert eo.value == pytest.approx(max(tpr_gap, fpr_gap), abs=1e-9)
    assert eo.rate == ("true_positive_rate" if tpr_gap >= fpr_gap else "false_positive_rate")
    for m in result.measures.values():
        assert m.interval[0] <= m.value <= m.interval[1]


@pytest.mark.parametrize("seed", range(8))
def test_where_every_group_has_every_rate_all_four_are_fairlearns(seed: int) -> None:
    y_true, y_pred, groups = _data(seed)
    rows = np.isin(groups, ["a", "b", "c"])
    t, p, g = y_true[rows], y_pred[rows], groups[rows]
    result = fairness_metrics(_counts(t, p, g))
    assert {m: r.value for m, r in result.measures.items()} == pytest.approx(
        _fairlearn(t, p, g), abs=1e-9
    )


def test_every_group_defined_is_fairlearn_exactly_including_ties() -> None:
    # Two groups tie for the highest selection rate and two for the lowest.
    spec = {"w": (10, 4, 100), "x": (10, 4, 100), "y": (5, 2, 100), "z": (5, 3, 100)}
    y_true, y_pred, groups = [], [], []
    for name, (chosen, hits, n) in spec.items():
        predicted = np.arange(n) < chosen * n // 20
        actual = np.roll(predicted, hits)
        y_true.append(actual)
        y_pred.append(predicted)
        groups += [name] * n
    t, p, g = (
        np.concatenate(y_true).astype(int),
        np.concatenate(y_pred).astype(int),
        np.array(groups),
    )
    result = fairness_metrics(_counts(t, p, g), min_size=1)
    for name, value in _fairlearn(t, p, g).items():
        assert result.measures[name].value == pytest.approx(value, abs=1e-12), name
    ratio = result.measures[DISPARATE_IMPACT]
    assert ratio.value == pytest.approx(0.5) and ratio.lowest in "yz" and ratio.highest in "wx"
    assert result.judged == result.measures  # 100 each: every group judged


def test_measures_need_two_groups_and_a_positive_selection() -> None:
    counts = GroupCounts("sex")
    counts.add_predictions(["f"] * 50, np.zeros(50, dtype=bool))
    assert fairness_metrics(counts).measures == {}
    counts.add_predictions(["m"] * 50, np.zeros(50, dtype=bool))
    result = fairness_metrics(counts, min_size=1)
    assert DISPARATE_IMPACT not in result.measures  # 0 / 0: every selection rate is 0
    assert result.measures[DEMOGRAPHIC_PARITY].value == 0.0
    assert EQUAL_OPPORTUNITY not in result.measures  # no labels yet
    assert result.violations == ()
