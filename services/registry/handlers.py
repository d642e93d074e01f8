"""Registry logic: registrations become model versions, reference rows become profiles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry.risk import RiskInput as RiskInput
from registry.risk import assessment, is_overdue, lineage_errors, risk_errors
from registry.risk import severity as severity
from vigil.drift.reference import build_reference
from vigil.drift.verdicts import OUTPUTS
from vigil.performance import WindowPerformance, reference_outcomes
from vigil.performance.reference import reference_groups
from vigil.wire.performance import BusinessValue
from vigil.wire.records import (
    DriftConfig,
    FeatureSpec,
    Lineage,
    ModelVersion,
    PerformanceConfig,
    ReferenceChange,
    ReferenceProfile,
    ReferenceSegment,
    ReviewReason,
    RiskAssessment,
)
from vigil.wire.segments import FairnessConfig, SegmentSpec, effective_segments
from vigil.wire.shapes import FiniteMap, Identifier, Name, Text
from vigil.wire.validation import FieldError, check_features, describe


class ModelRegistration(BaseModel):
    """What a data scientist sends to register a model version."""

    model_config = ConfigDict(extra="forbid")
    model_id: Identifier
    version: Identifier
    task: Literal["binary", "multiclass", "regression"]
    features: list[FeatureSpec] = Field(min_length=1)
    risk: RiskInput
    owner: Name
    purpose: Text = ""
    team: Text = Field(default="", description="The team answerable for the model.")
    kpi: Text = Field(default="", description="The business KPI the model serves.")
    positive_label: Name | None = None
    sensitive_attributes: list[Name] = Field(default_factory=list)
    business_costs: FiniteMap = Field(default_factory=dict)
    business_value: BusinessValue | None = Field(
        default=None, description="What an outcome is worth, for the performance reports."
    )
    lineage: Lineage = Field(default_factory=Lineage)
    status: Literal["champion", "challenger", "shadow", "retired"] = "champion"
    drift: DriftConfig = Field(default_factory=DriftConfig)
    expected_interval: float = Field(
        default=600.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds: traffic, then none for this long, fires model_silent.",
    )
    label_horizon: float = Field(
        default=30 * 86400.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a prediction waits for its label (and a label for its prediction).",
    )
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    segments: list[SegmentSpec] = Field(default_factory=list)
    segment_cross: list[Name] = Field(default_factory=list)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    # The review queue's reasons weighted for this model, e.g. {"low_confidence": 3, "random": 1}.
    review_mix: dict[ReviewReason, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )

    @field_validator("review_mix")
    @classmethod
    def _some_weight(cls, mix: dict[ReviewReason, float]) -> dict[ReviewReason, float]:
        if mix and not any(w > 0 for w in mix.values()):
            raise ValueError("at least one reason needs a weight above 0 (or leave it out)")
        return mix

    @model_validator(mode="after")
    def _unique_features(self) -> ModelRegistration:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique; repeated: {duplicates}")
        unknown = sorted(set(self.drift.feature_thresholds) - set(names) - set(OUTPUTS))
        if unknown:
            raise ValueError(f"drift.feature_thresholds names unknown features: {unknown}")
        return self


def new_version(
    registration: ModelRegistration, now: datetime, registered_by: str | None = None
) -> ModelVersion:
    """The ModelVersion record for a registration; its risk assessment, made by
    ``registered_by``, starts the version's risk history."""
    fields = registration.model_dump(exclude={"risk"})
    risk: RiskAssessment = assessment(registration.risk, registered_by, now)
    return ModelVersion(**fields, risk=risk, risk_history=[risk], created_at=now, updated_at=now)


def with_reference(
    version: ModelVersion,
    rows: Sequence[Any],
    now: datetime,
    predictions: Sequence[Any] | None = None,
    scores: Sequence[float | None] | None = None,
    actuals: Sequence[Any] | None = None,
) -> tuple[ModelVersion, list[FieldError]]:
    """The version with a new reference built from ``rows``, or the rows' errors.

    The reference gets the next version number and the change is added to the history.
    """
    reference, errors = reference_from_rows(version, rows, now, predictions, scores, actuals)
    if reference is None:
        return version, errors
    return with_new_reference(version, reference, now), []


def reference_from_rows(
    version: ModelVersion,
    rows: Sequence[Any],
    now: datetime,
    predictions: Sequence[Any] | None = None,
    scores: Sequence[float | None] | None = None,
    actuals: Sequence[Any] | None = None,
) -> tuple[ReferenceProfile | None, list[FieldError]]:
    """The profile of ``rows`` for the version's features (not numbered yet), or their errors.

    Rows with a prediction and an ``actual`` (the true outcome) are the reference's outcomes:
    their packed ``WindowPerformance`` is the profile's ``performance``.
    """
    errors: list[FieldError] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            errors.append(FieldError("<row>", "an object of feature values", describe(row), i))
        else:
            errors.extend(check_features(version.features, row, i))
    outcomes = None
    if predictions is not None and actuals is not None:
        outcomes, wrong = reference_outcomes(
            version.task, version.positive_label, predictions, scores, actuals
        )
        errors.extend(wrong)
    if errors:
        return None, errors
    reference = build_reference(
        version.features,
        rows,
        "uploaded",
        now,
        predictions=predictions,
        scores=scores,
        task=version.task,
    )
    if outcomes is not None:
        assert predictions is not None and actuals is not None
        groups = reference_groups(
            version.task,
            version.positive_label,
            effective_segments(version.segments, version.sensitive_attributes),
            version.segment_cross,
            rows,
            predictions,
            scores,
            actuals,
        )
        segments = [
            ReferenceSegment(segment=segment, group=group, state=window.to_bytes())
            for (segment, group), window in sorted(groups.items())
        ]
        update = {"performance": outcomes.to_bytes(), "segments": segments}
        reference = reference.model_copy(update=update)
    return reference, []


