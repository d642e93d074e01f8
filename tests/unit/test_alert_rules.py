"""Alert rules: the tier defaults, overrides, and the rule engine's streaks and baselines."""

from __future__ import annotations

import doctest
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import vigil.wire.rule_defaults
import vigil.wire.rules
from alerting.handlers import fingerprint
from alerting.rules import RuleState, evaluate_rules, in_utc
from tests.samples import PERFORMANCE, REPORT, TRAFFIC
from vigil.wire.environments import EnvironmentCheck, EnvironmentReport
from vigil.wire.flag_reports import FlaggedItem, FlagReport
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import (
    Alert,
    AlertRule,
    Environment,
    MultivariateDrift,
    Severity,
    TrafficReport,
    WindowReport,
)
from vigil.wire.rules import (
    SEVERITIES,
    SIGNALS,
    Report,
    Signal,
    SilenceCheck,
    default_rules,
    effective_rules,
    rule_errors,
)
from vigil.wire.segment_reports import FairnessMeasure, FairnessReport

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _rule(**fields: Any) -> AlertRule:
    base: dict[str, Any] = {"name": "r", "signal": "missing_rate", "condition": "above"}
    return AlertRule.model_validate({**base, "threshold": 0.1, "severity": "high", **fields})


def _report(minute: int, events: int = 1000, missing: int = 0, **more: Any) -> WindowReport:
    feature = REPORT.features[0].model_copy(update={"missing": missing, "drifted": False})
    start = REPORT.window_start + timedelta(minutes=minute)
    fields = {"window_start": start, "window_end": start, "event_count": events, **more}
    return REPORT.model_copy(update={"features": [feature], **fields})


def _traffic(
    interval: int, events: int, seconds: float = 30, dead_lettered: int = 0
) -> TrafficReport:
    """The traffic of the ``interval``-th interval of 30 s after the sample's."""
    start = TRAFFIC.window_start + timedelta(seconds=30 * interval)
    end = start + timedelta(seconds=seconds)
    update = {"window_start": start, "window_end": end, "event_count": events}
    return TRAFFIC.model_copy(update={**update, "dead_lettered": dead_lettered})


