"""A host serving a version in another environment than it was validated in pages, through the
alert rules (``environment_mismatch``) like any other signal; a host that matches, a version
that records no validated environment, or a tombstone says nothing."""

from __future__ import annotations

from datetime import timedelta

from alerting.worker import Alerter
from tests.samples import MODEL, T0
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.adapters.stage_logic import Message
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport
from vigil.wire.records import Environment, Lineage
from vigil.wire.rules import default_rules
from vigil.wire.topics import ENVIRONMENTS

REPORTS = Codec(EnvironmentReport)
VALIDATED = Environment(python="3.11.9", packages={"scikit-learn": "1.5.2", "numpy": "2.1.0"})
CHECKED = MODEL.model_copy(
    update={"lineage": Lineage(validated_environment=VALIDATED), "risk": MODEL.risk}
)


def _served(host: str, minute: int, **packages: str) -> Message:
    report = EnvironmentReport(
        model_id=CHECKED.model_id,
        model_version=CHECKED.version,
        host=host,
        python="3.11.9",
        packages={"scikit-learn": "1.5.2", "numpy": "2.1.0", **packages},
        reported_at=T0 + timedelta(minutes=minute),
    )
    return Message(ENVIRONMENTS.name, 0, minute, report.key.encode(), REPORTS.encode(report))


def _alerter(version: object = CHECKED) -> Alerter:
    return Alerter(FakeBus(), FakeCatalog([version]), FakeAlertStore(), FakeNotifier())  # type: ignore[list-item]


async def test_a_host_at_another_package_version_fires_one_alert_naming_it_then_resolves() -> None:
    alerter = _alerter()
    await alerter.handle(_served("web-1", 0))
    await alerter.handle(_served("web-2", 1, numpy="1.26.4"))
    assert isinstance(alerter.store, FakeAlertStore)
    (alert,) = alerter.store.alerts_by_fingerprint.values()
    assert (alert.rule, alert.feature, alert.status) == ("environment_mismatch", "web-2", "firing")
    assert alert.details["mismatches"] == "numpy is 1.26.4, validated with 2.1.0"
    # MODEL's tier is high: a mismatch is a level below it.
    assert alert.severity == "medium"
    await alerter.handle(_served("web-2", 2))  # redeployed as validated
    (alert,) = alerter.store.alerts_by_fingerprint.values()
    assert alert.status == "resolved"
    assert isinstance(alerter.bus, FakeBus) and alerter.bus.dead_letters == []


async def test_without_a_validated_environment_or_for_a_tombstone_nothing_is_judged() -> None:
    alerter = _alerter(MODEL)
    await alerter.handle(_served("web-2", 1, numpy="1.26.4"))
    await alerter.handle(Message(ENVIRONMENTS.name, 0, 2, b"credit-risk/1.0.0/web-2", None))
    assert isinstance(alerter.store, FakeAlertStore)
    assert alerter.store.alerts_by_fingerprint == {}
    assert isinstance(alerter.bus, FakeBus) and alerter.bus.dead_letters == []


async def test_an_unreadable_environment_report_is_dead_lettered() -> None:
    alerter = _alerter()
    await alerter.handle(Message(ENVIRONMENTS.name, 0, 0, b"k", b"\xc3\x01garbage"))
    assert isinstance(alerter.bus, FakeBus) and len(alerter.bus.dead_letters) == 1


def test_the_default_rule_is_a_level_below_the_tier() -> None:
    rules = {r.name: r for r in default_rules("critical")}
    assert rules["environment_mismatch"].severity == "high"
    assert rules["environment_mismatch"].threshold == 0
