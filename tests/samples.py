"""Sample records of every wire type, shared by the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.wire.access import ApiKey, AuditEvent
from vigil.wire.alert_events import AlertEvent, LabelMatcher, Silence
from vigil.wire.environments import EnvironmentReport
from vigil.wire.joins import JoinEntry
from vigil.wire.performance import (
    BusinessValue,
    ConfusionMatrix,
    PerformancePartial,
    PerformanceReport,
)
from vigil.wire.records import (
    Alert,
    FeatureDrift,
    FeatureProfile,
    FeatureSpec,
    FeedbackEvent,
    Lineage,
    ModelVersion,
    Outcome,
    PredictionEvent,
    Record,
    ReferenceProfile,
    RiskAssessment,
    TrafficReport,
    WindowReport,
)

T0 = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

PREDICTION = PredictionEvent(
    prediction_id="p-1",
    model_id="credit-risk",
    model_version="1.0.0",
    timestamp=T0,
    features={"income": 52_000.5, "age": 41, "region": "eu", "vip": True, "notes": None},
    prediction=True,
    score=0.83,
    tags={"variant": "champion"},
    sample_rate=0.5,
)
FEEDBACK = FeedbackEvent(
    feedback_id="f-1",
    prediction_id="p-1",
    model_id="credit-risk",
    actual=False,
    flag="incorrect",
    comment="declined a good customer",
    reviewer="ana",
    source="sme",
    timestamp=T0,
)
MODEL = ModelVersion(
    model_id="credit-risk",
    version="1.0.0",
    task="binary",
    features=[
        FeatureSpec(name="income", type="numeric", min=0, max=1e6),
        FeatureSpec(name="region", type="categorical", categories=["eu", "us"]),
    ],
    positive_label="default",
    owner="risk-team",
    purpose="loan approval",
    risk=RiskAssessment(probability=3, impact=4, severity="high"),
    sensitive_attributes=["age"],
    business_costs={"false_positive": 5.0, "false_negative": 50.0},
    business_value=BusinessValue(
        currency="EUR", true_positive=120.0, false_positive=-40.0, false_negative=-2000.0
    ),
    lineage=Lineage(training_data="s3://bucket/train.parquet", code_version="abc123"),
    status="challenger",
    reference=ReferenceProfile(
        source="uploaded",
        row_count=3,
        created_at=T0,
        features=[
            FeatureProfile(
                name="income",
                type="numeric",
                count=3,
                missing=0,
                bin_edges=[1.0, 2.0],
                bin_counts=[1, 1, 1],
                mean=2.0,
                std=0.8,
                min=1.0,
                max=3.0,
            ),
            FeatureProfile(
                name="region",
                type="categorical",
                count=3,
                missing=1,
                categories=["eu"],
                category_counts=[2, 0],
            ),
        ],
    ),
    created_at=T0,
    updated_at=T0,
)
REPORT = WindowReport(
    report_id="credit-risk/1.0.0/1",
    model_id="credit-risk",
    model_version="1.0.0",
    window_start=T0,
    window_end=T0,
    event_count=1000,
    reference_source="production",
    features=[
        FeatureDrift(
            feature="income",
            type="numeric",
            count=1000,
            missing=3,
            out_of_range=2,
            statistics={"psi": 0.31},
            drift_statistic="psi",
            threshold=0.2,
            drifted=True,
        )
    ],
    drifted_features=["income"],
    dataset_drift=False,
    created_at=T0,
)
TRAFFIC = TrafficReport(
    report_id=f"credit-risk/1.0.0/traffic/{int(T0.timestamp()) * 1_000_000}",
    model_id="credit-risk",
    model_version="1.0.0",
    window_start=T0.replace(microsecond=0),
    window_end=T0 + timedelta(seconds=30),
    event_count=1000,
    last_event_time=T0 - timedelta(minutes=2),
    created_at=T0 + timedelta(seconds=30),
)
PERFORMANCE = PerformanceReport(
    report_id=f"credit-risk/1.0.0/performance/{int(T0.timestamp()) * 1_000_000}",
    model_id="credit-risk",
    model_version="1.0.0",
    window_start=T0.replace(microsecond=0),
    window_end=T0.replace(microsecond=0) + timedelta(hours=1),
    revision=2,
    task="binary",
    predictions=1000,
    labelled=250,
    label_coverage=0.25,
    label_latency_p50_seconds=3600.0,
    label_latency_p95_seconds=86400.0,
    orphaned=3,
    metrics={"accuracy": 0.9, "roc_auc": 0.85},
    estimated={"accuracy": 0.88},
    reference_metrics={"accuracy": 0.92},
    metrics_low={"accuracy": 0.86, "roc_auc": 0.8},
    metrics_high={"accuracy": 0.93, "roc_auc": 0.9},
    degraded=["roc_auc"],
    reference_window_start=T0.replace(microsecond=0) - timedelta(hours=5),
    confusion_matrix=ConfusionMatrix(labels=["negative", "positive"], rows=[[200, 5], [20, 25]]),
    value=-120.5,
    value_per_prediction=-0.482,
    reference_value_per_prediction=-0.3,
    estimated_value=-500.0,
    currency="EUR",
    created_at=T0 + timedelta(hours=2),
)
ALERT = Alert(
    fingerprint="abc",
    status="firing",
    severity="critical",
    model_id="credit-risk",
    model_version="1.0.0",
    rule="feature_drift",
    feature="income",
    summary="income drifted",
    details={"psi": "0.31"},
    labels={"team": "risk"},
    starts_at=T0,
    ends_at=None,
    updated_at=T0,
)
SILENCE = Silence(
    id="s-1",
    matchers=[
        LabelMatcher(name="model_id", value="credit-risk"),
        LabelMatcher(name="feature", value="inc.*", op="=~"),
    ],
    starts_at=T0,
    ends_at=T0 + timedelta(hours=2),
    comment="retraining",
    created_by="ana",
    expired_at=T0 + timedelta(hours=1),
)
ALERT_EVENT = AlertEvent(
    event_id="e-7",
    time=T0,
    kind="ack",
    fingerprint="abc",
    alert=ALERT.model_copy(
        update={
            "status": "acknowledged",
            "acknowledged_by": "ana",
            "acknowledged_at": T0,
            "silenced_by": "s-1",
            "inhibited_by": "def",
        }
    ),
    silence=SILENCE,
    subscription_id="sub-1",
    channel="webhook",
    delivery_id="d-1",
    outcome="delivered",
    status_code=200,
    latency_ms=12.5,
    error="none",
    actor="ana",
    comment="looking",
)
SAMPLES: dict[type[Record], Record] = {
    EnvironmentReport: EnvironmentReport(
        model_id="credit-risk",
        model_version="1.0.0",
        host="web-1",
        python="3.11.9",
        packages={"scikit-learn": "1.5.2", "numpy": "2.1.3"},
        reported_at=T0,
        sdk="0.1.0",
    ),
    PredictionEvent: PREDICTION,
    FeedbackEvent: FEEDBACK,
    Outcome: Outcome(prediction=PREDICTION, feedback=FEEDBACK, joined_at=T0, replaces=FEEDBACK),
    JoinEntry: JoinEntry(
        prediction=PREDICTION,
        label=FEEDBACK,
        label_joined=True,
        seen_feedback=["f-1"],
        waiting=[FEEDBACK],
        first_seen=T0,
    ),
    ModelVersion: MODEL,
    WindowReport: REPORT,
    TrafficReport: TRAFFIC,
    PerformanceReport: PERFORMANCE,
    PerformancePartial: PerformancePartial(
        model_id="credit-risk",
        model_version="1.0.0",
        window_start=T0.replace(microsecond=0),
        window_end=T0.replace(microsecond=0) + timedelta(hours=1),
        revision=3,
        state=b"state",  # ASCII, so that the JSON round trip holds too
    ),
    Alert: ALERT,
    AlertEvent: ALERT_EVENT,
    Silence: SILENCE,
    ApiKey: ApiKey(
        id="0123456789abcdef",
        principal="credit-app",
        roles=["producer"],
        models=["credit-risk"],
        key_hash="ab" * 32,
        created_at=T0,
        created_by="admin",
        expires_at=T0 + timedelta(days=90),
    ),
    AuditEvent: AuditEvent(
        event_id="e-1",
        time=T0,
        service="registry",
        key_id="0123456789abcdef",
        principal="ana",
        roles=["data_scientist"],
        action="PUT /v1/models/{model_id}/versions/{version}/drift",
        resource="/v1/models/credit-risk/versions/1.0.0/drift",
        model_id="credit-risk",
        status=200,
        request_id="r-1",
    ),
}


def one_feature_model(model_id: str, version: str = "1") -> dict[str, object]:
    """A registration body for a low-risk model with one numeric feature, ``x``."""
    return {
        "model_id": model_id,
        "version": version,
        "task": "regression",
        "features": [{"name": "x", "type": "numeric"}],
        "risk": {"probability": 1, "impact": 1},
        "owner": "tests",
    }


def loan_model(model_id: str) -> dict[str, object]:
    """A registration body for a binary loan model of two features, ``income`` and ``region``."""
    return {
        "model_id": model_id,
        "version": "1.0.0",
        "task": "binary",
        "features": [
            {"name": "income", "type": "numeric"},
            {"name": "region", "type": "categorical"},
        ],
        "risk": {"probability": 3, "impact": 4},
        "owner": "risk-team",
        "purpose": "loan approval",
    }


def report_at(model_id: str, minute: int, drifted: bool) -> WindowReport:
    """REPORT for ``model_id``'s window ``minute`` minutes later, its one feature drifted or not."""
    feature = REPORT.features[0].model_copy(update={"drifted": drifted})
    start = REPORT.window_start + timedelta(minutes=minute)
    return REPORT.model_copy(
        update={
            "model_id": model_id,
            "report_id": f"{model_id}/1.0.0/{minute}",
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "features": [feature],
            "drifted_features": [feature.feature] if drifted else [],
        }
    )
