"""The feedback loop's records: what outcomes are worth, a window's performance report, and the
state of its accumulator (pydantic mirrors of ``schemas/vigil.BusinessValue.avsc``,
``vigil.PerformanceReport.avsc`` and ``vigil.PerformanceState.avsc``).

They live beside ``vigil.wire.records`` (whose ``Record`` they extend) rather than in it, to
keep that module short.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from vigil.wire.base import Record
from vigil.wire.segment_reports import FairnessReport, SegmentPerformance, SegmentState
from vigil.wire.shapes import FiniteMap

__all__ = [
    "METRICS",
    "BusinessValue",
    "ConfusionMatrix",
    "PerformancePartial",
    "PerformanceReport",
    "PerformanceState",
    "Task",
]

Task = Literal["binary", "multiclass", "regression"]
# The metrics a report may carry (``vigil.performance.metrics``): what rules may name.
METRICS = (
    *("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier", "ece"),
    *("positive_rate", "base_rate", "mae", "rmse", "r2", "mean_error"),
)


class BusinessValue(Record):
    """What one outcome is worth: positive values earn, negative ones cost.

    Binary models use the four cells, multiclass models ``matrix`` (actual label, then
    predicted label, as class names: "true", "1", "cat"; a pair not listed is worth 0),
    regression models ``cost_per_unit_error`` (an outcome is worth
    ``-cost_per_unit_error * |error|``).
    """

    currency: str = "EUR"
    true_positive: float = Field(default=0.0, allow_inf_nan=False)
    false_positive: float = Field(default=0.0, allow_inf_nan=False)
    true_negative: float = Field(default=0.0, allow_inf_nan=False)
    false_negative: float = Field(default=0.0, allow_inf_nan=False)
    matrix: dict[str, dict[str, float]] = Field(default_factory=dict)
    cost_per_unit_error: float = Field(default=0.0, allow_inf_nan=False)

    @field_validator("matrix")
    @classmethod
    def _finite(cls, matrix: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for actual, row in matrix.items():
            for predicted, value in row.items():
                if not math.isfinite(value):
                    raise ValueError(f"finite values; [{actual!r}][{predicted!r}] is {value}")
        return matrix


class ConfusionMatrix(Record):
    """``rows[i][j]``: outcomes whose actual label is ``labels[i]`` and prediction ``labels[j]``."""

    labels: list[str] = Field(default_factory=list)
    rows: list[list[int]] = Field(default_factory=list)


class PerformanceReport(Record):
    """How one model version did on the predictions of one event-time window, revised as their
    labels arrive (``revision`` increases; the latest of a ``report_id`` wins), beside its
    reference: ``metrics_low``/``metrics_high`` bound each metric's 95 % confidence interval,
    ``degraded`` names the metrics worse than the reference's beyond the risk tier's tolerance
    across that interval, ``reference_window_start`` the window taken as the reference (None:
    the uploaded reference's labelled rows, or no reference)."""

    report_id: str
    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    revision: int
    task: Task
    predictions: int
    labelled: int
    label_coverage: float
    label_latency_p50_seconds: float | None = None
    label_latency_p95_seconds: float | None = None
    orphaned: int = 0
    metrics: FiniteMap
    estimated: FiniteMap = Field(default_factory=dict)
    reference_metrics: FiniteMap = Field(default_factory=dict)
    metrics_low: FiniteMap = Field(default_factory=dict)
    metrics_high: FiniteMap = Field(default_factory=dict)
    degraded: list[str] = Field(default_factory=list)
    reference_window_start: datetime | None = None
    segments: list[SegmentPerformance] = Field(default_factory=list)
    fairness: list[FairnessReport] = Field(default_factory=list)
    reference_fairness: list[FairnessReport] = Field(default_factory=list)
    confusion_matrix: ConfusionMatrix = Field(default_factory=ConfusionMatrix)
    value: float | None = None
    value_per_prediction: float | None = None
    reference_value_per_prediction: float | None = None
    estimated_value: float | None = None
    currency: str | None = None
    created_at: datetime

    @property
    def event_count(self) -> int:
        """The window's predictions (what alert rules call a report's events)."""
        return self.predictions

    @property
    def key(self) -> str:
        """Key on the metrics topic: beside the version's window reports, in order."""
        return f"{self.model_id}/{self.model_version}"


class PerformanceState(Record):
    """The counts and sums of a performance window, for a changelog or state store."""

    format: int
    task: Task
    positive_label: str | None = None
    labels: list[str] = Field(default_factory=list)
    compression: str
    ints_size: int
    floats_size: int
    ints: bytes
    floats: bytes


class PerformancePartial(Record):
    """A performance window's accumulator (``WindowPerformance.to_bytes``) of one model
    version: a joiner's delta for one flush (``revision`` 0) on the partials topic, or the
    merged window with the revision last reported, in the reporter's changelog."""

    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    revision: int = 0
    state: bytes
    orphaned: int = 0  # labels without their prediction (a delta in a joiner's partial)
    segments: list[SegmentState] = Field(default_factory=list)  # per segment group

    @property
    def key(self) -> str:
        """Key on the partials topic: one version's deltas meet in one reporter."""
        return f"{self.model_id}/{self.model_version}"
