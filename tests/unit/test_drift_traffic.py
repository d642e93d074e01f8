"""The merger's traffic heartbeats: a ``TrafficReport`` per model version that had events, per
interval of the merger's wall clock, in the same flush as the window reports. Through
``StageHarness``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pytest
from pydantic import ValidationError

from drift_detector.config import Settings
from drift_detector.merging import Merging
from drift_detector.partials import MICROS
from tests.kafka_tools import is_traffic_report
from tests.unit.fakes import FakeRevisionLocks
from tests.unit.test_stages import (
    PARTIALS,
    POLICY,
    STATE,
    T0,
    Clock,
    _catalog,
    _events,
    _profiler,
    _reports,
)
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.stage_logic import Outgoing
from vigil.adapters.stage_testing import StageHarness
from vigil.wire.codec import Codec
from vigil.wire.records import TrafficReport, WindowReport
from vigil.wire.topics import METRICS, PREDICTIONS

TRAFFIC = Codec(TrafficReport)
REPORTS = Codec(WindowReport)
START = T0 + timedelta(hours=1)  # the merger's wall clock when it starts
INTERVAL = 30.0


class Clocks:
    """The merger's monotonic clock and its wall clock, moved together."""

    def __init__(self) -> None:
        self.clock, self.wall = Clock(), Clock()
        self.clock.now, self.wall.now = 0.0, START.timestamp()

    def at(self, seconds: float) -> None:
        self.clock.now, self.wall.now = seconds, START.timestamp() + seconds


def _two_models() -> ModelCatalog:
    catalog = _catalog()
    version = catalog.get("m", "1")
    assert version is not None
    catalog.apply(version.model_copy(update={"model_id": "n"}))
    return catalog


def _merger(catalog: ModelCatalog, clocks: Clocks) -> StageHarness:
    logic = Merging(
        catalog,
        FakeRevisionLocks(),
        POLICY,
        STATE,
        clocks.clock,
        wall=clocks.wall,
        traffic_seconds=INTERVAL,
    )
    return StageHarness(logic, {PARTIALS: 2}, changelog=STATE)


def _logic(harness: StageHarness) -> Merging:
    assert isinstance(harness.logic, Merging)
    return harness.logic


async def _partial(catalog: ModelCatalog, model: str, n: int, minute: int = 0) -> bytes | None:
    """A profiler's partial of ``n`` events of ``model`` version 1, ``minute`` after T0."""
    profiler = _profiler(catalog, Clock())
    await profiler.assign([(PREDICTIONS.name, 0)])
    await profiler.put(PREDICTIONS.name, 0, _events(0, n, minute, model=model))
    await profiler.flush()
    (partial,) = profiler.sent
    return partial.value


async def _put(harness: StageHarness, catalog: ModelCatalog, *counts: tuple[str, int]) -> None:
    values = [await _partial(catalog, model, n) for model, n in counts]
    await harness.put(PARTIALS, 0, values, [f"{model}/1".encode() for model, _ in counts])


def _traffic(records: Iterable[Outgoing]) -> list[TrafficReport]:
    return [
        TRAFFIC.decode(r.value)
        for r in records
        if r.topic == METRICS.name and is_traffic_report(r.value)
    ]


def _counts(harness: StageHarness) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}
    for report in _traffic(harness.sent):
        counts.setdefault(report.key, []).append(report.event_count)
    return counts


def _micros(seconds: float) -> int:
    return int(seconds * MICROS)


async def test_each_interval_reports_the_events_merged_in_it_on_the_wall_clock() -> None:
    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    later = await _partial(catalog, "m", 200, minute=1)
    await harness.put(PARTIALS, 0, [await _partial(catalog, "m", 300), later], [b"m/1"] * 2)
    clocks.at(10)
    await harness.flush()
    assert _traffic(harness.sent) == []  # the interval is not over
    clocks.at(30.5)
    await harness.flush()
    (first,) = _traffic(harness.sent)
    assert (first.model_id, first.model_version, first.event_count) == ("m", "1", 500)
    assert (first.window_start, first.window_end) == (START, START + timedelta(seconds=30.5))
    assert first.report_id == f"m/1/traffic/{_micros(START.timestamp())}"
    # Event time, unlike the interval: the newest of the second minute's 200 events.
    assert first.last_event_time == T0 + timedelta(minutes=1, milliseconds=199)
    (sent,) = [r for r in harness.sent if is_traffic_report(r.value)]
    assert sent.key == b"m/1"  # beside the version's window reports, in order
    await _put(harness, catalog, ("m", 50))
    clocks.at(60)
    await harness.flush()
    assert len(_traffic(harness.sent)) == 1  # 29.5 s into the second interval
    clocks.at(61)
    await harness.flush()
    second = _traffic(harness.sent)[-1]
    assert second.event_count == 50  # only the events merged since the first report
    assert (second.window_start, second.window_end) == (
        first.window_end,
        START + timedelta(seconds=61),
    )
    assert _logic(harness).traffic.published == 2