class Run:
    """Reports fed in order through the engine, with its state and the alerts kept between
    them as the worker keeps them."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self.rules = rules
        self.state = RuleState()
        self.alerts: dict[str, Alert] = {}

    def feed(self, report: Report) -> list[Alert]:
        changes, self.state = evaluate_rules(report, self.rules, self.state, self.alerts, NOW)
        self.alerts.update({a.fingerprint: a for a in changes})
        return changes


def test_the_module_examples_run() -> None:
    assert doctest.testmod(vigil.wire.rules).failed == 0
    assert doctest.testmod(vigil.wire.rule_defaults).failed == 0


@pytest.mark.parametrize("tier", SEVERITIES)
def test_every_default_rule_watches_a_known_signal_and_is_valid(tier: Severity) -> None:
    rules = default_rules(tier)
    assert all(r.signal in SIGNALS and r.severity is not None for r in rules)
    assert rule_errors(rules, ["income"]) == []


def test_riskier_tiers_alert_earlier_and_louder() -> None:
    by_tier = [{r.name: r for r in default_rules(t)} for t in SEVERITIES]
    for lower, higher in itertools.pairwise(by_tier):
        for name, rule in higher.items():
            assert rule.condition != "above" or rule.threshold <= lower[name].threshold
            assert SEVERITIES.index(rule.severity or "low") >= SEVERITIES.index(
                lower[name].severity or "low"
            )
    assert by_tier[0]["missing_rate"].threshold > by_tier[3]["missing_rate"].threshold
    escalated = [t["dataset_drift"].severity for t in by_tier]
    assert escalated == ["medium", "high", "critical", "critical"]  # one level up, capped


def test_overrides_replace_disable_and_add_rules_by_name() -> None:
    overrides = [
        _rule(name="missing_rate", threshold=0.2, severity=None),
        _rule(name="feature_drift", signal="feature_drift", threshold=0.5, enabled=False),
        _rule(name="income-quality", features=["income"]),
    ]
    rules = {r.name: r for r in effective_rules("low", overrides)}
    assert "feature_drift" not in rules
    assert (rules["missing_rate"].threshold, rules["missing_rate"].severity) == (0.2, "low")
    assert rules["income-quality"].severity == "high"
    assert "dataset_drift" in rules


def test_the_default_rules_raise_one_feature_drift_alert_and_nothing_else() -> None:
    run = Run(effective_rules("high", []))
    drifted = REPORT.features[0].model_copy(update={"drifted": True})
    (fired,) = run.feed(_report(0, features=[drifted]))
    assert (fired.rule, fired.feature, fired.severity, fired.status) == (
        "feature_drift",
        "income",
        "high",
        "firing",
    )
    # The fingerprint of earlier releases: alerts stored before the upgrade still resolve.
    assert fired.fingerprint == fingerprint("credit-risk", "1.0.0", "feature_drift", "income")
    assert fired.labels == {
        "model_id": "credit-risk",
        "model_version": "1.0.0",
        "rule": "feature_drift",
        "signal": "feature_drift",
        "severity": "high",
        "feature": "income",
    }
    assert fired.details["statistic"] == "psi" and fired.details["statistic_value"] == "0.3100"
    assert "psi 0.3100 > 0.2000" in fired.summary
    (resolved,) = run.feed(_report(1))
    assert (resolved.status, resolved.fingerprint) == ("resolved", fired.fingerprint)


def test_a_rule_fires_after_for_windows_consecutive_reports_and_resolves_when_it_ends() -> None:
    run = Run([_rule(threshold=0.01, for_windows=2)])
    assert run.feed(_report(0, missing=50)) == []
    assert run.feed(_report(1, missing=0)) == []  # the streak is broken
    assert run.feed(_report(2, missing=50)) == []
    (fired,) = run.feed(_report(3, missing=60))
    assert (fired.rule, fired.feature, fired.status) == ("r", "income", "firing")
    assert fired.details["signal"] == "missing_rate" and fired.details["value"] == "0.06"
    assert fired.details["threshold"] == "0.01"
    assert run.feed(_report(4, missing=60)) == []  # still holds: no repeat
    (resolved,) = run.feed(_report(5, missing=0))
    assert resolved.status == "resolved" and resolved.ends_at == NOW


def test_a_drop_against_the_trailing_baseline_fires_only_once_there_is_a_baseline() -> None:
    rule = _rule(signal="event_count", condition="change_below", threshold=-0.5)
    run = Run([rule.model_copy(update={"baseline_windows": 3, "for_windows": 2})])
    assert run.feed(_report(0, events=100)) == []  # no baseline yet, however low
    assert [run.feed(_report(m, events=1000)) for m in (1, 2, 3)] == [[], [], []]
    assert run.feed(_report(4, events=400)) == []  # -60 %: held once
    (fired,) = run.feed(_report(5, events=300))
    assert fired.feature is None
    assert fired.details["baseline"] == "800"  # mean of 1000, 1000, 400
    (resolved,) = run.feed(_report(6, events=900))
    assert resolved.status == "resolved"


def test_a_rise_rule_and_a_below_rule() -> None:
    rise = _rule(name="more", signal="event_count", condition="change_above", threshold=1.0)
    low = _rule(name="few", signal="event_count", condition="below", threshold=10)
    run = Run([rise.model_copy(update={"baseline_windows": 1}), low])
    assert run.feed(_report(0, events=100)) == []
    assert [a.rule for a in run.feed(_report(1, events=250))] == ["more"]
    assert sorted(a.rule + a.status for a in run.feed(_report(2, events=5))) == [
        "fewfiring",
        "moreresolved",
    ]


def test_a_report_handled_twice_counts_once_and_gives_the_same_changes() -> None:
    run = Run([_rule(threshold=0.01, for_windows=2)])
    run.feed(_report(0, missing=50))
    state = run.state
    first, again_state = evaluate_rules(_report(1, missing=50), run.rules, state, {}, NOW)
    # The state was saved but the alert was not (the worker stopped): the same alert again.
    again, after = evaluate_rules(_report(1, missing=50), run.rules, again_state, {}, NOW)
    assert [a.fingerprint for a in again] == [a.fingerprint for a in first] != []
    assert after == again_state
    # And once the alert is stored, handling it again changes nothing.
    stored = {a.fingerprint: a for a in first}
    assert evaluate_rules(_report(1, missing=50), run.rules, after, stored, NOW)[0] == []


def test_a_stale_report_changes_nothing() -> None:
    run = Run([_rule(threshold=0.01)])
    (fired,) = run.feed(_report(5, missing=50))
    before = run.state
    assert run.feed(_report(2, missing=0)) == []
    assert run.state == before
    assert run.alerts[fired.fingerprint].status == "firing"


def test_features_limit_a_per_feature_rule() -> None:
    other = REPORT.features[0].model_copy(update={"feature": "age", "missing": 500})
    income = REPORT.features[0].model_copy(update={"missing": 500})
    report = _report(0, features=[income, other])
    run = Run([_rule(features=["age"])])
    assert [a.feature for a in run.feed(report)] == ["age"]


def test_whole_window_signals() -> None:
    multivariate = MultivariateDrift(
        method="pca", value=2.0, reference=1.0, threshold=1.2, drifted=True
    )
    report = _report(0, dataset_drift=True, multivariate=multivariate, late_events=250)
    rules = [
        _rule(name="d", signal="dataset_drift", threshold=0.5),
        _rule(name="m", signal="multivariate_drift", threshold=0.5),
        _rule(name="late", signal="late_rate", threshold=0.1),
    ]
    changes = Run(rules).feed(report)
    assert {a.rule: a.details["value"] for a in changes} == {"d": "1", "m": "1", "late": "0.2"}


def test_a_rule_of_a_signal_this_release_does_not_know_watches_nothing() -> None:
    assert Run([_rule(signal="accuracy")]).feed(_report(0, missing=900)) == []


def test_a_new_signal_plugs_in_without_touching_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a later report type will: an entry in SIGNALS, and a rule naming it."""
    signal = Signal("share of late events", lambda r: [(None, r.late_events / 100, {})])
    monkeypatch.setitem(SIGNALS, "late_share", signal)
    rule = _rule(name="late", signal="late_share", threshold=0.5)
    assert rule_errors([rule], []) == []
    (fired,) = Run([rule]).feed(_report(0, late_events=70))
    assert (fired.rule, fired.details["signal"]) == ("late", "late_share")


