"""How far experts agree with each other and with ground truth, and how often they flag.

Judgements come as a mapping from an item (a prediction id) to the category each reviewer gave
it (one per reviewer: a flag such as incorrect | unexpected | harmful | ok, or a label as
text). From them:

- ``cohen_kappa``: Cohen's kappa of two reviewers over the items both judged, as scikit-learn's
  ``cohen_kappa_score`` (unweighted); ``reviewer_kappas`` for every pair of reviewers who judged
  an item in common.
- ``category_table`` counts the items judged by two or more reviewers (items x categories);
  ``fleiss_kappa`` is Fleiss' kappa of such a table, as statsmodels' ``fleiss_kappa`` when every
  item has the same number of judgements; when they differ, each item's agreement is over its
  own pairs of judgements and the categories' shares are over all the judgements counted (the
  usual generalisation; statsmodels refuses such tables). ``agreeing_share`` is the share of
  the pairs of judgements of one item that agree, over every such pair.
- ``agreement`` puts these together for a set of judgements.
- ``flag_rates``: the share of judgements of each category, overall or per reviewer (per
  model: of the judgements of that model's predictions).
- ``versus_truth``: each reviewer's, and all reviewers', agreement with ground truth on the
  items that have both, as a share and as Cohen's kappa; the categories must be comparable
  (an expert's label with the true label, or a flag turned into correct | incorrect with
  whether the prediction matched its label).

Degenerate cases give None rather than a number: no item in common (or none judged twice);
kappa when chance alone would give full agreement (every judgement in one category), where
scikit-learn and statsmodels give NaN.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

__all__ = [
    "Agreement",
    "FlagRates",
    "Judgements",
    "TruthAgreement",
    "agreeing_share",
    "agreement",
    "category_table",
    "cohen_kappa",
    "flag_rates",
    "flag_rates_by_reviewer",
    "fleiss_kappa",
    "reviewer_kappas",
    "versus_truth",
]

# item (prediction id) -> reviewer -> category
Judgements = Mapping[str, Mapping[str, str]]
Table = npt.NDArray[np.int64]


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Cohen's kappa of two reviewers' categories for the same items, in the same order; None
    without items or when both gave one and the same category throughout.

    >>> round(cohen_kappa(["ok", "ok", "bad", "bad"], ["ok", "bad", "bad", "bad"]), 4)
    0.5
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} and {len(second)} categories: one per item was expected")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    theirs = Counter(second)
    expected = sum(count * theirs[c] for c, count in Counter(first).items()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _pairs_of_reviewers(
    judgements: Judgements,
) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """For each pair of reviewers (in sorted order) who judged an item in common, both's
    categories of those items."""
    found: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for by_reviewer in judgements.values():
        for a, b in combinations(sorted(by_reviewer), 2):
            first, second = found[a, b]
            first.append(by_reviewer[a])
            second.append(by_reviewer[b])
    return dict(found)


def reviewer_kappas(judgements: Judgements) -> dict[tuple[str, str], float | None]:
    """Cohen's kappa of every pair of reviewers (sorted names) who judged an item in common."""
    return {
        pair: cohen_kappa(first, second)
        for pair, (first, second) in _pairs_of_reviewers(judgements).items()
    }


def category_table(
    judgements: Judgements, categories: Sequence[str] | None = None
) -> tuple[Table, list[str]]:
    """Counts of the categories given to each item judged by two or more reviewers (rows in
    the items' order, columns the ``categories``, sorted by default, of those seen)."""
    shared = [list(r.values()) for r in judgements.values() if len(r) >= 2]
    names = list(categories) if categories is not None else sorted({c for i in shared for c in i})
    column = {c: j for j, c in enumerate(names)}
    table = np.zeros((len(shared), len(names)), dtype=np.int64)
    for i, given in enumerate(shared):
        for category in given:
            if category not in column:
                raise ValueError(f"category {category!r} is not one of {names}")
            table[i, column[category]] += 1
    return table, names


def _rows(table: npt.ArrayLike) -> npt.NDArray[np.float64]:
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(
            f"an items x categories table was expected, received one of shape {counts.shape}"
        )
    judged: npt.NDArray[np.float64] = counts[counts.sum(axis=1) >= 2]
    return judged


