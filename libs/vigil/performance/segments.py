"""Performance and fairness per segment group of a window: each group's accumulator (the
joiners count a version's predictions and outcomes per group of each of its segments, see
``vigil.wire.segments``) into the report's ``segments`` and, for a binary model's sensitive
segments, ``fairness`` (``vigil.fairness``). No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from vigil.fairness import FairnessMetrics, FairnessTolerances, GroupCounts, fairness_metrics
from vigil.performance.accumulator import WindowPerformance
from vigil.performance.metrics import realised_metrics
from vigil.wire.segment_reports import (
    FairnessGroup,
    FairnessMeasure,
    FairnessReport,
    SegmentPerformance,
)
from vigil.wire.segments import CROSS, MISSING_GROUP, FairnessConfig

__all__ = ["crossed", "fairness_reports", "group_counts", "segment_performance"]

Groups = Mapping[tuple[str, str], WindowPerformance]  # (segment, group) -> accumulator
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision")


def crossed(cross: Sequence[str]) -> str:
    """The name of two segments crossed, e.g. ``age x region`` (their groups: ``<30 x b``)."""
    return CROSS.join(cross)


def segment_performance(groups: Groups, min_group_size: int) -> list[SegmentPerformance]:
    """Every group's counts and metrics, by segment and group name."""
    return [
        SegmentPerformance(
            segment=segment,
            group=group,
            predictions=window.predictions,
            labelled=window.labelled,
            metrics=realised_metrics(window),
            judged=window.labelled >= min_group_size,
        )
        for (segment, group), window in sorted(groups.items())
    ]


def group_counts(attribute: str, groups: Groups) -> GroupCounts:
    """The binary counts per group of one attribute, as ``vigil.fairness`` reads them (events
    without the attribute left out)."""
    rows: dict[str, list[int]] = {}
    # A crossed pair ("age x region": segment names have no spaces) is judged on the events
    # that have both attributes.
    parts = attribute.count(CROSS) + 1
    for (segment, group), window in groups.items():
        if segment != attribute or window.binary is None:
            continue
        if MISSING_GROUP in group.split(CROSS, parts - 1):
            continue  # events without the attribute are in no group to compare
        counts = window.binary
        tp, fp, tn, fn = counts.ints[counts.TP : counts.FN + 1].tolist()
        positive = int(counts.ints[counts.PREDICTED_POSITIVE])
        rows[group] = [window.predictions, positive, tp, fp, tn, fn]
    return GroupCounts.from_rows(attribute, rows)


def fairness_reports(
    groups: Groups, sensitive: Sequence[str], config: FairnessConfig
) -> list[FairnessReport]:
    """Fairness over each sensitive attribute with groups in the window (binary models); a
    crossed pair of sensitive segments (``crossed``) is one attribute of intersecting groups."""
    tolerances = FairnessTolerances(
        disparate_impact=config.disparate_impact,
        demographic_parity_difference=config.max_difference,
        equal_opportunity_difference=config.max_difference,
        equalized_odds_difference=config.max_difference,
    )
    found: list[FairnessReport] = []
    for attribute in sensitive:
        counts = group_counts(attribute, groups)
        if counts.groups:
            metrics = fairness_metrics(counts, config.min_group_size, tolerances)
            found.append(_report(metrics))
    return found


def _report(metrics: FairnessMetrics) -> FairnessReport:
    groups = []
    for g in metrics.groups:
        rates = {name: getattr(g, name) for name in RATES}
        known = {name: r for name, r in rates.items() if r is not None}
        groups.append(
            FairnessGroup(
                group=g.group,
                predictions=g.predictions,
                labelled=g.labelled,
                rates={name: r.value for name, r in known.items()},
                rates_low={name: r.interval[0] for name, r in known.items()},
                rates_high={name: r.interval[1] for name, r in known.items()},
            )
        )
    measures = {
        name: FairnessMeasure(
            value=m.value, low=m.interval[0], high=m.interval[1], lowest=m.lowest, highest=m.highest
        )
        for name, m in metrics.judged.items()
        if all(math.isfinite(x) for x in (m.value, *m.interval))
    }
    return FairnessReport(
        attribute=metrics.attribute,
        min_group_size=metrics.min_size,
        groups=groups,
        measures=measures,
        violations=sorted(metrics.violations),
    )
