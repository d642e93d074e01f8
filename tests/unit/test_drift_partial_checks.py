"""Partials the merger must refuse whole: keyed for one model version but counted for another,
or holding a window profile that is no profile at all. Through ``StageHarness``.

The hostile corpus (``tests/e2e/test_hostile.py``) found both merged: the merger looked the
version up by the record key only, and took a corrupt window profile for one counted against
another reference (its events counted as stale, the partial's other windows merged).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from drift_detector.merging import Merging
from drift_detector.partials import Partial, PartialWindow
from tests.unit.test_stages import (
    PARTIALS,
    SPEC,
    T0,
    Clock,
    _catalog,
    _keys,
    _merger,
    _partials,
    _reports,
)
from vigil.adapters.stage_testing import StageHarness
from vigil.drift.reference import build_reference
from vigil.drift.window import WindowProfile


def _logic(harness: StageHarness) -> Merging:
    assert isinstance(harness.logic, Merging)
    return harness.logic


def _events_held(harness: StageHarness) -> int:
    windows = _logic(harness).models.get(("m", "1"))
    return 0 if windows is None else sum(w.events for w in windows.windows.values())


async def test_a_partial_keyed_for_one_version_but_counted_for_another_is_dead_lettered() -> None:
    catalog = _catalog()
    good = await _partials(catalog, range(3), 500)
    other = Partial.from_bytes(good[0] or b"")
    other.model_id = "o"
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, [other.to_bytes()], _keys(1))
    assert _events_held(harness) == 0
    await harness.put(PARTIALS, 0, good, _keys(3))
    await harness.flush()
    (letter,) = harness.dead_letters
    assert letter.record.offset == 0
    assert letter.reason == ("partial not mergeable: keyed m/1 but counted for model version o/1")
    assert _logic(harness).failed["partial"] == 1
    # The good partials alone: the first minute is counted once, not twice.
    assert [r.event_count for r in _reports(harness)] == [501, 501]


async def test_a_partial_with_a_corrupt_window_profile_is_dead_lettered_whole() -> None:
    catalog = _catalog()
    good = await _partials(catalog, range(3), 500)
    first, second = (Partial.from_bytes(p or b"") for p in good[:2])
    junk = PartialWindow(second.windows[0].start, 5, 1, 2, b"junk profile")
    # A window that merges, then one that is no profile: neither goes in, nor the marks.
    poisoned = Partial(
        "m", "1", first.reference_version, second.marks, [first.windows[0], junk], None, 2
    )
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, [poisoned.to_bytes()], _keys(1))
    logic = _logic(harness)
    windows = logic.models[("m", "1")]
    assert (_events_held(harness), windows.marks, windows.partitions) == (0, {}, 0)
    assert not logic.sources  # dead-lettered once, not again should its flush fail
    await harness.put(PARTIALS, 0, good, _keys(3))
    await harness.flush()
    (letter,) = harness.dead_letters
    assert letter.record.offset == 0
    assert letter.reason.startswith("partial not mergeable: corrupt window profile: ")
    assert logic.failed["partial"] == 1
    reports = _reports(harness)
    assert [r.event_count for r in reports] == [501, 501]
    assert all(r.features for r in reports)


async def test_a_profile_counted_against_other_bins_is_still_counted_as_stale() -> None:
    catalog = _catalog()
    good = await _partials(catalog, range(1), 500)
    partial = Partial.from_bytes(good[0] or b"")
    rng = np.random.default_rng(7)
    rows = [{"a": float(x) * 3, "c": "q"} for x in rng.normal(size=500)]
    # Another reference of the same number: one another detector built, say.
    other = build_reference(SPEC, rows, "production", T0 + timedelta(hours=1))
    assert other.version == partial.reference_version
    partial.windows = [
        PartialWindow(w.start, w.events, w.first, w.last, WindowProfile(other, SPEC).to_bytes())
        for w in partial.windows
    ]
    harness = _merger(catalog, Clock())
    await harness.assign([(PARTIALS, 0)])
    await harness.put(PARTIALS, 0, [partial.to_bytes()], _keys(1))
    await harness.flush()
    assert not harness.dead_letters
    (window,) = _logic(harness).models[("m", "1")].windows.values()
    assert window.events == window.stale == 501
