"""Inhibition: each default rule, ``equal`` labels, and the worker recording inhibited changes
without sending them (a resolution is always sent)."""

from __future__ import annotations

from datetime import timedelta

from alerting.grouping import said
from alerting.history import settle
from alerting.inhibition import (
    DATA_QUALITY_RULES,
    DRIFT_RULES,
    TRAFFIC_RULES,
    InhibitRule,
    active_sources,
    inhibited_by,
)
from alerting.rules import fingerprint
from alerting.subscriptions import Subscription
from alerting.worker import Alerter
from tests.samples import ALERT, MODEL, REPORT, T0
from tests.unit.fakes import AT_ONCE, FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier, pump
from vigil.wire.matchers import Matcher
from vigil.wire.records import Alert, FeatureDrift, Severity


def _alert(
    rule: str,
    feature: str | None = None,
    version: str = "1.0.0",
    severity: Severity = "high",
    fp: str | None = None,
    **more: object,
) -> Alert:
    return ALERT.model_copy(
        update={
            "fingerprint": fp or fingerprint("credit-risk", version, rule, feature),
            "rule": rule,
            "feature": feature,
            "model_version": version,
            "severity": severity,
            "labels": {},
            **more,
        }
    )


DATASET = _alert("dataset_drift", severity="critical")
SILENT = _alert("model_silent")


def test_dataset_drift_inhibits_the_same_versions_feature_drift() -> None:
    for rule in ("feature_drift", "sequential_drift"):
        assert inhibited_by(_alert(rule, "income"), [DATASET]) == DATASET.fingerprint
    assert inhibited_by(_alert("missing_rate", "income"), [DATASET]) is None
    assert inhibited_by(_alert("output_drift", "score"), [DATASET]) is None
    assert inhibited_by(_alert("feature_drift", "income", version="2.0.0"), [DATASET]) is None
    other_model = _alert("feature_drift", "income", model_id="fraud")
    assert inhibited_by(other_model, [DATASET]) is None


def test_model_silent_inhibits_drift_data_quality_and_traffic() -> None:
    for rule in (*DRIFT_RULES, *DATA_QUALITY_RULES, *TRAFFIC_RULES):
        assert inhibited_by(_alert(rule, "income"), [SILENT]) == SILENT.fingerprint, rule
    assert inhibited_by(_alert("late_rate"), [SILENT]) is None
    assert inhibited_by(_alert("income-gaps", "income"), [SILENT]) is None
    assert inhibited_by(_alert("event_count_drop", version="2.0.0"), [SILENT]) is None


def test_a_higher_severity_inhibits_a_lower_one_about_the_same_subject() -> None:
    low = _alert("feature_drift", "income", severity="medium", fp="a")
    high = _alert("feature_drift", "income", severity="critical", fp="b")
    assert inhibited_by(low, [high]) == "b"
    assert inhibited_by(high, [low]) is None
    assert inhibited_by(low, [high.model_copy(update={"severity": "medium"})]) is None
    assert inhibited_by(low, [high.model_copy(update={"feature": "age"})]) is None
    assert inhibited_by(low, [high.model_copy(update={"rule": "sequential_drift"})]) is None


def test_nothing_inhibits_itself_a_resolution_or_with_a_resolved_source() -> None:
    feature = _alert("feature_drift", "income", severity="low")
    earlier = feature.model_copy(update={"severity": "critical"})
    assert inhibited_by(feature, [earlier]) is None  # its own earlier state
    assert inhibited_by(feature.model_copy(update={"status": "resolved"}), [DATASET]) is None
    assert inhibited_by(feature, [DATASET.model_copy(update={"status": "resolved"})]) is None
    acknowledged = DATASET.model_copy(update={"status": "acknowledged"})
    assert inhibited_by(feature, [acknowledged]) == DATASET.fingerprint


def test_equal_labels_compare_values_and_a_missing_label_is_empty() -> None:
    rule = InhibitRule(
        name="outage",
        source=[Matcher(name="alertname", value="outage")],
        target=[Matcher(name="team", value=".+", op="=~")],
        equal=["team", "region"],
    )
    outage = _alert("x", fp="o", labels={"alertname": "outage", "team": "risk"})
    target = _alert("feature_drift", "income", labels={"team": "risk"})
    assert inhibited_by(target, [outage], [rule]) == "o"
    in_eu = target.model_copy(update={"labels": {"team": "risk", "region": "eu"}})
    assert inhibited_by(in_eu, [outage], [rule]) is None
    other_team = target.model_copy(update={"labels": {"team": "fraud"}})
    assert inhibited_by(other_team, [outage], [rule]) is None
    # The about-labels cannot be overridden: a source saying it is another model is not.
    rule_by_model = rule.model_copy(update={"equal": ["model_id"]})
    other_model = outage.model_copy(update={"model_id": "fraud"})
    assert inhibited_by(target, [other_model], [rule_by_model]) is None
    assert inhibited_by(target, [outage], [rule_by_model]) == "o"


