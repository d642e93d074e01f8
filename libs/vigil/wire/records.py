"""Pydantic mirrors of the Avro records in ``schemas/``; a contract test keeps them in step."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal, get_args

from pydantic import Field, field_serializer, field_validator

from vigil.wire.base import Record, utcnow
from vigil.wire.performance import BusinessValue
from vigil.wire.segments import FairnessConfig, SegmentSpec
from vigil.wire.shapes import INT64_MAX, FiniteMap, Identifier, Name

__all__ = [
    "REVIEW_REASONS",
    "Alert",
    "AlertRule",
    "AlertStatus",
    "DriftConfig",
    "Environment",
    "FeatureDrift",
    "FeatureProfile",
    "FeatureSpec",
    "FeatureType",
    "FeatureValue",
    "FeedbackEvent",
    "Lineage",
    "ModelVersion",
    "MultivariateDrift",
    "MultivariateReference",
    "Outcome",
    "PerformanceConfig",
    "PredictionEvent",
    "Record",
    "ReferenceChange",
    "ReferenceProfile",
    "ReferenceSegment",
    "ReferenceSource",
    "ReviewReason",
    "RiskAssessment",
    "RuleCondition",
    "Severity",
    "TrafficReport",
    "WindowReport",
    "utcnow",
]

Severity = Literal["low", "medium", "high", "critical"]
FeatureType = Literal["numeric", "categorical", "boolean"]
ReferenceSource = Literal["uploaded", "production"]
AlertStatus = Literal["firing", "acknowledged", "resolved"]
RuleCondition = Literal["above", "below", "change_above", "change_below", "change_beyond"]
# bool comes first so that JSON true/false never turns into 1/0.
FeatureValue = bool | int | float | str | None
Label = bool | int | float | str


class PredictionEvent(Record):
    prediction_id: str
    model_id: str
    model_version: str
    timestamp: datetime
    features: dict[str, FeatureValue]
    prediction: Label
    score: float | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    sample_rate: float | None = None


class FeedbackEvent(Record):
    feedback_id: str
    prediction_id: str
    model_id: str | None = None
    actual: Label | None = None
    flag: Literal["incorrect", "unexpected", "harmful", "ok"] | None = None
    comment: str | None = None
    reviewer: str | None = None
    source: Literal["sme", "ground_truth", "system"] = "sme"
    timestamp: datetime


class Outcome(Record):
    prediction: PredictionEvent
    feedback: FeedbackEvent
    joined_at: datetime
    replaces: FeedbackEvent | None = None  # the label this one corrects


class FeatureSpec(Record):
    name: Name
    type: FeatureType
    required: bool = True
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    categories: list[str] | None = None


class RiskAssessment(Record):
    probability: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    severity: Severity
    assessed_by: str | None = None
    assessed_at: datetime | None = None
    reassessment_due: datetime | None = None  # past it, the assessment is overdue
    rationale: str | None = None


class Environment(Record):
    """Python and package versions: what a model was validated in, or is served in."""

    python: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)


class Lineage(Record):
    training_data: str | None = None
    training_data_hash: str | None = None  # e.g. "sha256:<hex>"
    code_version: str | None = None
    validated_environment: Environment | None = None
    parent_version: str | None = None


class FeatureProfile(Record):
    name: str
    type: FeatureType
    count: int
    missing: int
    bin_edges: list[float] = Field(default_factory=list)
    bin_counts: list[int] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    category_counts: list[int] = Field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    type_violations: int = 0
    fine_edges: list[float] = Field(default_factory=list)
    fine_counts: list[int] = Field(default_factory=list)
    fine_sums: list[float] = Field(default_factory=list)
    all_categories: list[str] = Field(default_factory=list)


class MultivariateReference(Record):
    features: list[str]
    center: list[float]
    scale: list[float]
    components: list[list[float]]
    error_mean: float
    error_std: float


def _as_base64(value: bytes | None) -> str | None:
    """Packed outcomes in JSON (API answers, JSON messages): base64 text."""
    return None if value is None else base64.b64encode(value).decode("ascii")


def _from_base64(value: object) -> object:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


class ReferenceSegment(Record):
    """The reference's labelled outcomes in one group of one segment (``WindowPerformance``
    packed), for fairness on an uploaded reference."""

    segment: str
    group: str
    state: bytes

    _state_json = field_serializer("state", when_used="json")(_as_base64)
    _state_in = field_validator("state", mode="before")(_from_base64)


class ReferenceProfile(Record):
    source: ReferenceSource
    row_count: int
    created_at: datetime
    features: list[FeatureProfile]
    version: int = 1
    prediction: FeatureProfile | None = None
    score: FeatureProfile | None = None
    multivariate: MultivariateReference | None = None
    performance: bytes | None = None  # the labelled rows' outcomes (PerformanceState)
    segments: list[ReferenceSegment] = Field(default_factory=list)  # the same per group

    _performance_json = field_serializer("performance", when_used="json")(_as_base64)
    _performance_in = field_validator("performance", mode="before")(_from_base64)


class ReferenceChange(Record):
    version: int
    source: ReferenceSource
    row_count: int
    created_at: datetime
    replaced_at: datetime | None = None


class DriftConfig(Record):
    window_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    window_events: int | None = Field(default=None, gt=0, le=INT64_MAX)
    lateness_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_events: int | None = Field(default=None, ge=1, le=INT64_MAX)
    threshold: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    feature_thresholds: FiniteMap = Field(default_factory=dict)
    drift_share: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)


class AlertRule(Record):
    """A value of a report (``signal``, see ``vigil.wire.rules``) that raises an alert when
    ``condition`` holds for ``for_windows`` consecutive reports. ``change_*`` conditions
    compare the relative change against the mean of the previous ``baseline_windows`` values
    (``change_beyond``: its absolute value, a drop or a spike);
    no ``severity`` means the model's risk tier; ``features`` limits a per-feature signal."""

    name: Identifier
    signal: str
    condition: RuleCondition
    threshold: float = Field(allow_inf_nan=False)
    for_windows: int = Field(default=1, ge=1, le=1000)
    baseline_windows: int = Field(default=10, ge=1, le=1000)
    severity: Severity | None = None
    features: list[str] | None = None
    enabled: bool = True


