"""Expert agreement: Cohen's kappa as scikit-learn's, Fleiss' kappa as statsmodels', shares of
agreeing pairs as counted pair by pair, flag rates and agreement with ground truth, and None
where the measures are undefined (where scikit-learn and statsmodels give NaN)."""

from __future__ import annotations

import doctest
import math
import warnings
from itertools import combinations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

import vigil.agreement
from vigil.agreement import (
    agreeing_share,
    agreement,
    category_table,
    cohen_kappa,
    flag_rates,
    flag_rates_by_reviewer,
    fleiss_kappa,
    versus_truth,
)

FLAGS = ["ok", "incorrect", "unexpected", "harmful"]


def _judgements(seed: int, items: int = 300) -> dict[str, dict[str, str]]:
    """Random judgements of up to five reviewers, some more lenient, most items judged by a
    few of them."""
    rng = np.random.default_rng(seed)
    reviewers = [f"r{i}" for i in range(5)]
    found: dict[str, dict[str, str]] = {}
    for item in range(items):
        truth = rng.choice(FLAGS, p=[0.6, 0.2, 0.15, 0.05])
        who = rng.choice(reviewers, rng.integers(1, 5), replace=False)
        found[f"p{item}"] = {
            str(r): str(truth if rng.random() < 0.7 else rng.choice(FLAGS)) for r in who
        }
    return found


@pytest.mark.parametrize("seed", range(10))
def test_cohen_kappa_is_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 200)), int(rng.integers(2, 5))
    first = rng.choice(FLAGS[:k], n).tolist()
    second = [a if rng.random() < 0.6 else str(rng.choice(FLAGS)) for a in first]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second), abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_fleiss_kappa_is_statsmodels_with_equal_raters(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items, raters, k = int(rng.integers(5, 100)), int(rng.integers(2, 7)), int(rng.integers(2, 5))
    leaning = rng.dirichlet(np.ones(k) * 0.5, items)
    table = np.array([rng.multinomial(raters, p) for p in leaning])
    assert fleiss_kappa(table) == pytest.approx(statsmodels_fleiss(table), abs=1e-9)


def test_kappas_are_none_where_the_libraries_give_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score(["ok"] * 4, ["ok"] * 4))
        assert math.isnan(statsmodels_fleiss(np.array([[3, 0], [3, 0]])))
    assert cohen_kappa(["ok"] * 4, ["ok"] * 4) is None
    assert fleiss_kappa([[3, 0], [3, 0]]) is None
    assert cohen_kappa([], []) is None
    assert fleiss_kappa(np.zeros((0, 2))) is None and agreeing_share(np.zeros((0, 2))) is None
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # no item judged twice
    # Perfect agreement over two categories is 1, not undefined.
    assert cohen_kappa(["ok", "harmful"], ["ok", "harmful"]) == 1.0
    with pytest.raises(ValueError, match="one per item"):
        cohen_kappa(["ok"], [])


def _pairs(judgements: dict[str, dict[str, str]]) -> list[bool]:
    return [a == b for r in judgements.values() for a, b in combinations(r.values(), 2)]


@pytest.mark.parametrize("seed", range(5))
def test_agreement_of_a_set_of_judgements(seed: int) -> None:
    judgements = _judgements(seed)
    found = agreement(judgements)
    pairs = _pairs(judgements)
    assert found.pairs == len(pairs)
    assert found.items == sum(len(r) >= 2 for r in judgements.values())
    assert found.agreeing_share == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)
    # Fleiss' kappa with items judged unequally often: each item's agreement is its own share
    # of agreeing pairs; chance agreement from the categories' shares of all judgements.
    shared = [list(r.values()) for r in judgements.values() if len(r) >= 2]
    per_item = [np.mean([a == b for a, b in combinations(s, 2)]) for s in shared]
    given = [c for s in shared for c in s]
    chance = sum((given.count(c) / len(given)) ** 2 for c in set(given))
    assert found.fleiss_kappa == pytest.approx((np.mean(per_item) - chance) / (1 - chance))
    for (a, b), kappa in found.cohen_kappa.items():
        both = [r for r in judgements.values() if a in r and b in r]
        expected = cohen_kappa_score([r[a] for r in both], [r[b] for r in both])
        if kappa is None:
            assert math.isnan(expected)
        else:
            assert kappa == pytest.approx(expected, abs=1e-9)
    assert len(found.cohen_kappa) == 10  # every pair of the five reviewers met


def test_items_judged_by_the_same_number_match_statsmodels_through_the_table() -> None:
    judgements = {
        f"p{i}": {f"r{j}": FLAGS[(i * j + i // 3) % 3] for j in range(3)} for i in range(40)
    }
    table, categories = category_table(judgements)
    assert categories == sorted(FLAGS[:3]) and table.sum() == 120
    assert agreement(judgements).fleiss_kappa == pytest.approx(statsmodels_fleiss(table), abs=1e-12)
    with pytest.raises(ValueError, match="'ok'"):
        category_table(judgements, categories=["incorrect", "unexpected"])


def test_reviewers_who_never_met_have_no_kappa() -> None:
    found = agreement({"p1": {"ann": "ok"}, "p2": {"bob": "ok"}, "p3": {"ann": "ok", "cy": "ok"}})
    assert found.items == 1 and found.pairs == 1 and found.agreeing_share == 1.0
    assert found.cohen_kappa == {("ann", "cy"): None}  # one category only
    assert found.fleiss_kappa is None


def test_flag_rates_by_kind_and_by_reviewer() -> None:
    judgements = {
        "p1": {"ann": "incorrect", "bob": "ok"},
        "p2": {"ann": "incorrect"},
        "p3": {"ann": "harmful", "bob": "incorrect"},
        "p4": {"bob": "ok"},
    }
    overall = flag_rates(judgements)
    assert overall.judgements == 6
    assert overall.rates == pytest.approx({"harmful": 1 / 6, "incorrect": 0.5, "ok": 1 / 3})
    by_reviewer = flag_rates_by_reviewer(judgements)
    assert by_reviewer["ann"].counts == {"harmful": 1, "incorrect": 2}
    assert by_reviewer["bob"].rates == pytest.approx({"incorrect": 1 / 3, "ok": 2 / 3})
    assert flag_rates({}).judgements == 0 and flag_rates({}).rates == {}


def test_experts_against_ground_truth_where_both_exist() -> None:
    judgements = {
        "p1": {"ann": "cat", "bob": "dog"},
        "p2": {"ann": "dog", "bob": "dog"},
        "p3": {"ann": "cat"},
        "p4": {"bob": "cat"},  # no ground truth: not compared
        "p5": {"ann": "dog", "bob": "cat"},
    }
    truth = {"p1": "cat", "p2": "dog", "p3": "dog", "p5": "dog", "p9": "cat"}
    pooled, by_reviewer = versus_truth(judgements, truth)
    assert pooled.items == 7 and pooled.agreeing_share == pytest.approx(4 / 7)
    ann = ["cat", "dog", "cat", "dog"]
    assert by_reviewer["ann"].items == 4 and by_reviewer["ann"].agreeing_share == 0.75
    assert by_reviewer["ann"].cohen_kappa == pytest.approx(
        cohen_kappa_score(ann, ["cat", "dog", "dog", "dog"])
    )
    assert by_reviewer["bob"].agreeing_share == pytest.approx(1 / 3)
    nobody, none = versus_truth(judgements, {})
    assert nobody.items == 0 and nobody.agreeing_share is None and none == {}


def test_docstring_examples_run() -> None:
    assert doctest.testmod(vigil.agreement).failed == 0
