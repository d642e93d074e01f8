"""Alerting logic: one alert per problem, resolved when it ends, routed by model and severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerting.grouping import groups_for
from alerting.handlers import evaluate
from alerting.subscriptions import Notification, Subscription, webhook_body
from tests.samples import REPORT
from vigil.wire.records import WindowReport

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _report(drifted: bool) -> WindowReport:
    feature = REPORT.features[0].model_copy(update={"drifted": drifted})
    return REPORT.model_copy(update={"features": [feature]})


def _sub(models: list[str], min_severity: str = "low") -> Subscription:
    return Subscription.model_validate(
        {
            "id": "s",
            "name": "oncall",
            "channel": "webhook",
            "url": "http://hooks.test/x",
            "models": models,
            "min_severity": min_severity,
            "created_at": NOW,
        }
    )


def test_drift_fires_once_then_stays_quiet_then_resolves() -> None:
    (fired,) = evaluate(_report(True), "high", {}, NOW)
    assert (fired.status, fired.severity, fired.feature) == ("firing", "high", "income")
    assert evaluate(_report(True), "high", {fired.fingerprint: fired}, NOW) == []
    (resolved,) = evaluate(_report(False), "high", {fired.fingerprint: fired}, NOW)
    assert (resolved.status, resolved.fingerprint, resolved.ends_at) == (
        "resolved",
        fired.fingerprint,
        NOW,
    )
    assert evaluate(_report(False), "high", {fired.fingerprint: resolved}, NOW) == []


def test_a_stale_report_arriving_late_changes_nothing() -> None:
    later = _report(True).model_copy(
        update={"window_start": REPORT.window_start + timedelta(minutes=5)}
    )
    (fired,) = evaluate(later, "high", {}, NOW)
    assert evaluate(_report(False), "high", {fired.fingerprint: fired}, NOW) == []


def test_an_acknowledged_alert_is_not_sent_again() -> None:
    (fired,) = evaluate(_report(True), "low", {}, NOW)
    acked = fired.model_copy(update={"status": "acknowledged"})
    assert evaluate(_report(True), "low", {fired.fingerprint: acked}, NOW) == []


def test_routing_by_model_and_minimum_severity() -> None:
    (alert,) = evaluate(_report(True), "medium", {}, NOW)
    subs = [_sub(["*"]), _sub(["credit-risk"], "high"), _sub(["other"]), _sub(["credit-risk"])]
    subs = [s.model_copy(update={"id": f"s{i}"}) for i, s in enumerate(subs)]
    routed = groups_for(subs, [alert])
    assert [s for s, _ in routed.values()] == [subs[0], subs[3]]


def test_webhook_body_carries_what_on_call_needs() -> None:
    (alert,) = evaluate(_report(True), "critical", {}, NOW)
    (item,) = webhook_body(Notification.of(_sub(["*"]), [alert]))["alerts"]
    for key in (
        "fingerprint",
        "status",
        "severity",
        "model_id",
        "model_version",
        "rule",
        "feature",
        "summary",
        "details",
        "startsAt",
    ):
        assert key in item
    assert (item["fingerprint"], item["status"], item["severity"], item["feature"]) == (
        alert.fingerprint,
        "firing",
        "critical",
        alert.feature,
    )