async def test_one_report_per_version_and_none_for_a_version_without_events() -> None:
    catalog, clocks = _two_models(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    await _put(harness, catalog, ("m", 100), ("n", 70), ("m", 10))
    clocks.at(30)
    await harness.flush()
    assert _counts(harness) == {"m/1": [110], "n/1": [70]}
    await _put(harness, catalog, ("n", 5))
    clocks.at(60)
    await harness.flush()
    assert _counts(harness) == {"m/1": [110], "n/1": [70, 5]}  # m was silent: no report
    clocks.at(90)
    await harness.flush()  # nobody had events: nothing, and the next interval starts here
    assert len(_traffic(harness.sent)) == 3
    await _put(harness, catalog, ("m", 1))
    clocks.at(120)
    await harness.flush()
    last = _traffic(harness.sent)[-1]
    assert (last.key, last.event_count) == ("m/1", 1)
    assert last.window_start == START + timedelta(seconds=90)


async def test_traffic_reports_go_out_in_the_same_flush_as_window_reports_and_state() -> None:
    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    await _put(harness, catalog, ("m", 300))
    clocks.at(30)  # the window went idle and the interval is over: one flush for both
    logic = _logic(harness)
    output = await logic.flush()
    assert [r.topic for r in output.records] == [METRICS.name, STATE, METRICS.name]
    window = REPORTS.decode(output.records[0].value)
    (traffic,) = _traffic(output.records)
    assert window.event_count == traffic.event_count == 300
    logic.committed(output)
    # Window reports and heartbeats are told apart, for /v1/status.
    assert (logic.reports_published, logic.traffic.published) == (1, 1)


async def test_a_failed_flush_counts_nothing_twice_and_keeps_the_interval_open() -> None:
    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    owned = [(PARTIALS, 0)]
    await harness.assign(owned)
    await _put(harness, catalog, ("m", 300))
    clocks.at(10)
    await harness.flush()  # committed: counted, not reported yet
    await _put(harness, catalog, ("m", 40))
    clocks.at(30)
    (lost,) = _traffic((await _logic(harness).flush()).records)  # never committed
    assert lost.event_count == 340
    await _put(harness, catalog, ("m", 7))  # absorbed, not flushed yet
    # The flush failed: what it and the next one would have taken is read again.
    await harness.revoke(owned, settle=False)
    await harness.assign(owned)
    await harness.poll()
    clocks.at(31)
    await harness.flush()
    (report,) = _traffic(harness.sent)
    assert report.event_count == 347
    assert report.window_start == lost.window_start == START


async def test_retired_and_removed_versions_are_dropped_and_never_reported() -> None:
    catalog, clocks = _two_models(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    await _put(harness, catalog, ("m", 100), ("n", 100))
    clocks.at(10)
    await harness.flush()  # committed and counted for both
    in_flight = await _partial(catalog, "m", 5)
    m, n = catalog.get("m", "1"), catalog.get("n", "1")
    assert m is not None and n is not None
    catalog.apply(m.model_copy(update={"status": "retired"}))
    catalog.remove("n/1")
    # Counted before the retirement, merged after it: in m's last window report, not in traffic.
    await harness.put(PARTIALS, 0, [in_flight], [b"m/1"])
    clocks.at(20)
    await harness.flush()
    assert sum(r.event_count for r in _reports(harness)) == 105
    catalog.apply(n)  # registered again: its count starts from nothing
    await _put(harness, catalog, ("n", 7))
    clocks.at(30)
    await harness.flush()
    assert _counts(harness) == {"n/1": [7]}


async def test_a_failing_versions_dead_lettered_partials_are_not_counted() -> None:
    catalog, clocks = _two_models(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])

    def broken(now: float) -> list[object]:
        raise RuntimeError("a bug that repeats")

    await _put(harness, catalog, ("m", 100), ("n", 20))
    harness.logic.models[("m", "1")].close_due = broken  # type: ignore[attr-defined]
    clocks.at(30)
    await harness.flush()
    assert len(harness.dead_letters) == 1
    assert _counts(harness) == {"n/1": [20]}


def test_the_interval_must_be_positive() -> None:
    assert Settings().drift_traffic_seconds == 30
    with pytest.raises(ValidationError, match="drift_traffic_seconds"):
        Settings(drift_traffic_seconds=0)
    with pytest.raises(ValueError, match="traffic interval"):
        Merging(_catalog(), FakeRevisionLocks(), POLICY, STATE, traffic_seconds=-1)
