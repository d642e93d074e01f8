"""Liveness: a version that had traffic and then none for its expected interval fires
model_silent once per silence; its next traffic resolves it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from alerting.handlers import fingerprint
from alerting.inhibition import inhibited_by
from alerting.liveness import (
    TrafficSeen,
    check_silence,
    seen,
    silence_fingerprints,
    traffic_resumed,
)
from tests.samples import MODEL, TRAFFIC
from vigil.wire.records import Alert, AlertRule, TrafficReport
from vigil.wire.rules import effective_rules

LAST = TRAFFIC.window_end  # when the sample's traffic ended
SILENT = fingerprint("credit-risk", "1.0.0", "model_silent", None)
RULES = effective_rules("high", [], expected_interval=600.0)


def _at(seconds: float) -> datetime:
    return LAST + timedelta(seconds=seconds)


def _traffic(after: float, events: int = 100) -> TrafficReport:
    """Traffic of the 30 s starting ``after`` seconds past the sample's."""
    start = _at(after)
    update = {"window_start": start, "window_end": start + timedelta(seconds=30)}
    return TRAFFIC.model_copy(update={**update, "event_count": events, "report_id": f"t{after}"})


class Clock:
    """Liveness checks and traffic handled in order, the alerts kept as the worker keeps them."""

    def __init__(self, rules: list[AlertRule] = RULES) -> None:
        self.rules = rules
        self.seen = seen(None, TRAFFIC)
        self.alerts: dict[str, Alert] = {}

    def _keep(self, changes: list[Alert]) -> list[Alert]:
        self.alerts.update({a.fingerprint: a for a in changes})
        return changes

    def check(self, seconds: float) -> list[Alert]:
        now = _at(seconds)
        args = ("credit-risk", "1.0.0", self.seen, self.rules, self.alerts, now)
        return self._keep(check_silence(*args))

    def traffic(self, report: TrafficReport, seconds: float) -> list[Alert]:
        self.seen = seen(self.seen, report)
        return self._keep(traffic_resumed(report, self.rules, self.alerts, _at(seconds)))


def test_silence_fires_once_after_the_expected_interval_and_not_before() -> None:
    clock = Clock()
    assert clock.check(30) == [] and clock.check(599) == []
    (fired,) = clock.check(720)
    assert (fired.rule, fired.feature, fired.status, fired.fingerprint) == (
        "model_silent",
        None,
        "firing",
        SILENT,
    )
    assert fired.severity == "high"  # the model's tier
    assert fired.summary == "credit-risk 1.0.0: no predictions for 12 min (expected every 10 min)"
    assert fired.details["last_traffic_at"] == LAST.isoformat()
    assert (fired.details["silent_seconds"], fired.details["threshold"]) == ("720", "600")
    assert fired.labels == {
        "model_id": "credit-risk",
        "model_version": "1.0.0",
        "rule": "model_silent",
        "signal": "silent_seconds",
        "severity": "high",
    }
    assert clock.check(900) == [] and clock.check(5000) == []  # the same silence: no repeat
    clock.alerts[SILENT] = fired.model_copy(update={"status": "acknowledged"})
    assert clock.check(9000) == []


def test_a_version_never_seen_with_traffic_never_fires() -> None:
    never = TrafficSeen()
    assert check_silence("credit-risk", "1.0.0", never, RULES, {}, _at(10**6)) == []
    assert seen(None, _traffic(0, events=0)).last_traffic_at is None


@pytest.mark.parametrize(
    ("override", "fires_at"),
    [
        ({"threshold": 60.0, "severity": "low"}, 61),
        ({"threshold": 3600.0}, 3601),
    ],
)
def test_a_model_overrides_the_threshold_and_severity(
    override: dict[str, Any], fires_at: float
) -> None:
    rule = next(r for r in RULES if r.name == "model_silent").model_copy(update=override)
    clock = Clock(effective_rules("high", [rule]))
    assert clock.check(fires_at - 2) == []
    (fired,) = clock.check(fires_at)
    assert fired.severity == override.get("severity", "high")


def test_a_disabled_model_silent_never_fires() -> None:
    off = AlertRule(
        name="model_silent",
        signal="silent_seconds",
        condition="above",
        threshold=600,
        enabled=False,
    )
    assert Clock(effective_rules("high", [off])).check(10**6) == []


def test_the_threshold_defaults_to_the_versions_expected_interval() -> None:
    model = MODEL.model_copy(update={"expected_interval": 120.0})
    rules = effective_rules(model.risk.severity, model.alert_rules, model.expected_interval)
    clock = Clock(rules)
    assert clock.check(119) == []
    (fired,) = clock.check(150)
    assert fired.summary.endswith("no predictions for 150 s (expected every 120 s)")


def test_traffic_resolves_the_silence_and_a_later_silence_fires_again() -> None:
    clock = Clock()
    (fired,) = clock.check(700)
    assert clock.traffic(TRAFFIC, 701) == []  # a replay of the traffic the silence followed
    (resolved,) = clock.traffic(_traffic(750), 790)
    assert (resolved.status, resolved.fingerprint) == ("resolved", fired.fingerprint)
    assert resolved.ends_at == _at(790)
    assert resolved.summary == "credit-risk 1.0.0: traffic resumed after 12 min"
    assert resolved.details["report_id"] == "t750"
    assert clock.traffic(_traffic(800), 830) == []  # nothing left to resolve
    assert clock.check(1000) == []  # silent 170 s since the new traffic
    (again,) = clock.check(830 + 601)
    assert (again.status, again.details["last_traffic_at"]) == ("firing", _at(830).isoformat())


def test_a_silence_is_not_fired_twice_even_if_the_new_traffic_was_not_saved() -> None:
    clock = Clock()
    clock.check(700)
    before = clock.seen
    clock.traffic(_traffic(750), 790)
    clock.seen = before  # the worker stopped before saving it
    assert clock.check(2000) == []


def test_an_open_alert_of_an_earlier_silence_is_resolved_by_the_clock() -> None:
    clock = Clock()
    (fired,) = clock.check(700)
    clock.seen = seen(clock.seen, _traffic(750))  # its resolution was lost
    (resolved,) = clock.check(800)
    assert (resolved.status, resolved.fingerprint) == ("resolved", fired.fingerprint)


def test_the_traffic_seen_never_goes_back_and_survives_json() -> None:
    newer = seen(seen(None, _traffic(100)), _traffic(0))
    assert (newer.last_traffic_at, newer.last_report_id) == (_at(130), "t100")
    assert TrafficSeen.load(newer.model_dump(mode="json")) == newer
    assert TrafficSeen.load({"last_traffic_at": "yesterday"}) is None
    assert TrafficSeen.load(None) is None


def test_a_silent_model_inhibits_its_traffic_alerts() -> None:
    (silent,) = Clock().check(700)
    anomaly = silent.model_copy(update={"fingerprint": "x", "rule": "traffic_anomaly"})
    assert inhibited_by(anomaly, [silent]) == SILENT
    assert SILENT in silence_fingerprints("credit-risk", "1.0.0", [])