class PerformanceConfig(Record):
    window_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)


# Why the review queue hands an expert a prediction (feedback's review queue).
ReviewReason = Literal["random", "low_confidence", "drifted", "disagreement"]
REVIEW_REASONS: tuple[ReviewReason, ...] = get_args(ReviewReason)


class ModelVersion(Record):
    model_id: Identifier
    version: Identifier
    task: Literal["binary", "multiclass", "regression"]
    features: list[FeatureSpec]
    positive_label: str | None = None
    owner: str
    purpose: str = ""
    team: str = ""
    kpi: str = ""
    risk: RiskAssessment
    risk_history: list[RiskAssessment] = Field(default_factory=list)  # the last is ``risk``
    sensitive_attributes: list[str] = Field(default_factory=list)
    business_costs: FiniteMap = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)
    status: Literal["champion", "challenger", "shadow", "retired"] = "champion"
    reference: ReferenceProfile | None = None
    reference_history: list[ReferenceChange] = Field(default_factory=list)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    created_at: datetime
    updated_at: datetime
    alert_rules: list[AlertRule] = Field(default_factory=list)
    # Seconds without traffic, after some, that fire model_silent.
    expected_interval: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    business_value: BusinessValue | None = None
    # Seconds a prediction waits for its label (and a label for its prediction): 30 days.
    label_horizon: float = Field(default=30 * 86400.0, gt=0, allow_inf_nan=False)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    segments: list[SegmentSpec] = Field(default_factory=list)
    segment_cross: list[str] = Field(default_factory=list)  # two segments, crossed
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    # Weights of the review queue's reasons for this model (empty: the feedback service's).
    review_mix: FiniteMap = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """Key on the compacted models topic."""
        return f"{self.model_id}/{self.version}"


class FeatureDrift(Record):
    feature: str
    type: FeatureType
    count: int
    missing: int
    out_of_range: int = 0
    unseen_categories: int = 0
    statistics: dict[str, float]
    drift_statistic: str
    threshold: float
    drifted: bool
    type_violations: int = 0
    sequential_drift: bool = False
    # The window's counts on its reference's bins (bin_counts, numeric) or categories plus
    # "other" (category_counts), aligned with the reference profile's own counts.
    bin_counts: list[int] = Field(default_factory=list)
    category_counts: list[int] = Field(default_factory=list)


class MultivariateDrift(Record):
    method: str
    value: float
    reference: float
    threshold: float
    drifted: bool


class WindowReport(Record):
    report_id: str
    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    event_count: int
    reference_source: ReferenceSource
    features: list[FeatureDrift]
    drifted_features: list[str] = Field(default_factory=list)
    dataset_drift: bool = False
    drift_share: float = 0.0
    outputs: list[FeatureDrift] = Field(default_factory=list)
    multivariate: MultivariateDrift | None = None
    reference_version: int = 0
    late_events: int = 0
    created_at: datetime

    @property
    def key(self) -> str:
        """Key on the metrics topic: one model version's reports share a partition, in order."""
        return f"{self.model_id}/{self.model_version}"


class TrafficReport(Record):
    """How many events of one model version the drift detector received over an interval of
    wall-clock time: the heartbeat liveness, traffic and dead-letter alerts are judged on.

    ``event_count`` are the events it profiled, ``dead_lettered`` those of the version it sent
    to the dead-letter topic instead (from the far future, or failing to be profiled)."""

    report_id: str
    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime
    event_count: int
    dead_lettered: int = 0
    last_event_time: datetime | None = None
    created_at: datetime

    @property
    def key(self) -> str:
        """Key on the metrics topic: beside the version's window reports, in order."""
        return f"{self.model_id}/{self.model_version}"


class Alert(Record):
    fingerprint: str
    status: AlertStatus
    severity: Severity
    model_id: str
    model_version: str
    rule: str
    feature: str | None = None
    summary: str
    details: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    updated_at: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    silenced_by: str | None = None
    inhibited_by: str | None = None
