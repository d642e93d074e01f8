"""The performance reporter on the in-memory stage harness: deltas merged per window, one
revision per flush, revisions carried over a restart from the changelog."""

from __future__ import annotations

from datetime import timedelta

from feedback_joiner.reporting import PARTIALS, REPORTS, Reporting
from tests.samples import T0
from vigil.adapters.stage_testing import StageHarness
from vigil.performance import WindowPerformance
from vigil.wire.performance import PerformancePartial, PerformanceReport

START = T0.replace(minute=0, second=0, microsecond=0)


def delta(labels: list[tuple[bool, float, bool]], extra_predictions: int = 0) -> bytes:
    window = WindowPerformance("binary")
    for predicted, score, actual in labels:
        window.add_prediction(predicted, score)
        window.add_outcome(predicted, score, actual, 60.0)
    for _ in range(extra_predictions):
        window.add_prediction(True, 0.9)
    partial = PerformancePartial(
        model_id="m",
        model_version="1",
        window_start=START,
        window_end=START + timedelta(hours=1),
        state=window.to_bytes(),
    )
    return PARTIALS.encode(partial)


def reports(harness: StageHarness) -> list[PerformanceReport]:
    return [REPORTS.decode(r.value) for r in harness.sent if r.topic == "metrics"]


async def test_deltas_merge_into_one_revised_report_per_flush() -> None:
    harness = StageHarness(Reporting("metrics", "windows"), {"partials": 1}, changelog="windows")
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [delta([(True, 0.9, True)]), delta([(False, 0.2, True)], 2)])
    await harness.flush()
    (first,) = reports(harness)
    assert (first.revision, first.predictions, first.labelled) == (1, 4, 2)
    assert first.metrics["accuracy"] == 0.5
    await harness.put("partials", 0, [delta([(True, 0.8, True)])])
    await harness.flush()
    assert [(r.revision, r.labelled) for r in reports(harness)] == [(1, 2), (2, 3)]
    # A restarted reporter reads the window back and goes on from its revision.
    harness.logic = Reporting("metrics", "windows")
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [delta([(False, 0.1, False)])])
    await harness.flush()
    last = reports(harness)[-1]
    assert (last.revision, last.predictions, last.labelled) == (3, 6, 4)
    assert last.estimated  # CBPE from the scores


async def test_an_unreadable_delta_is_dead_lettered() -> None:
    harness = StageHarness(Reporting("metrics", "windows"), {"partials": 1}, changelog="windows")
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [b"junk"])
    await harness.flush()
    assert len(harness.dead_letters) == 1 and reports(harness) == []
