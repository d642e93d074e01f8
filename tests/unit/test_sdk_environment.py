"""The SDK reports the environment it serves in: once per model version, before that
version's first batch, over Kafka; a transport that cannot carry it drops it and goes on."""

from __future__ import annotations

import platform
from collections import deque
from collections.abc import Sequence
from typing import Any

from vigil.sdk.environment import environment_report, installed_packages
from vigil.sdk.logger import _LoggerBase
from vigil.sdk.pipeline import Delivery, DeliveryPolicy
from vigil.wire.environments import EnvironmentReport

FAST = DeliveryPolicy(
    batch_size=10, linger_seconds=0, attempts=1, backoff_seconds=0, retry_interval_seconds=0
)


class Reporting:
    """A transport that takes events and environment reports, failing the first report if
    told to."""

    def __init__(self, fail_first: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.reports: list[EnvironmentReport] = []
        self.fail_first = fail_first

    async def start(self) -> None: ...

    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        self.events.extend(events)
        return []

    async def report(self, reports: Sequence[EnvironmentReport]) -> None:
        if self.fail_first:
            self.fail_first = False
            raise ConnectionError("broker away")
        self.reports.extend(reports)

    async def stop(self) -> None: ...


class EventsOnly:
    """A transport without environment reports (as HTTP)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def start(self) -> None: ...

    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        self.events.extend(events)
        return []

    async def stop(self) -> None: ...


def test_the_report_names_this_python_and_the_installed_distributions() -> None:
    found = environment_report("m", "1", host="web-1")
    assert (found.key, found.python) == ("m/1/web-1", platform.python_version())
    assert found.packages == installed_packages()
    assert found.packages["pydantic"]  # installed here, under its normalised name
    assert all(name == name.lower() and "_" not in name for name in found.packages)


def test_the_logger_queues_one_report_per_version_sampled_or_not() -> None:
    logger = _LoggerBase("kafka://127.0.0.1:1", spool_max_bytes=0, host="web-1", sample_rate=0.01)
    for _ in range(50):
        logger.log("m", "1", {"x": 1.0}, True)
    logger.log("m", "2", {"x": 1.0}, True)
    logger.log("other", "1", {"x": 1.0}, True)
    assert [r.key for r in logger._environments] == ["m/1/web-1", "m/2/web-1", "other/1/web-1"]
    quiet = _LoggerBase("kafka://127.0.0.1:1", spool_max_bytes=0, report_environment=False)
    quiet.log("m", "1", {"x": 1.0}, True)
    assert not quiet._environments


async def test_delivery_sends_reports_and_retries_a_failed_one() -> None:
    transport = Reporting(fail_first=True)
    queue: deque[dict[str, Any]] = deque([{"prediction_id": "p-1"}])
    reports = deque([environment_report("m", "1", host="web-1")])
    delivery = Delivery(transport, queue, None, FAST, reports)
    assert not delivery.idle
    delivery.stopping = True
    await delivery.run()
    assert transport.events == [{"prediction_id": "p-1"}]
    assert [r.key for r in transport.reports] == ["m/1/web-1"] and not reports and delivery.idle
    assert delivery.last_error is not None and "broker away" in delivery.last_error


async def test_a_failed_report_waits_for_the_retry_interval_without_holding_events() -> None:
    transport = Reporting(fail_first=True)
    queue: deque[dict[str, Any]] = deque([{"prediction_id": "p-1"}])
    reports = deque([environment_report("m", "1", host="web-1")])
    patient = DeliveryPolicy(batch_size=10, linger_seconds=0, retry_interval_seconds=60)
    delivery = Delivery(transport, queue, None, patient, reports)
    delivery.stopping = True
    await delivery.run()
    assert transport.events == [{"prediction_id": "p-1"}]
    assert transport.reports == [] and len(reports) == 1 and not delivery.idle


async def test_a_transport_without_reports_drops_them_and_delivers_the_events() -> None:
    transport = EventsOnly()
    queue: deque[dict[str, Any]] = deque([{"prediction_id": "p-1"}])
    reports = deque([environment_report("m", "1", host="web-1")])
    delivery = Delivery(transport, queue, None, FAST, reports)
    delivery.stopping = True
    await delivery.run()
    assert transport.events == [{"prediction_id": "p-1"}] and not reports and delivery.idle