def test_the_state_survives_json_and_unreadable_state_starts_afresh() -> None:
    run = Run([_rule(signal="event_count", condition="change_below", threshold=-0.5)])
    run.feed(_report(0))
    stored = run.state.model_dump(mode="json")
    assert RuleState.load(stored) == run.state
    assert RuleState.load({"streaks": {"x": {"held": "many"}}}) == RuleState()
    assert RuleState.load(None) == RuleState()


def test_the_streaks_of_a_removed_rule_are_forgotten() -> None:
    run = Run([_rule(name="a"), _rule(name="b")])
    run.feed(_report(0, missing=500))
    assert len(run.state.streaks) == 2
    run.rules = [_rule(name="b")]
    run.feed(_report(1, missing=500))
    assert [k.split("\x1f")[0] for k in run.state.streaks] == ["b"]


def test_rule_errors_say_which_field_and_what_was_expected() -> None:
    rules = [
        _rule(signal="accuracy"),
        _rule(name="x", signal="event_count", features=["income"]),
        _rule(name="y", features=["nope"]),
        _rule(name="y"),
    ]
    errors = {e.field: e for e in rule_errors(rules, ["income", "prediction"])}
    assert set(errors) == {"[0].signal", "[1].features", "[2].features", "[3].name"}
    assert "feature_drift" in errors["[0].signal"].expected
    assert errors["[2].features"].received == '"nope"'


SILENCE = SilenceCheck.since("credit-risk", "1.0.0", TRAFFIC.window_end, NOW)
SAMPLE_REPORTS: list[Report] = [REPORT, TRAFFIC, SILENCE, PERFORMANCE]


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_every_signal_reads_its_reports_only(name: str) -> None:
    signal = SIGNALS[name]
    (own,) = [r for r in SAMPLE_REPORTS if type(r) is signal.reads]
    readings = list(signal.readings(own))
    assert all(isinstance(value, float) for _, value, _ in readings)
    assert all((subject is not None) == signal.per_feature for subject, _, _ in readings)
    assert all(list(signal.readings(r)) == [] for r in SAMPLE_REPORTS if r is not own)


