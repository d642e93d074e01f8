"""Fairness of a binary classifier over the groups of one sensitive attribute, from counts.

Per group: the selection rate (predicted positives over every prediction, labelled or not, so
known as soon as predictions stream), and over the labelled outcomes the true-positive rate
(TP / actual positives), the false-positive rate (FP / actual negatives) and the precision
(TP / predicted positives), each with its 95 % Wilson interval; a rate whose denominator is 0
is None (Fairlearn reports 0 there, and compares it), and so is one whose counts are no
proportion (a count below 0, as when a window holds a label correction's retraction but not
the outcome it takes back).

Across groups, as Fairlearn's ``between_groups`` measures:

- ``disparate_impact``: the lowest selection rate over the highest (the four-fifths rule;
  Fairlearn's ``demographic_parity_ratio``); None when every selection rate is 0;
- ``demographic_parity_difference``: the highest selection rate less the lowest;
- ``equal_opportunity_difference``: the highest true-positive rate less the lowest;
- ``equalized_odds_difference``: the larger of the true- and false-positive rates' differences
  (Fairlearn's ``equalized_odds_difference``, ``agg="worst_case"``), known once both are.

Each comes with the 95 % interval of ``vigil.fairness.intervals`` (pairwise Newcombe or MOVER-R
intervals, adjusted for the number of pairs compared). ``measures`` compares every group that
has the rate; ``judged`` only the groups large enough to judge: at least ``min_size``
predictions for the selection-rate measures, at least ``min_size`` labelled outcomes for the
others, and never ``OTHER``. ``violations`` are the judged measures whose whole interval lies
beyond the tolerance: disparate impact's upper bound below it, a difference's lower bound above
it. A measure with fewer than two judged groups is not judged, so gives no verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vigil.fairness.counts import OTHER, GroupCounts
from vigil.fairness.intervals import Rates, largest_gap, smallest_ratio
from vigil.performance.intervals import Interval, wilson

__all__ = [
    "DEMOGRAPHIC_PARITY",
    "DISPARATE_IMPACT",
    "EQUALIZED_ODDS",
    "EQUAL_OPPORTUNITY",
    "MEASURES",
    "MIN_GROUP_SIZE",
    "FairnessMetrics",
    "FairnessTolerances",
    "GroupRates",
    "Measure",
    "Rate",
    "fairness_metrics",
]

DISPARATE_IMPACT = "disparate_impact"
DEMOGRAPHIC_PARITY = "demographic_parity_difference"
EQUAL_OPPORTUNITY = "equal_opportunity_difference"
EQUALIZED_ODDS = "equalized_odds_difference"
MEASURES = (DISPARATE_IMPACT, DEMOGRAPHIC_PARITY, EQUAL_OPPORTUNITY, EQUALIZED_ODDS)
MIN_GROUP_SIZE = 100
# Measures of predictions alone, whose groups are judged by their predictions, not outcomes.
_ON_PREDICTIONS = (DISPARATE_IMPACT, DEMOGRAPHIC_PARITY)


@dataclass(frozen=True, slots=True)
class Rate:
    """A proportion, its 95 % Wilson interval and the counts it is of."""

    value: float
    interval: Interval
    successes: int
    total: int


@dataclass(frozen=True, slots=True)
class GroupRates:
    """One group's counts and rates (None where a denominator is 0)."""

    group: str
    predictions: int
    labelled: int
    selection_rate: Rate | None
    true_positive_rate: Rate | None
    false_positive_rate: Rate | None
    precision: Rate | None


@dataclass(frozen=True, slots=True)
class Measure:
    """A measure across groups: its value, 95 % interval, the rate it compares and the groups
    of the lowest and the highest of that rate among ``groups``, the groups compared."""

    value: float
    interval: Interval
    rate: str
    lowest: str
    highest: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FairnessTolerances:
    """How far a model may be from parity before an alert: disparate impact below
    ``disparate_impact``, a difference above its tolerance."""

    disparate_impact: float = 0.8
    demographic_parity_difference: float = 0.1
    equal_opportunity_difference: float = 0.1
    equalized_odds_difference: float = 0.1

    def violated(self, name: str, measure: Measure) -> bool:
        """Whether the measure's whole interval lies beyond its tolerance."""
        tolerance: float = getattr(self, name)
        if name == DISPARATE_IMPACT:
            return measure.interval[1] < tolerance
        return measure.interval[0] > tolerance


@dataclass(frozen=True, slots=True)
class FairnessMetrics:
    """A window's (or the reference's) fairness over one sensitive attribute."""

    attribute: str
    min_size: int
    groups: tuple[GroupRates, ...]
    measures: Mapping[str, Measure]
    judged: Mapping[str, Measure]
    violations: tuple[str, ...]
    tolerances: FairnessTolerances = field(default_factory=FairnessTolerances)