def with_new_reference(
    version: ModelVersion, reference: ReferenceProfile, now: datetime
) -> ModelVersion:
    """The version with ``reference`` numbered after its current one, and the change recorded."""
    number = version.reference.version + 1 if version.reference else 1
    history = [
        h if h.replaced_at is not None else h.model_copy(update={"replaced_at": now})
        for h in version.reference_history
    ]
    history.append(
        ReferenceChange(
            version=number, source=reference.source, row_count=reference.row_count, created_at=now
        )
    )
    update = {
        "reference": reference.model_copy(update={"version": number}),
        "reference_history": history,
        "updated_at": now,
    }
    return version.model_copy(update=update)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def revision(version: ModelVersion) -> str:
    """The version's ETag: when it last changed (microseconds) and its reference's number.

    Every write moves ``updated_at`` forward (``update_time``), so each one changes it, and
    it is read from the record itself: every replica computes the same one.
    """
    micros = (version.updated_at - EPOCH) // timedelta(microseconds=1)
    number = version.reference.version if version.reference else 0
    return f'"{micros}-{number}"'


def update_time(current: ModelVersion, now: datetime) -> datetime:
    """When an update of ``current`` happens: ``now``, or just after its last change if later."""
    return max(now, current.updated_at + timedelta(microseconds=1))


def revision_conflict(current: ModelVersion, if_match: str | None) -> FieldError | None:
    """Why an ``If-Match`` header does not name the current revision, or None if it does.

    No header matches (the update is serialised, not checked), as does ``*``; the comparison
    is strong, so a weak tag (``W/"..."``) never matches.
    """
    if if_match is None:
        return None
    etag = revision(current)
    tags = [tag.strip() for tag in if_match.split(",")]
    if any(tag in ("*", etag) or f'"{tag}"' == etag for tag in tags):
        return None
    return FieldError("If-Match", etag, if_match[:200])


def model_summary(model_id: str, versions: Sequence[ModelVersion], now: datetime) -> dict[str, Any]:
    """A model as listed: owner, purpose, task and risk tier of its latest version, and versions
    with their team, risk assessment and whether its reassessment is overdue at ``now``."""
    latest = versions[-1]
    return {
        "model_id": model_id,
        "owner": latest.owner,
        "purpose": latest.purpose,
        "task": latest.task,
        "severity": latest.risk.severity,
        "versions": [
            {
                "version": v.version,
                "status": v.status,
                "reference": v.reference.source if v.reference else None,
                "created_at": v.created_at,
                "team": v.team,
                "risk": v.risk,
                "reassessment_overdue": is_overdue(v.risk, now),
            }
            for v in versions
        ],
    }


def reference_summary(version: ModelVersion) -> dict[str, Any]:
    """What a reference upload answers: the new reference's number, size, labelled rows (its
    outcomes: rows with a prediction and an actual), features and history."""
    assert version.reference is not None
    performance = version.reference.performance
    return {
        "model_id": version.model_id,
        "version": version.version,
        "reference_version": version.reference.version,
        "row_count": version.reference.row_count,
        "labelled": WindowPerformance.from_bytes(performance).labelled if performance else 0,
        "features": [f.name for f in version.reference.features],
        "history": version.reference_history,
    }


def with_drift_config(
    version: ModelVersion, config: DriftConfig, now: datetime
) -> tuple[ModelVersion, list[FieldError]]:
    """The version with new drift settings, or why they do not fit its features."""
    names = {f.name for f in version.features} | set(OUTPUTS)
    errors = [
        FieldError(
            f"feature_thresholds.{name}",
            "a feature of the model version, 'prediction' or 'score'",
            repr(name),
        )
        for name in config.feature_thresholds
        if name not in names
    ]
    if errors:
        return version, errors
    return version.model_copy(update={"drift": config, "updated_at": now}), []


def registration_errors(
    registration: ModelRegistration, registered: Sequence[ModelVersion], now: datetime
) -> list[FieldError]:
    """What is wrong with a registration's lineage (given the model's ``registered``
    versions) and risk assessment (at ``now``)."""
    names = {v.version for v in registered}
    return [
        *lineage_errors(registration.lineage, registration.version, names, registration.model_id),
        *risk_errors(registration.risk, now, "risk."),
    ]