def test_traffic_rate_is_events_per_minute_and_an_empty_interval_says_nothing() -> None:
    ((subject, rate, _),) = SIGNALS["traffic_rate"].readings(_traffic(0, 90, seconds=45))
    assert (subject, rate) == (None, 120.0)
    assert list(SIGNALS["traffic_rate"].readings(_traffic(0, 90, seconds=0))) == []
    # Every event received: dead letters are the dead-letter rate's, not a drop in traffic.
    mixed = _traffic(0, 30, seconds=45, dead_lettered=60)
    assert [rate for _, rate, _ in SIGNALS["traffic_rate"].readings(mixed)] == [120.0]


def test_dead_letter_rate_is_the_share_of_received_events_dead_lettered() -> None:
    signal = SIGNALS["dead_letter_rate"]
    ((subject, rate, notes),) = signal.readings(_traffic(0, 75, dead_lettered=25))
    assert (subject, rate) == (None, 0.25)
    assert notes == {"dead_lettered": "25", "received": "100"}
    ((_, every, _),) = signal.readings(_traffic(0, 0, dead_lettered=40))  # none profiled
    assert every == 1.0
    ((_, clean, _),) = signal.readings(_traffic(0, 1000))  # a report of an earlier release
    assert clean == 0.0
    assert list(signal.readings(_traffic(0, 0))) == []  # nothing received: nothing to say
    assert list(signal.readings(REPORT)) == []  # window reports do not carry it


@pytest.mark.parametrize(
    ("tier", "threshold"), [("low", 0.05), ("medium", 0.03), ("high", 0.02), ("critical", 0.01)]
)
def test_the_default_dead_letter_rule_scales_with_the_tier(
    tier: Severity, threshold: float
) -> None:
    (rule,) = [r for r in default_rules(tier) if r.name == "dead_letter_rate"]
    assert (rule.signal, rule.condition, rule.threshold) == ("dead_letter_rate", "above", threshold)
    assert (rule.for_windows, rule.severity) == (3, tier)


def test_dead_letters_page_once_after_three_intervals_and_resolve_when_they_stop() -> None:
    run = Run(effective_rules("low", []))
    assert run.feed(_traffic(0, 1000, dead_lettered=40)) == []  # 3.8 %: under 5 %
    assert run.feed(_traffic(1, 900, dead_lettered=100)) == []  # 10 %: held once
    assert run.feed(_traffic(2, 0, dead_lettered=500)) == []  # every event: twice
    (fired,) = run.feed(_traffic(3, 800, dead_lettered=200))
    assert (fired.rule, fired.status, fired.severity, fired.feature) == (
        "dead_letter_rate",
        "firing",
        "low",
        None,
    )
    assert fired.details["value"] == "0.2" and fired.details["threshold"] == "0.05"
    assert (fired.details["dead_lettered"], fired.details["received"]) == ("200", "1000")
    assert fired.fingerprint == fingerprint("credit-risk", "1.0.0", "dead_letter_rate", None)
    assert run.feed(_traffic(4, 500, dead_lettered=500)) == []  # still on: not again
    (resolved,) = run.feed(_traffic(5, 1000, dead_lettered=10))
    assert (resolved.rule, resolved.status) == ("dead_letter_rate", "resolved")


def _anomaly(**fields: Any) -> AlertRule:
    base = {"name": "traffic_anomaly", "signal": "traffic_rate", "condition": "change_beyond"}
    return _rule(**{**base, "threshold": 0.5, "baseline_windows": 20, "for_windows": 3, **fields})


@pytest.mark.parametrize("events", [2600, 400], ids=["spike", "drop"])
def test_a_traffic_spike_or_drop_fires_after_for_windows_and_resolves(events: int) -> None:
    run = Run([_anomaly()])
    assert [run.feed(_traffic(i, 1000)) for i in range(20)] == [[]] * 20  # the baseline
    assert run.feed(_traffic(20, events)) == [] and run.feed(_traffic(21, events)) == []
    (fired,) = run.feed(_traffic(22, events))
    assert (fired.rule, fired.feature, fired.status) == ("traffic_anomaly", None, "firing")
    assert fired.details["signal"] == "traffic_rate" and fired.details["condition"] == (
        "change_beyond"
    )
    assert fired.labels["signal"] == "traffic_rate"
    assert fired.fingerprint == fingerprint("credit-risk", "1.0.0", "traffic_anomaly", None)
    (resolved,) = run.feed(_traffic(23, 1000))  # back within 50 % of the trailing mean
    assert resolved.status == "resolved"


