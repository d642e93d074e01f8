"""Pydantic mirrors of the Avro records in ``schemas/``; a contract test keeps them in step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Alert",
    "AlertStatus",
    "FeatureDrift",
    "FeatureProfile",
    "FeatureSpec",
    "FeatureType",
    "FeatureValue",
    "FeedbackEvent",
    "Lineage",
    "ModelVersion",
    "Outcome",
    "PredictionEvent",
    "Record",
    "ReferenceProfile",
    "ReferenceSource",
    "RiskAssessment",
    "Severity",
    "WindowReport",
    "utcnow",
]

Severity = Literal["low", "medium", "high", "critical"]
FeatureType = Literal["numeric", "categorical", "boolean"]
ReferenceSource = Literal["uploaded", "production"]
AlertStatus = Literal["firing", "acknowledged", "resolved"]
# bool comes first so that JSON true/false never turns into 1/0.
FeatureValue = bool | int | float | str | None
Label = bool | int | float | str


def utcnow() -> datetime:
    """The current time, timezone-aware, truncated to Avro's microsecond resolution."""
    return datetime.now(UTC)


class Record(BaseModel):
    """Base of every wire record: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


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


class FeatureSpec(Record):
    name: str
    type: FeatureType
    required: bool = True
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None


class RiskAssessment(Record):
    probability: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    severity: Severity


class Lineage(Record):
    training_data: str | None = None
    code_version: str | None = None
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


class ReferenceProfile(Record):
    source: ReferenceSource
    row_count: int
    created_at: datetime
    features: list[FeatureProfile]


class ModelVersion(Record):
    model_id: str
    version: str
    task: Literal["binary", "multiclass", "regression"]
    features: list[FeatureSpec]
    positive_label: str | None = None
    owner: str
    purpose: str = ""
    risk: RiskAssessment
    sensitive_attributes: list[str] = Field(default_factory=list)
    business_costs: dict[str, float] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)
    status: Literal["champion", "challenger", "shadow", "retired"] = "champion"
    reference: ReferenceProfile | None = None
    created_at: datetime
    updated_at: datetime

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
    created_at: datetime

    @property
    def key(self) -> str:
        """Key on the metrics topic: one model version's reports share a partition, in order."""
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
