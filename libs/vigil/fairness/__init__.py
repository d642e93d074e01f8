"""Fairness of binary classifiers over time, per sensitive attribute: pure computation.

``counts`` keeps a window's predictions and outcomes per group of one attribute
(``GroupCounts``: mergeable, retractable, serialisable, of bounded size); ``metrics`` computes
from it each group's rates and the disparate-impact ratio, demographic-parity, equal-opportunity
and equalized-odds differences with their 95 % intervals, and which of them are beyond the
model's tolerances (``fairness_metrics``); ``intervals`` says how those intervals are made.
Nothing here does I/O.
"""

from vigil.fairness.counts import (
    MAX_GROUPS,
    MAX_NAME_BYTES,
    OTHER,
    CorruptCounts,
    GroupCounts,
)
from vigil.fairness.metrics import (
    DEMOGRAPHIC_PARITY,
    DISPARATE_IMPACT,
    EQUAL_OPPORTUNITY,
    EQUALIZED_ODDS,
    MEASURES,
    MIN_GROUP_SIZE,
    FairnessMetrics,
    FairnessTolerances,
    GroupRates,
    Measure,
    Rate,
    fairness_metrics,
)

__all__ = [
    "DEMOGRAPHIC_PARITY",
    "DISPARATE_IMPACT",
    "EQUALIZED_ODDS",
    "EQUAL_OPPORTUNITY",
    "MAX_GROUPS",
    "MAX_NAME_BYTES",
    "MEASURES",
    "MIN_GROUP_SIZE",
    "OTHER",
    "CorruptCounts",
    "FairnessMetrics",
    "FairnessTolerances",
    "GroupCounts",
    "GroupRates",
    "Measure",
    "Rate",
    "fairness_metrics",
]
