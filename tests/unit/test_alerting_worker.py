"""The alerting worker on fakes: a report it cannot process never stops the ones after it."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from alerting.worker import Alerter
from tests.samples import MODEL, REPORT, report_at
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.adapters.ports import Unavailable
from vigil.adapters.stage_logic import Message
from vigil.wire.codec import Codec
from vigil.wire.records import WindowReport
from vigil.wire.topics import METRICS

REPORTS = Codec(WindowReport)


@pytest.fixture
def alerter() -> Alerter:
    return Alerter(FakeBus(), FakeCatalog([MODEL]), FakeAlertStore(), FakeNotifier())


def _report(minute: int, drifted: bool, model_version: str = "1.0.0") -> WindowReport:
    feature = REPORT.features[0].model_copy(update={"drifted": drifted})
    start = REPORT.window_start + timedelta(minutes=minute)
    return REPORT.model_copy(
        update={
            "window_start": start,
            "window_end": start,
            "features": [feature],
            "model_version": model_version,
        }
    )


def _message(offset: int, value: bytes) -> Message:
    return Message(METRICS.name, 0, offset, b"credit-risk/1.0.0", value)


def _naive_json(report: WindowReport) -> bytes:
    body = report.model_dump(mode="json")
    for name in ("window_start", "window_end", "created_at"):
        body[name] = getattr(report, name).replace(tzinfo=None).isoformat()
    return orjson.dumps(body)


async def test_a_report_without_a_time_zone_is_read_as_utc(alerter: Alerter) -> None:
    await alerter.handle(_message(0, REPORTS.encode(_report(0, drifted=True))))
    await alerter.handle(_message(1, _naive_json(_report(1, drifted=False))))
    assert isinstance(alerter.store, FakeAlertStore)
    (alert,) = alerter.store.alerts_by_fingerprint.values()
    assert alert.status == "resolved"
    assert alert.details["window_start"] == _report(1, False).window_start.isoformat()
    assert isinstance(alerter.bus, FakeBus)
    assert alerter.bus.dead_letters == []


async def test_a_report_that_fails_is_dead_lettered_and_the_next_one_is_handled(
    alerter: Alerter,
) -> None:
    await alerter.handle(_message(0, REPORTS.encode(_report(0, drifted=True))))
    assert isinstance(alerter.store, FakeAlertStore)
    (fired,) = alerter.store.alerts_by_fingerprint.values()
    # An alert whose stored state is broken fails every report about it, the same way.
    broken = fired.model_copy(update={"details": {**fired.details, "window_start": "?"}})
    await alerter.store.save_alerts([broken])
    poison = _message(1, REPORTS.encode(_report(1, drifted=False)))
    await alerter.handle(poison)
    await alerter.handle(_message(2, REPORTS.encode(_report(2, True, model_version="2"))))
    assert isinstance(alerter.bus, FakeBus)
    ((letter, reason),) = alerter.bus.dead_letters
    assert letter is poison
    assert reason.startswith("report not processable: ValueError")
    assert alerter.dead_lettered == 1
    assert len(alerter.store.alerts_by_fingerprint) == 2


async def test_an_outage_is_retried_not_dead_lettered(alerter: Alerter) -> None:
    assert isinstance(alerter.bus, FakeBus)
    alerter.bus.down = True
    with pytest.raises(Unavailable):
        await alerter.handle(_message(0, REPORTS.encode(_report(0, drifted=True))))
    assert alerter.bus.dead_letters == []
    assert alerter.dead_lettered == 0


async def test_an_unknown_version_is_looked_up_once_in_a_while_not_per_report() -> None:
    catalog = FakeCatalog([])
    alerter = Alerter(FakeBus(), catalog, FakeAlertStore(), FakeNotifier())
    for minute in range(5):
        await alerter.handle_report(report_at("nowhere", minute, False))
    assert catalog.catch_ups == 1
