"""Performance and fairness per segment group, as reports and joiners' partials carry them
(pydantic mirrors of records nested in ``schemas/vigil.PerformanceReport.avsc`` and
``vigil.PerformancePartial.avsc``; see ``vigil.wire.segments`` for how groups are made)."""

from __future__ import annotations

from pydantic import Field

from vigil.wire.base import Record
from vigil.wire.shapes import FiniteMap

__all__ = [
    "FairnessGroup",
    "FairnessMeasure",
    "FairnessReport",
    "SegmentPerformance",
    "SegmentState",
]


class SegmentState(Record):
    """One group's accumulator (``WindowPerformance.to_bytes``) of one segment of a window."""

    segment: str
    group: str
    state: bytes


class SegmentPerformance(Record):
    """One group's counts and the task's metrics; ``judged``: enough labelled outcomes (the
    model's ``fairness.min_group_size``) for its metrics to be compared."""

    segment: str
    group: str
    predictions: int
    labelled: int
    metrics: FiniteMap = Field(default_factory=dict)
    judged: bool = False


class FairnessGroup(Record):
    """A group's rates (None where undefined) and their 95 % intervals, by name:
    ``selection_rate``, ``true_positive_rate``, ``false_positive_rate``, ``precision``."""

    group: str
    predictions: int
    labelled: int
    rates: FiniteMap = Field(default_factory=dict)
    rates_low: FiniteMap = Field(default_factory=dict)
    rates_high: FiniteMap = Field(default_factory=dict)


class FairnessMeasure(Record):
    """A measure across the judged groups: its value and 95 % interval, and the groups with
    the lowest and highest rate it compares."""

    value: float = Field(allow_inf_nan=False)
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    lowest: str
    highest: str


class FairnessReport(Record):
    """Fairness over one sensitive attribute in one window: every group's rates, the measures
    over the judged groups (``disparate_impact``, ``demographic_parity_difference``,
    ``equal_opportunity_difference``, ``equalized_odds_difference``) and those beyond the
    model's tolerance over their whole interval (``violations``)."""

    attribute: str
    min_group_size: int
    groups: list[FairnessGroup] = Field(default_factory=list)
    measures: dict[str, FairnessMeasure] = Field(default_factory=dict)
    violations: list[str] = Field(default_factory=list)
