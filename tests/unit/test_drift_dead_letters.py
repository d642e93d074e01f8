"""Dead letters a model version's traffic reports count: the profiler counts the events of each
version it dead-letters into the version's partial, the merger adds them up into the interval's
``TrafficReport`` (``dead_lettered``). Through ``StageHarness``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from drift_detector.partials import MICROS, Partial, PartialBuilder
from tests.unit.test_drift_traffic import Clocks, _logic, _merger, _traffic, _two_models
from tests.unit.test_stages import (
    EVENTS,
    PARTIALS,
    STATE,
    Clock,
    _catalog,
    _events,
    _profiler,
    _reports,
)
from vigil.adapters.catalog import ModelCatalog
from vigil.wire.topics import PREDICTIONS

YEAR_2999 = datetime(2999, 1, 1, tzinfo=UTC)


def _future(first: int, n: int, model: str = "m") -> list[bytes | None]:
    """``n`` events of ``model`` version 1 stamped far ahead of any worker's clock."""
    events = [EVENTS.decode(e or b"") for e in _events(first, n, model=model)]
    return [EVENTS.encode(e.model_copy(update={"timestamp": YEAR_2999})) for e in events]


def _sent_partials(values: list[bytes | None]) -> dict[str, Partial]:
    return {p.model_id: p for p in (Partial.from_bytes(v or b"") for v in values)}


async def _partial(catalog: ModelCatalog, model: str, good: int, future: int) -> bytes | None:
    """A profiler's partial of ``model``: ``good`` events profiled, ``future`` dead-lettered."""
    profiler = _profiler(catalog, Clock())
    await profiler.assign([(PREDICTIONS.name, 0)])
    await profiler.put(
        PREDICTIONS.name, 0, [*_events(0, good, model=model), *_future(good, future, model)]
    )
    await profiler.flush()
    (partial,) = profiler.sent
    return partial.value


async def test_the_profiler_counts_each_versions_dead_letters_in_its_partial() -> None:
    harness = _profiler(_two_models(), Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    unattributable = [b"garbage", *_events(40, 2, model="nobody")]
    await harness.put(
        PREDICTIONS.name,
        0,
        [*_events(0, 10), *_future(20, 4), *_future(30, 3, "n"), *unattributable],
    )
    await harness.flush()
    assert len(harness.dead_letters) == 4 + 3 + 3
    partials = _sent_partials([r.value for r in harness.sent])
    # Undecodable records and unregistered versions name no version a report would carry.
    assert set(partials) == {"m", "n"}
    assert (partials["m"].events, partials["m"].dead_lettered) == (10, 4)
    assert max(partials["m"].marks.values()) < YEAR_2999.timestamp() * MICROS
    only = partials["n"]  # every event of n was dead-lettered: its partial says how many
    assert (only.events, only.dead_lettered, only.marks, only.windows) == (0, 3, {}, [])
    assert only.rejects_only and not partials["m"].rejects_only
    await harness.put(PREDICTIONS.name, 0, _events(50, 5))
    await harness.flush()
    last = Partial.from_bytes(harness.sent[-1].value or b"")
    assert (last.model_id, last.events, last.dead_lettered) == ("m", 5, 0)  # a new flush


async def test_a_version_failing_to_profile_sends_only_the_count_of_its_dead_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add = PartialBuilder.add

    def failing_midway(self: PartialBuilder, *args: Any) -> None:
        add(self, *args)  # counted (marks moved, windows filled), then a bug
        raise RuntimeError("a bug that repeats")

    monkeypatch.setattr(PartialBuilder, "add", failing_midway)
    harness = _profiler(_catalog(), Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    await harness.put(PREDICTIONS.name, 0, _events(0, 6))
    await harness.flush()
    assert len(harness.dead_letters) == 6
    (partial,) = [Partial.from_bytes(r.value or b"") for r in harness.sent]
    # Nothing of the failed count goes out: no event, no mark to move a clock.
    assert (partial.events, partial.dead_lettered, partial.marks, partial.windows) == (0, 6, {}, [])


def test_a_partial_keeps_its_dead_letters_on_the_wire_and_may_not_count_fewer_than_none() -> None:
    partial = Partial("m", "1", 1, {}, dead_lettered=12, partitions=2)
    assert Partial.from_bytes(partial.to_bytes()) == partial
    partial.check(0)  # nothing in it is in the future
    partial.dead_lettered = -1
    with pytest.raises(ValueError, match="negative counts"):
        partial.check(0)


async def test_the_merger_adds_up_dead_letters_into_the_versions_traffic_report() -> None:
    catalog, clocks = _two_models(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    values = [
        await _partial(catalog, "m", 100, 5),
        await _partial(catalog, "m", 0, 7),  # another worker saw only m's rejects
        await _partial(catalog, "n", 20, 0),
    ]
    await harness.put(PARTIALS, 0, values, [b"m/1", b"m/1", b"n/1"])
    clocks.at(30)
    await harness.flush()
    counts = {r.key: (r.event_count, r.dead_lettered) for r in _traffic(harness.sent)}
    assert counts == {"m/1": (100, 12), "n/1": (20, 0)}


async def test_a_version_whose_every_event_was_dead_lettered_still_reports_its_traffic() -> None:
    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, [await _partial(catalog, "m", 0, 9)], [b"m/1"])
    clocks.at(30)
    await harness.flush()
    (report,) = _traffic(harness.sent)
    assert (report.event_count, report.dead_lettered, report.last_event_time) == (0, 9, None)
    # Nothing to merge: no window opened, no state written.
    assert _reports(harness) == [] and [r for r in harness.sent if r.topic == STATE] == []
    assert ("m", "1") not in _logic(harness).models
    assert harness.dead_letters == []


async def test_a_failed_flush_counts_no_dead_letter_twice() -> None:
    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    owned = [(PARTIALS, 0)]
    await harness.assign(owned)
    await harness.put(PARTIALS, 0, [await _partial(catalog, "m", 10, 5)], [b"m/1"])
    clocks.at(10)
    await harness.flush()  # committed: counted, not reported yet
    await harness.put(PARTIALS, 0, [await _partial(catalog, "m", 0, 3)], [b"m/1"])
    clocks.at(30)
    (lost,) = _traffic((await _logic(harness).flush()).records)  # never committed
    assert (lost.event_count, lost.dead_lettered) == (10, 8)
    await harness.put(PARTIALS, 0, [await _partial(catalog, "m", 0, 2)], [b"m/1"])
    await harness.revoke(owned, settle=False)  # the flush failed: its input is read again
    await harness.assign(owned)
    await harness.poll()
    clocks.at(31)
    await harness.flush()
    (report,) = _traffic(harness.sent)
    assert (report.event_count, report.dead_lettered) == (10, 10)