def fleiss_kappa(table: npt.ArrayLike) -> float | None:
    """Fleiss' kappa of an items x categories table of counts (items judged fewer than twice
    are left out); None without items or when every judgement is in one category.

    >>> round(fleiss_kappa([[2, 0], [1, 1], [0, 2]]), 4)
    0.3333
    """
    counts = _rows(table)
    if counts.size == 0:
        return None
    per_item = counts.sum(axis=1)
    agreement = ((counts * counts).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    shares = counts.sum(axis=0) / per_item.sum()
    expected = float(shares @ shares)
    if expected >= 1.0:
        return None
    return (float(agreement.mean()) - expected) / (1.0 - expected)


def agreeing_share(table: npt.ArrayLike) -> float | None:
    """The share of pairs of judgements of one item that agree, over every such pair of an
    items x categories table; None without any pair."""
    counts = _rows(table)
    per_item = counts.sum(axis=1)
    pairs = float((per_item * (per_item - 1)).sum())
    return float((counts * (counts - 1)).sum()) / pairs if pairs > 0 else None


@dataclass(frozen=True, slots=True)
class Agreement:
    """Agreement among reviewers: ``items`` judged by two or more, their ``pairs`` of
    judgements, the share of those that agree, Fleiss' kappa and every pair of reviewers'
    Cohen's kappa."""

    items: int
    pairs: int
    agreeing_share: float | None
    fleiss_kappa: float | None
    cohen_kappa: Mapping[tuple[str, str], float | None]


def agreement(judgements: Judgements) -> Agreement:
    """How far the reviewers agree on the items two or more of them judged."""
    table, _ = category_table(judgements)
    per_item = table.sum(axis=1)
    return Agreement(
        items=int(table.shape[0]),
        pairs=int((per_item * (per_item - 1) // 2).sum()),
        agreeing_share=agreeing_share(table),
        fleiss_kappa=fleiss_kappa(table),
        cohen_kappa=reviewer_kappas(judgements),
    )


@dataclass(frozen=True, slots=True)
class FlagRates:
    """How many judgements there were and how many of each category."""

    judgements: int
    counts: Mapping[str, int]

    @property
    def rates(self) -> dict[str, float]:
        """Each category's share of the judgements (empty without judgements)."""
        if self.judgements <= 0:
            return {}
        return {category: n / self.judgements for category, n in self.counts.items()}


def _flag_rates(categories: Iterable[str]) -> FlagRates:
    counts = Counter(categories)
    return FlagRates(judgements=sum(counts.values()), counts=dict(sorted(counts.items())))


def flag_rates(judgements: Judgements) -> FlagRates:
    """The share of all judgements of each category (of a model's, for its rates)."""
    return _flag_rates(c for by_reviewer in judgements.values() for c in by_reviewer.values())


def flag_rates_by_reviewer(judgements: Judgements) -> dict[str, FlagRates]:
    """The share of each reviewer's judgements of each category, by reviewer."""
    given: dict[str, list[str]] = defaultdict(list)
    for by_reviewer in judgements.values():
        for reviewer, category in by_reviewer.items():
            given[reviewer].append(category)
    return {reviewer: _flag_rates(given[reviewer]) for reviewer in sorted(given)}


@dataclass(frozen=True, slots=True)
class TruthAgreement:
    """Judgements compared with ground truth: how many, the share that match it, and Cohen's
    kappa of judgement against truth (None when undefined)."""

    items: int
    agreeing_share: float | None
    cohen_kappa: float | None


def _against(pairs: list[tuple[str, str]]) -> TruthAgreement:
    given, true = [g for g, _ in pairs], [t for _, t in pairs]
    share = sum(g == t for g, t in pairs) / len(pairs) if pairs else None
    return TruthAgreement(len(pairs), share, cohen_kappa(given, true))


def versus_truth(
    judgements: Judgements, truth: Mapping[str, str]
) -> tuple[TruthAgreement, dict[str, TruthAgreement]]:
    """Agreement with ground truth of all judgements of items that have it (each reviewer's
    judgement counted once), then of each reviewer's, by reviewer."""
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item, by_reviewer in judgements.items():
        if item in truth:
            for reviewer, category in by_reviewer.items():
                pairs[reviewer].append((category, truth[item]))
    pooled = [pair for reviewer in sorted(pairs) for pair in pairs[reviewer]]
    return _against(pooled), {reviewer: _against(pairs[reviewer]) for reviewer in sorted(pairs)}
