"""Alerting logic: window reports -> alert state changes -> who to tell. No I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl

from vigil.wire.records import Alert, FeatureDrift, Severity, WindowReport
from vigil.wire.shapes import Name, is_identifier

__all__ = [
    "ALL_MODELS",
    "FEATURE_DRIFT",
    "MAX_MODELS",
    "SEVERITY_RANK",
    "ModelRef",
    "Subscription",
    "SubscriptionIn",
    "evaluate",
    "fingerprint",
    "in_utc",
    "route",
    "webhook_body",
]

FEATURE_DRIFT = "feature_drift"
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ALL_MODELS = "*"
MAX_MODELS = 1000  # model ids one subscription names


def _model_ref(value: str) -> str:
    if value != ALL_MODELS and not is_identifier(value):
        raise ValueError(
            "a model id (1 to 128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or"
            ' digit) or "*"'
        )
    return value


ModelRef = Annotated[str, AfterValidator(_model_ref)]


class SubscriptionIn(BaseModel):
    """Who wants to hear about which models, from which severity up."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    channel: Literal["webhook"]
    url: HttpUrl
    models: list[ModelRef] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f'Model ids, or ["*"] for every model (at most {MAX_MODELS}).',
    )
    min_severity: Severity = "low"


class Subscription(SubscriptionIn):
    """A stored subscription, read as it was written: one an earlier release stored with a
    longer name or model ids it did not check still loads (and matches real model ids only)."""

    name: str
    models: list[str]
    id: str
    created_at: datetime

    def wants(self, alert: Alert) -> bool:
        """Whether this subscription is told about ``alert``."""
        model_ok = ALL_MODELS in self.models or alert.model_id in self.models
        return model_ok and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]


def fingerprint(model_id: str, model_version: str, rule: str, feature: str | None) -> str:
    """Stable id of what an alert is about; repeats of the same problem share it."""
    text = "\x1f".join([model_id, model_version, rule, feature or ""])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def evaluate(
    report: WindowReport,
    severity: Severity,
    current: Mapping[str, Alert],
    now: datetime,
) -> list[Alert]:
    """The alerts that change because of ``report``: new drift fires, ended drift resolves.

    A feature that keeps drifting keeps its one firing (or acknowledged) alert: no repeat.
    A report older than the one an alert last changed on is stale and changes nothing.
    ``current`` holds the existing alerts of the report's model version by fingerprint.
    """
    report = in_utc(report)
    changes = []
    for feature in report.features:
        fp = fingerprint(report.model_id, report.model_version, FEATURE_DRIFT, feature.feature)
        existing = current.get(fp)
        if existing is not None and _window_of(existing) > report.window_start:
            continue
        active = existing is not None and existing.status != "resolved"
        if feature.drifted and not active:
            changes.append(_fired(report, feature, fp, severity, now))
        elif not feature.drifted and active and existing is not None:
            changes.append(_resolved(report, feature, existing, now))
    return changes


def _utc(moment: datetime) -> datetime:
    """``moment`` with its zone; a time without one is UTC (as Avro's timestamps are)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def in_utc(report: WindowReport) -> WindowReport:
    """``report`` with every time zone-aware: a JSON report may omit the zone, meaning UTC."""
    times = {n: _utc(getattr(report, n)) for n in ("window_start", "window_end", "created_at")}
    return report.model_copy(update=times)


def _statistic(feature: FeatureDrift) -> float:
    return feature.statistics.get(feature.drift_statistic, float("nan"))


def _details(report: WindowReport, feature: FeatureDrift) -> dict[str, str]:
    """What an alert says about the window that changed it."""
    return {
        "statistic": feature.drift_statistic,
        "value": f"{_statistic(feature):.4f}",
        "threshold": f"{feature.threshold:.4f}",
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
        "events": str(report.event_count),
        "report_id": report.report_id,
    }


def _fired(
    report: WindowReport, feature: FeatureDrift, fp: str, severity: Severity, now: datetime
) -> Alert:
    """A new firing alert: ``feature`` drifts in ``report``."""
    return Alert(
        fingerprint=fp,
        status="firing",
        severity=severity,
        model_id=report.model_id,
        model_version=report.model_version,
        rule=FEATURE_DRIFT,
        feature=feature.feature,
        summary=(
            f"{report.model_id} {report.model_version}: feature "
            f"{feature.feature!r} drifted ({feature.drift_statistic} "
            f"{_statistic(feature):.3f} > {feature.threshold:.3f})"
        ),
        details=_details(report, feature),
        labels={"model_id": report.model_id, "feature": feature.feature},
        starts_at=now,
        updated_at=now,
    )


def _resolved(report: WindowReport, feature: FeatureDrift, existing: Alert, now: datetime) -> Alert:
    """``existing`` resolved: ``feature`` no longer drifts in ``report``."""
    return existing.model_copy(
        update={
            "status": "resolved",
            "ends_at": now,
            "updated_at": now,
            "details": _details(report, feature),
            "summary": f"{report.model_id} {report.model_version}: feature "
            f"{feature.feature!r} no longer drifts",
        }
    )


def _window_of(alert: Alert) -> datetime:
    """Start of the window whose report last changed ``alert``."""
    return _utc(datetime.fromisoformat(alert.details["window_start"]))


def route(
    subscriptions: Iterable[Subscription], alerts: Sequence[Alert]
) -> list[tuple[Subscription, list[Alert]]]:
    """Each subscription with the alerts it wants, grouped so it gets one message per report."""
    routed = []
    for sub in subscriptions:
        wanted = [a for a in alerts if sub.wants(a)]
        if wanted:
            routed.append((sub, wanted))
    return routed


def webhook_body(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The JSON a webhook receives."""
    return {"alerts": [a.model_dump(mode="json") for a in alerts]}