def test_steady_or_slightly_varying_traffic_does_not_fire() -> None:
    run = Run([_anomaly()])
    changes = [run.feed(_traffic(i, 1000 + 300 * (-1) ** i)) for i in range(30)]
    assert changes == [[]] * 30


def test_a_window_report_leaves_traffic_streaks_alone_and_the_other_way_round() -> None:
    missing = _rule(name="missing", for_windows=2)
    run = Run([_anomaly(for_windows=2, baseline_windows=1), missing])
    run.feed(_traffic(0, 1000))
    run.feed(_traffic(1, 3000))  # +200 %: held once
    run.feed(_report(0, missing=500))  # 50 % missing: held once
    traffic = run.state.streaks["traffic_anomaly\x1f"]
    window = _report(1, missing=500)  # 1000 events over a minute: a rate, were it read
    window = window.model_copy(update={"window_end": window.window_start + timedelta(minutes=1)})
    assert [a.rule for a in run.feed(window)] == ["missing"]
    assert run.state.streaks["traffic_anomaly\x1f"] == traffic
    before = run.state.streaks["missing\x1fincome"]
    (fired,) = run.feed(_traffic(2, 9000))
    assert fired.rule == "traffic_anomaly"
    assert run.state.streaks["missing\x1fincome"] == before


