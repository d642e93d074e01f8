"""Retired and removed model versions leave the drift detector: last reports, then no state,
in memory or in the state topic. Through ``StageHarness``."""

from __future__ import annotations

from drift_detector.merging import Merging
from tests.unit.fakes import FakeRevisionLocks
from tests.unit.test_stages import (
    PARTIALS,
    POLICY,
    STATE,
    Clock,
    _catalog,
    _events,
    _keys,
    _merger,
    _partials,
    _profiler,
    _reports,
)
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.stage_testing import StageHarness
from vigil.wire.topics import PREDICTIONS


def _retire(catalog: ModelCatalog) -> None:
    version = catalog.get("m", "1")
    assert version is not None
    catalog.apply(version.model_copy(update={"status": "retired"}))


def _logic(harness: StageHarness) -> Merging:
    assert isinstance(harness.logic, Merging)
    return harness.logic


def _live_states(harness: StageHarness) -> list[bytes]:
    """The state topic after compaction: the latest value of each key that is no tombstone."""
    return [m.value for m in harness.changelog.values() if m.value is not None]


async def _open_window(catalog: ModelCatalog) -> tuple[StageHarness, list[bytes | None]]:
    """A merger with minute 0 reported and minute 1 open; and partials for minutes 1 and 2."""
    partials = await _partials(catalog, range(3), 500)
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, partials[:2], _keys(2))
    await harness.flush()
    assert [r.event_count for r in _reports(harness)] == [501]
    assert len(_live_states(harness)) == 1
    more = await _partials(catalog, range(1, 3), 100)
    return harness, more


async def test_a_retired_version_gets_its_last_reports_then_its_state_is_deleted() -> None:
    catalog = _catalog()
    harness, in_flight = await _open_window(catalog)
    _retire(catalog)
    # Counted before the retirement, merged after it: it goes into the last report.
    await harness.put(PARTIALS, 0, in_flight[:1], _keys(1))
    await harness.flush()
    assert [r.event_count for r in _reports(harness)] == [501, 501 + 101]
    logic = _logic(harness)
    assert (logic.models, logic.partition_of, logic.saved) == ({}, {}, {})
    assert _live_states(harness) == []  # a tombstone: compaction drops the state
    assert logic.evicted == {"retired": 1, "unreported_events": 0}
    # Restarted, the merger does not bring it back; later partials are refused with why.
    again = _merger(catalog, Clock())
    again.changelog = harness.changelog
    await again.assign([(PARTIALS, 0)])
    await again.put(PARTIALS, 0, in_flight[1:], _keys(1))
    await again.flush()
    assert _logic(again).models == {}
    (letter,) = again.dead_letters
    assert letter.reason == "model version m/1 is retired"
    assert _reports(again) == []


async def test_a_removed_version_is_dropped_without_reports_and_its_events_counted() -> None:
    catalog = _catalog()
    harness, _ = await _open_window(catalog)
    catalog.remove("m/1")
    await harness.flush()
    assert len(_reports(harness)) == 1  # only the one before
    assert _logic(harness).models == {} and _live_states(harness) == []
    assert _logic(harness).evicted == {"removed": 1, "unreported_events": 501}


async def test_the_state_of_a_version_retired_while_no_merger_ran_is_deleted() -> None:
    catalog = _catalog()
    harness, _ = await _open_window(catalog)
    await harness.revoke([(PARTIALS, 0)])
    _retire(catalog)
    again = _merger(catalog, Clock())
    again.changelog = harness.changelog
    await again.assign([(PARTIALS, 0)])
    await again.flush()
    # Its windows cannot be judged any more (the catalog keeps no reference): counted.
    assert _reports(again) == [] and _live_states(again) == []
    assert _logic(again).evicted == {"retired": 1, "unreported_events": 501}


async def test_a_stale_state_replaced_in_the_same_flush_keeps_the_new_one() -> None:
    catalog = _catalog()
    harness, _ = await _open_window(catalog)
    await harness.revoke([(PARTIALS, 0)])
    version = catalog.get("m", "1")
    assert version is not None
    catalog.remove("m/1")
    again = _merger(catalog, Clock())
    again.changelog = harness.changelog
    await again.assign([(PARTIALS, 0)])
    catalog.apply(version)  # registered again before the next flush
    await again.put(PARTIALS, 0, await _partials(catalog, range(5, 6), 10), _keys(1))
    await again.flush()
    (state,) = _live_states(again)
    assert list(_logic(again).models) == [("m", "1")]
    assert state == _logic(again).saved[("m", "1")]


async def test_the_profiler_refuses_events_of_a_retired_version_with_the_reason() -> None:
    catalog = _catalog()
    _retire(catalog)
    harness = _profiler(catalog, Clock())
    await harness.assign([(PREDICTIONS.name, 0)])
    await harness.put(PREDICTIONS.name, 0, _events(0, 3))
    await harness.flush()
    assert harness.sent == []
    assert {d.reason for d in harness.dead_letters} == {"model 'm' version '1' is retired"}
    assert len(harness.dead_letters) == 3


async def test_merger_memory_goes_down_when_versions_are_retired() -> None:
    catalog = _catalog()
    partials = await _partials(catalog, range(2), 500)
    logic = Merging(catalog, FakeRevisionLocks(), POLICY, STATE, Clock())
    harness = StageHarness(logic, {PARTIALS: 2}, STATE)
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, partials, _keys(2))
    await harness.flush()
    before = sum(len(s) for s in _live_states(harness)) + len(logic.models)
    _retire(catalog)
    await harness.flush()
    after = sum(len(s) for s in _live_states(harness)) + len(logic.models)
    assert before > 0 and after == 0
