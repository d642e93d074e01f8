"""The alerting worker on fakes applies each model's rules in effect, and its rule state
survives a restart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alerting.worker import Alerter
from tests.samples import MODEL, REPORT
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.wire.records import AlertRule, ModelVersion, WindowReport


def _alerter(store: FakeAlertStore, model: ModelVersion = MODEL) -> Alerter:
    return Alerter(FakeBus(), FakeCatalog([model]), store, FakeNotifier())


def _report(minute: int, model_version: str = "1.0.0", **fields: Any) -> WindowReport:
    start = REPORT.window_start + timedelta(minutes=minute)
    update = {"window_start": start, "window_end": start, "model_version": model_version}
    return REPORT.model_copy(update={**update, **fields})


def _quality(missing: int) -> list[Any]:
    return [REPORT.features[0].model_copy(update={"missing": missing, "drifted": False})]


async def test_a_streak_begun_before_a_restart_fires_after_it() -> None:
    store = FakeAlertStore()
    rule = AlertRule(
        name="missing_rate", signal="missing_rate", condition="above", threshold=0.1, for_windows=2
    )  # replaces the default, which fires at once
    model = MODEL.model_copy(update={"alert_rules": [rule]})
    assert await _alerter(store, model).handle_report(_report(0, features=_quality(500))) == []
    assert store.rule_states  # kept by model version
    (fired,) = await _alerter(store, model).handle_report(_report(1, features=_quality(500)))
    assert (fired.rule, fired.feature, fired.severity) == ("missing_rate", "income", "high")


async def test_a_model_that_disables_a_default_rule_gets_no_such_alert() -> None:
    off = AlertRule(
        name="feature_drift",
        signal="feature_drift",
        condition="above",
        threshold=0.5,
        enabled=False,
    )
    model = MODEL.model_copy(update={"alert_rules": [off]})
    assert await _alerter(FakeAlertStore(), model).handle_report(_report(0)) == []
    (fired,) = await _alerter(FakeAlertStore()).handle_report(_report(0))
    assert (fired.rule, fired.severity) == ("feature_drift", "high")  # MODEL's tier


async def test_an_unknown_models_rules_are_the_medium_tiers() -> None:
    (fired,) = await _alerter(FakeAlertStore()).handle_report(_report(0, model_version="9"))
    assert fired.severity == "medium"
    quality = await _alerter(FakeAlertStore()).handle_report(
        _report(0, model_version="9", features=_quality(40))  # 4 % missing: over medium's 3 %
    )
    assert [a.rule for a in quality] == ["missing_rate"]