def _rate(successes: int, total: int) -> Rate | None:
    if not 0 <= successes <= total:
        return None
    interval = wilson(successes, total)
    if interval is None:
        return None
    value = successes / total
    return Rate(value, (min(interval[0], value), max(interval[1], value)), successes, total)


def _group(counts: GroupCounts, group: str) -> GroupRates:
    n, predicted_positive, tp, fp, tn, fn = counts.row(group)
    return GroupRates(
        group=group,
        predictions=n,
        labelled=tp + fp + tn + fn,
        selection_rate=_rate(predicted_positive, n),
        true_positive_rate=_rate(tp, tp + fn),
        false_positive_rate=_rate(fp, fp + tn),
        precision=_rate(tp, tp + fp),
    )


RateOf = Callable[[GroupRates], Rate | None]
Family = list[tuple[str, Rate]]  # (group, its rate) for the groups that have the rate


def _family(groups: list[GroupRates], rate_of: RateOf) -> Family:
    found = [(g.group, rate_of(g)) for g in groups]
    return [(name, rate) for name, rate in found if rate is not None]


def _counts(family: Family) -> Rates:
    return [(rate.successes, rate.total) for _, rate in family]


def _extremes(family: Family) -> tuple[str, str, float, float]:
    low = min(family, key=lambda item: item[1].value)
    high = max(family, key=lambda item: item[1].value)
    return low[0], high[0], low[1].value, high[1].value


def _gap(families: Mapping[str, Family]) -> Measure | None:
    """The largest difference within any of the families, by rate name (all of which need
    two groups)."""
    if not families or any(len(f) < 2 for f in families.values()):
        return None
    interval = largest_gap([_counts(f) for f in families.values()])
    assert interval is not None

    def spread(rate: str) -> float:
        _, _, low, high = _extremes(families[rate])
        return high - low

    rate = max(families, key=spread)
    lowest, highest, low, high = _extremes(families[rate])
    value = high - low
    names = tuple(dict.fromkeys(name for f in families.values() for name, _ in f))
    bounds = (min(interval[0], value), max(interval[1], value))
    return Measure(value, bounds, rate, lowest, highest, names)


def _ratio(selection: Family) -> Measure | None:
    interval = smallest_ratio(_counts(selection))
    if interval is None:
        return None
    lowest, highest, low, high = _extremes(selection)
    value = low / high
    bounds = (min(interval[0], value), max(interval[1], value))
    names = tuple(name for name, _ in selection)
    return Measure(value, bounds, "selection_rate", lowest, highest, names)


def _measures(groups: list[GroupRates]) -> dict[str, Measure]:
    """The four measures over ``groups``, those that are defined."""
    selection = _family(groups, lambda g: g.selection_rate)
    tpr = _family(groups, lambda g: g.true_positive_rate)
    fpr = _family(groups, lambda g: g.false_positive_rate)
    found = {
        DISPARATE_IMPACT: _ratio(selection),
        DEMOGRAPHIC_PARITY: _gap({"selection_rate": selection}),
        EQUAL_OPPORTUNITY: _gap({"true_positive_rate": tpr}),
        EQUALIZED_ODDS: _gap({"true_positive_rate": tpr, "false_positive_rate": fpr}),
    }
    return {name: m for name, m in found.items() if m is not None}


def fairness_metrics(
    counts: GroupCounts,
    min_size: int = MIN_GROUP_SIZE,
    tolerances: FairnessTolerances | None = None,
) -> FairnessMetrics:
    """Per-group rates, the four measures over every group and over the judged ones, and the
    judged measures beyond their tolerance (see the module's docstring)."""
    tolerances = tolerances or FairnessTolerances()
    groups = [_group(counts, group) for group in counts.groups]
    named = [g for g in groups if g.group != OTHER]
    on_predictions = [g for g in named if g.predictions >= min_size]
    on_outcomes = [g for g in named if g.labelled >= min_size]
    on_selection = _measures(on_predictions)
    on_labels = _measures(on_outcomes)
    judged: dict[str, Measure] = {}
    for name in MEASURES:
        found = on_selection if name in _ON_PREDICTIONS else on_labels
        if name in found:
            judged[name] = found[name]
    return FairnessMetrics(
        attribute=counts.attribute,
        min_size=min_size,
        groups=tuple(groups),
        measures=_measures(named),
        judged=judged,
        violations=tuple(name for name, m in judged.items() if tolerances.violated(name, m)),
        tolerances=tolerances,
    )