def test_reports_without_a_time_zone_are_read_as_utc_whatever_their_type() -> None:
    naive = _traffic(0, 10).model_copy(
        update={"window_start": datetime(2026, 5, 1), "last_event_time": datetime(2026, 5, 1)}
    )
    aware = in_utc(naive)
    assert aware.window_start.tzinfo is UTC and aware.last_event_time is not None
    assert aware.last_event_time.tzinfo is UTC and aware.window_end == naive.window_end
    assert in_utc(REPORT.model_copy(update={"created_at": datetime(2026, 5, 1)})).created_at == (
        datetime(2026, 5, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize("tier", SEVERITIES)
def test_the_defaults_watch_traffic_and_silence_from_the_versions_expected_interval(
    tier: Severity,
) -> None:
    rules = {r.name: r for r in default_rules(tier, expected_interval=120.0)}
    anomaly, silent = rules["traffic_anomaly"], rules["model_silent"]
    assert (anomaly.signal, anomaly.condition, anomaly.threshold) == (
        "traffic_rate",
        "change_beyond",
        0.5,
    )
    assert (anomaly.baseline_windows, anomaly.for_windows, anomaly.severity) == (20, 3, tier)
    assert (silent.signal, silent.condition, silent.threshold) == ("silent_seconds", "above", 120)
    assert silent.severity == tier  # a silent model pages at its tier's severity
    assert "event_count_drop" in rules
    effective = {r.name: r for r in effective_rules(tier, [], 300.0)}
    assert effective["model_silent"].threshold == 300.0
    assert {r.name: r for r in default_rules(tier)}["model_silent"].threshold == 600.0


def test_the_default_rule_names() -> None:
    assert [r.name for r in default_rules("medium")] == [
        "feature_drift",
        "output_drift",
        "dataset_drift",
        "multivariate_drift",
        "sequential_drift",
        "missing_rate",
        "type_violation_rate",
        "out_of_range_rate",
        "unseen_rate",
        "event_count_drop",
        "late_rate",
        "traffic_anomaly",
        "model_silent",
        "dead_letter_rate",
        "performance_drop",
        "estimated_performance_drop",
        "label_coverage_drop",
        "performance_degraded",
        "fairness_violation",
        "flag_rate_rise",
        "harmful_flag",
        "environment_mismatch",
    ]


def test_a_change_condition_on_the_clock_is_refused() -> None:
    rule = _rule(signal="silent_seconds", condition="change_above", threshold=1.0)
    (error,) = rule_errors([rule], [])
    assert error.field == "[0].condition" and "above or below" in error.expected


def _performance(window: int, accuracy: float, revision: int = 1) -> PerformanceReport:
    start = PERFORMANCE.window_start + timedelta(hours=window)
    return PERFORMANCE.model_copy(
        update={
            "window_start": start,
            "window_end": start + timedelta(hours=1),
            "revision": revision,
            "metrics": {"accuracy": accuracy},
            "report_id": f"credit-risk/1.0.0/performance/{window}",
        }
    )


def test_a_performance_drop_fires_and_a_revised_window_is_judged_again() -> None:
    rules = [r for r in default_rules("high") if r.name == "performance_drop"]
    state, current = RuleState(), {}
    for window in range(10):
        changes, state = evaluate_rules(_performance(window, 0.9), rules, state, current, NOW)
        assert changes == []
    # Window 10 looks fine at first; its second revision (more labels) drops below -10 %.
    changes, state = evaluate_rules(_performance(10, 0.9), rules, state, current, NOW)
    assert changes == []
    changes, state = evaluate_rules(_performance(10, 0.7, revision=2), rules, state, current, NOW)
    assert changes == []  # held once: for_windows is 2
    (fired,) = evaluate_rules(_performance(11, 0.7), rules, state, current, NOW)[0]
    assert (fired.rule, fired.feature, fired.status) == ("performance_drop", "accuracy", "firing")
    # The same revision again changes nothing.
    again, _ = evaluate_rules(_performance(10, 0.7, revision=2), rules, state, current, NOW)
    assert again == []


def test_a_degraded_metric_pages_at_once_and_only_the_degraded_one() -> None:
    rules = [r for r in default_rules("critical") if r.name == "performance_degraded"]
    report = PERFORMANCE.model_copy(
        update={
            "metrics": {"accuracy": 0.7, "roc_auc": 0.6},
            "reference_metrics": {"accuracy": 0.9, "roc_auc": 0.85},
            "metrics_low": {"accuracy": 0.66, "roc_auc": 0.55},
            "metrics_high": {"accuracy": 0.74, "roc_auc": 0.65},
            "degraded": ["accuracy", "roc_auc"],
        }
    )
    changes, _ = evaluate_rules(report, rules, RuleState(), {}, NOW)
    assert sorted((c.rule, c.feature, c.severity) for c in changes) == [
        ("performance_degraded", "accuracy", "critical"),
        ("performance_degraded", "roc_auc", "critical"),
    ]
    (accuracy,) = [c for c in changes if c.feature == "accuracy"]
    assert accuracy.details["reference"] == "0.9000"
    # No reference: nothing judged, nothing fires.
    alone = report.model_copy(update={"reference_metrics": {}, "report_id": "other"})
    assert evaluate_rules(alone, rules, RuleState(), {}, NOW)[0] == []


def test_one_fairness_alert_per_attribute_whatever_the_measures() -> None:
    rules = [r for r in default_rules("high") if r.name == "fairness_violation"]
    measure = FairnessMeasure(value=0.55, low=0.5, high=0.6, lowest="b", highest="a")
    unfair = FairnessReport(
        attribute="region",
        min_group_size=100,
        measures={"disparate_impact": measure, "demographic_parity_difference": measure},
        violations=["demographic_parity_difference", "disparate_impact"],
    )
    report = PERFORMANCE.model_copy(update={"fairness": [unfair]})
    (fired,) = evaluate_rules(report, rules, RuleState(), {}, NOW)[0]
    assert (fired.rule, fired.feature, fired.severity) == ("fairness_violation", "region", "high")
    assert "disparate_impact" in fired.details["violations"]
    small = unfair.model_copy(update={"measures": {}, "violations": []})
    quiet = PERFORMANCE.model_copy(update={"fairness": [small], "report_id": "quiet"})
    assert evaluate_rules(quiet, rules, RuleState(), {}, NOW)[0] == []


# -- experts' flags (FlagReport) --------------------------------------------------------------


def _flags(interval: int, harmful: int = 0, incorrect: int = 0, ok: int = 10) -> FlagReport:
    """The flags of the ``interval``-th minute after the sample's traffic interval."""
    start = TRAFFIC.window_start + timedelta(minutes=interval)
    counts = {"harmful": harmful, "incorrect": incorrect, "ok": ok}
    items = [FlaggedItem(prediction_id=f"p-{i}", reviewer="ana", comment="rude") for i in range(3)]
    return FlagReport(
        report_id=FlagReport.id_of("credit-risk", "1.0.0", interval),
        model_id="credit-risk",
        model_version="1.0.0",
        window_start=start,
        window_end=start + timedelta(minutes=1),
        event_count=sum(counts.values()),
        judged_items=sum(counts.values()),
        counts=counts,
        harmful=items[:harmful],
        created_at=start,
    )


SAMPLE_REPORTS.append(_flags(0, harmful=1, incorrect=2))  # every signal reads its own only


def test_flag_signals_read_only_flag_reports() -> None:
    report = _flags(0, harmful=1, incorrect=4, ok=5)
    rates = {s: v for s, v, _ in SIGNALS["flag_rate"].readings(report)}
    assert rates == {"incorrect": 0.4, "unexpected": 0.0, "harmful": 0.1, "ok": 0.5}
    [(subject, count, notes)] = SIGNALS["harmful_flags"].readings(report)
    assert (subject, count, notes["prediction_ids"]) == (None, 1.0, "p-0")
    assert not list(SIGNALS["flag_rate"].readings(REPORT))
    assert not list(SIGNALS["harmful_flags"].readings(TRAFFIC))
    assert not list(SIGNALS["feature_drift"].readings(report))


@pytest.mark.parametrize("tier", SEVERITIES)
def test_a_harmful_flag_pages_high_and_critical_models_at_their_tier(tier: Severity) -> None:
    rules = {r.name: r for r in effective_rules(tier, [])}
    assert rules["flag_rate_rise"].features == ["incorrect", "harmful"]
    if tier in ("low", "medium"):
        assert "harmful_flag" not in rules
        return
    changes, state = evaluate_rules(
        _flags(0, harmful=1), list(rules.values()), RuleState(), {}, NOW
    )
    [alert] = [a for a in changes if a.rule == "harmful_flag"]
    assert (alert.status, alert.severity, alert.details["prediction_ids"]) == (
        "firing",
        tier,
        "p-0",
    )
    # Another harmful flag next interval: the alert is still firing, nobody is paged again.
    current = {alert.fingerprint: alert}
    later, _ = evaluate_rules(_flags(1, harmful=2), list(rules.values()), state, current, NOW)
    assert not [a for a in later if a.rule == "harmful_flag"]


def test_a_low_tier_model_may_enable_the_harmful_flag_rule() -> None:
    override = _rule(name="harmful_flag", signal="harmful_flags", threshold=0, severity=None)
    rules = effective_rules("low", [override])
    changes, _ = evaluate_rules(_flags(0, harmful=1), rules, RuleState(), {}, NOW)
    assert [(a.rule, a.severity) for a in changes] == [("harmful_flag", "low")]


def test_the_incorrect_rate_rising_above_its_baseline_pages() -> None:
    rules = [r for r in effective_rules("medium", []) if r.name == "flag_rate_rise"]
    state, fired = RuleState(), []
    for i in range(10):  # 10 % incorrect for ten intervals: the baseline
        changes, state = evaluate_rules(_flags(i, incorrect=1, ok=9), rules, state, {}, NOW)
        assert not changes
    for i in range(10, 12):  # then 30 %, twice in a row
        changes, state = evaluate_rules(_flags(i, incorrect=3, ok=7), rules, state, {}, NOW)
        fired += changes
    [alert] = fired
    assert (alert.feature, alert.details["baseline"], alert.severity) == (
        "incorrect",
        "0.12",  # the ten intervals before: 0.1 nine times, then 0.3
        "medium",
    )


def test_flag_rate_rules_name_flag_kinds() -> None:
    good = _rule(signal="flag_rate", features=["incorrect", "harmful"])
    bad = _rule(name="b", signal="flag_rate", features=["income"])
    assert rule_errors([good], ["income"]) == []
    [error] = rule_errors([bad], ["income"])
    assert (error.field, error.received) == ("[0].features", '"income"')
    assert "incorrect" in error.expected
    whole = _rule(signal="harmful_flags", features=["harmful"])
    assert [e.field for e in rule_errors([whole], [])] == ["[0].features"]


SAMPLE_REPORTS.append(  # a serving host judged against the validated environment
    EnvironmentCheck.of(
        EnvironmentReport(
            model_id="credit-risk",
            model_version="1.0.0",
            host="web-1",
            python="3.11.4",
            reported_at=NOW,
        ),
        Environment(python="3.11.9"),
    )
)