def test_an_alert_matching_both_sides_is_not_inhibited_by_one_that_does_too() -> None:
    rule = InhibitRule(
        name="any",
        source=[Matcher(name="rule", value=".*drift", op="=~")],
        target=[Matcher(name="rule", value=".*drift", op="=~")],
        equal=["model_id"],
    )
    feature = _alert("feature_drift", "income")
    assert inhibited_by(feature, [DATASET], [rule]) is None
    assert inhibited_by(feature, [SILENT], [rule]) is None


def test_settled_inhibited_changes_are_recorded_not_told_and_resolutions_are() -> None:
    feature = _alert("feature_drift", "income")
    sources = active_sources([DATASET], [feature])
    (settled,) = settle([feature], {}, [], T0, sources)
    assert (settled.inhibited_by, said(settled, [], T0)) == (DATASET.fingerprint, None)
    resolved = feature.model_copy(update={"status": "resolved", "inhibited_by": "x"})
    assert said(resolved, [], T0) == "resolved"
    ended = active_sources([DATASET], [DATASET.model_copy(update={"status": "resolved"})])
    (sent,) = settle([feature], {}, [], T0, ended)
    assert (sent.inhibited_by, said(sent, [], T0)) == (None, f"firing:{sent.severity}")


def _drifted(name: str) -> FeatureDrift:
    return REPORT.features[0].model_copy(update={"feature": name, "missing": 0})


async def test_a_dataset_drift_report_sends_only_the_dataset_drift_alert() -> None:
    store, bus, notifier = FakeAlertStore(), FakeBus(), FakeNotifier()
    sub = Subscription.model_validate(
        {
            "id": "s",
            "name": "oncall",
            "channel": "webhook",
            "url": "http://hooks.test/x",
            "models": ["*"],
            "created_at": T0,
        }
    )
    await store.add_subscription(sub)
    alerter = Alerter(bus, FakeCatalog([MODEL]), store, notifier, timing=AT_ONCE)
    features = [_drifted("income"), _drifted("region")]
    report = REPORT.model_copy(
        update={
            "features": features,
            "drifted_features": ["income", "region"],
            "dataset_drift": True,
            "drift_share": 1.0,
        }
    )
    recorded = await alerter.handle_report(report)
    dataset = fingerprint("credit-risk", "1.0.0", "dataset_drift", None)
    assert sorted((a.rule, a.feature, a.status, a.inhibited_by) for a in recorded) == [
        ("dataset_drift", None, "firing", None),
        ("feature_drift", "income", "firing", dataset),
        ("feature_drift", "region", "firing", dataset),
    ]
    await pump(alerter.dispatcher)
    assert [[a.fingerprint for a in alerts] for _, alerts in notifier.sent] == [[dataset]]
    # Every change, inhibited or not, is a state event on the record.
    recorded_states = {
        e.fingerprint: e.alert
        for events in store.history_by_fingerprint.values()
        for e in events
        if e.kind == "state"
    }
    assert recorded_states == {a.fingerprint: a for a in recorded}

    # The drift ends: the dataset drift's resolution is sent; the feature alerts were never
    # told, so neither are their resolutions (they are recorded).
    calm = [f.model_copy(update={"drifted": False}) for f in features]
    later = report.model_copy(
        update={
            "window_start": T0 + timedelta(minutes=1),
            "window_end": T0 + timedelta(minutes=2),
            "features": calm,
            "drifted_features": [],
            "dataset_drift": False,
            "drift_share": 0.0,
        }
    )
    notifier.sent.clear()
    resolved = await alerter.handle_report(later)
    await pump(alerter.dispatcher)
    sent = [a for _, alerts in notifier.sent for a in alerts]
    assert sorted((a.rule, a.feature, a.status) for a in sent) == [
        ("dataset_drift", None, "resolved"),
    ]
    assert {a.status for a in resolved} == {"resolved"} and len(resolved) == 3
