"""The performance reporter on the in-memory stage harness: deltas merged per window, one
revision per flush, revisions and orphaned labels carried over a restart from the changelog,
and each report set beside its version's reference (the uploaded reference's outcomes, or the
first full window, chosen once and kept on the changelog)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from feedback_joiner.reporting import PARTIALS, REPORTS, Reporting
from tests.samples import MODEL, T0
from vigil.adapters.catalog import ModelCatalog
from vigil.adapters.stage_testing import StageHarness
from vigil.performance import (
    WindowPerformance,
    calibration_of,
    estimated_metrics,
    realised_metrics,
)
from vigil.wire.performance import PerformancePartial, PerformanceReport
from vigil.wire.records import ModelVersion

START = T0.replace(minute=0, second=0, microsecond=0)
HOUR = timedelta(hours=1)
Outcome = tuple[bool, float, bool]  # predicted, score, actual


def delta(
    labels: list[Outcome],
    extra_predictions: int = 0,
    start: datetime = START,
    orphaned: int = 0,
) -> bytes:
    window = WindowPerformance("binary")
    for predicted, score, actual in labels:
        window.add_prediction(predicted, score)
        window.add_outcome(predicted, score, actual, 60.0)
    for _ in range(extra_predictions):
        window.add_prediction(True, 0.9)
    partial = PerformancePartial(
        model_id="m",
        model_version="1",
        window_start=start,
        window_end=start + HOUR,
        state=window.to_bytes(),
        orphaned=orphaned,
    )
    return PARTIALS.encode(partial)


def outcomes(n: int, accuracy: float, seed: int = 0) -> list[Outcome]:
    """``n`` outcomes of scores that are right ``accuracy`` of the time, either class."""
    rng = np.random.default_rng(seed)
    found: list[Outcome] = []
    for i in range(n):
        actual = bool(i % 2)
        predicted = actual if rng.random() < accuracy else not actual
        score = float(rng.uniform(0.5, 1.0) if predicted else rng.uniform(0.0, 0.5))
        found.append((predicted, score, actual))
    return found


def reports(harness: StageHarness) -> list[PerformanceReport]:
    return [REPORTS.decode(r.value) for r in harness.sent if r.topic == "metrics"]


def harness_of(logic: Reporting) -> StageHarness:
    return StageHarness(logic, {"partials": 1}, changelog="windows")


def version(reference: WindowPerformance | None = None) -> ModelVersion:
    """The registry's record of m/1 (a high-risk binary model), with labelled reference rows."""
    assert MODEL.reference is not None
    profile = MODEL.reference.model_copy(
        update={"performance": reference.to_bytes() if reference else None}
    )
    return MODEL.model_copy(
        update={"model_id": "m", "version": "1", "positive_label": None, "reference": profile}
    )


def at(moment: datetime) -> Reporting:
    """A reporter of m/1 whose clock reads ``moment``, without a registry."""
    return Reporting("metrics", "windows", clock=lambda: moment)


async def test_deltas_merge_into_one_revised_report_per_flush() -> None:
    harness = harness_of(Reporting("metrics", "windows"))
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
    assert last.metrics_low["accuracy"] < last.metrics["accuracy"] < last.metrics_high["accuracy"]


async def test_orphaned_labels_add_up_per_window_across_restarts() -> None:
    harness = harness_of(Reporting("metrics", "windows"))
    await harness.assign([("partials", 0)])
    later = START + HOUR
    await harness.put(
        "partials",
        0,
        [
            delta([], orphaned=1),
            delta([(True, 0.9, True)], orphaned=2),
            delta([], orphaned=-1),  # a prediction arrived after all: no longer orphaned
            delta([], start=later, orphaned=4),
        ],
    )
    await harness.flush()
    assert {r.window_start: r.orphaned for r in reports(harness)} == {START: 2, later: 4}
    harness.logic = Reporting("metrics", "windows")
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [delta([], orphaned=3)])
    await harness.flush()
    assert reports(harness)[-1].orphaned == 5
    kept = [PARTIALS.decode(m.value) for m in harness.changelog.values()]
    assert {s.window_start: s.orphaned for s in kept} == {START: 5, later: 4}


async def test_an_unreadable_delta_is_dead_lettered() -> None:
    harness = harness_of(Reporting("metrics", "windows"))
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [b"junk"])
    await harness.flush()
    assert len(harness.dead_letters) == 1 and reports(harness) == []


async def test_the_uploaded_references_outcomes_are_the_reference() -> None:
    rng = np.random.default_rng(5)
    reference = WindowPerformance("binary")
    for score in rng.beta(2, 2, 5000).tolist():  # overconfident: positive with p = score²
        reference.add_prediction(score >= 0.5, score)
        reference.add_outcome(score >= 0.5, score, bool(rng.random() < score**2))
    catalog = ModelCatalog()
    catalog.apply(version(reference))
    harness = harness_of(Reporting("metrics", "windows", versions=catalog))
    await harness.assign([("partials", 0)])
    labels = outcomes(5000, 0.6)
    await harness.put("partials", 0, [delta(labels)])
    await harness.flush()
    (report,) = reports(harness)
    assert report.reference_metrics == realised_metrics(reference)
    assert report.reference_window_start is None
    assert report.reference_value_per_prediction is not None
    # CBPE calibrated on the reference's outcomes, not reading the scores at face value.
    (kept,) = harness.changelog.values()  # the window's state, and no chosen reference
    window = WindowPerformance.from_bytes(PARTIALS.decode(kept.value).state)
    assert report.estimated == pytest.approx(estimated_metrics(window, calibration_of(reference)))
    assert report.estimated != pytest.approx(estimated_metrics(window, calibration_of(None)))
    # A high-risk model (tolerance 0.05): accuracy fell from 0.77 to 0.6 over 5,000 labels.
    assert report.reference_metrics["accuracy"] - report.metrics_high["accuracy"] > 0.05
    assert "accuracy" in report.degraded


async def test_the_first_full_window_is_the_reference_chosen_once_and_kept() -> None:
    now = START + timedelta(minutes=30)
    harness = harness_of(at(now))
    await harness.assign([("partials", 0)])
    early, first, second = START - 3 * HOUR, START - 2 * HOUR, START - HOUR
    await harness.put(
        "partials",
        0,
        [
            delta(outcomes(99, 0.9), start=early),  # ended, but under 100 labels
            delta(outcomes(150, 0.9, 1), extra_predictions=200, start=first),  # coverage 0.43
            delta(outcomes(300, 0.9, 2), extra_predictions=100, start=second),  # full
            delta(outcomes(2000, 0.9, 3), start=START),  # not ended yet
        ],
    )
    await harness.flush()
    by_start = {r.window_start: r for r in reports(harness)}
    reference = by_start[second].metrics
    assert all(r.reference_window_start == second for r in by_start.values())
    assert all(r.reference_metrics == reference for r in by_start.values())
    assert PARTIALS.decode(harness.changelog[0, b"m/1/reference"].value).window_start == second
    # Later labels make an earlier window full and move the chosen one: the choice stands, as
    # the window was when chosen, also for a restarted reporter.
    harness.logic = at(now)
    await harness.assign([("partials", 0)])
    await harness.put(
        "partials",
        0,
        [delta(outcomes(50, 0.5, 4), start=early), delta(outcomes(500, 0.2, 5), start=second)],
    )
    await harness.flush()
    revised = {r.window_start: r for r in reports(harness)[4:]}
    assert set(revised) == {early, second}
    assert revised[second].metrics["accuracy"] < 0.6
    assert all(r.reference_window_start == second for r in revised.values())
    assert all(r.reference_metrics == reference for r in revised.values())


async def test_no_window_is_a_reference_before_it_is_full_and_over() -> None:
    now = START + timedelta(minutes=30)
    harness = harness_of(at(now))
    await harness.assign([("partials", 0)])
    await harness.put(
        "partials",
        0,
        [
            delta(outcomes(5000, 0.9), start=START),  # still open
            delta(outcomes(100, 0.9), extra_predictions=101, start=START - HOUR),  # coverage < 0.5
        ],
    )
    await harness.flush()
    assert all(r.reference_metrics == {} and r.degraded == [] for r in reports(harness))
    assert all(r.reference_window_start is None for r in reports(harness))
    assert (0, b"m/1/reference") not in harness.changelog
    # Once the open window is over, the next flush of the version takes it.
    harness.logic.clock = lambda: START + HOUR + timedelta(minutes=1)
    await harness.put("partials", 0, [delta([], orphaned=1)])
    await harness.flush()
    assert reports(harness)[-1].reference_window_start == START
    assert (0, b"m/1/reference") in harness.changelog


async def test_an_uploaded_reference_wins_over_the_chosen_window() -> None:
    catalog = ModelCatalog()
    catalog.apply(version())
    now = START + timedelta(minutes=30)
    harness = harness_of(Reporting("metrics", "windows", clock=lambda: now, versions=catalog))
    await harness.assign([("partials", 0)])
    await harness.put("partials", 0, [delta(outcomes(200, 0.9), start=START - HOUR)])
    await harness.flush()
    assert reports(harness)[-1].reference_window_start == START - HOUR
    uploaded = WindowPerformance("binary")
    for predicted, score, actual in outcomes(1000, 0.7, 9):
        uploaded.add_prediction(predicted, score)
        uploaded.add_outcome(predicted, score, actual)
    catalog.apply(version(uploaded))
    await harness.put("partials", 0, [delta(outcomes(10, 0.9), start=START)])
    await harness.flush()
    last = reports(harness)[-1]
    assert last.reference_window_start is None
    assert last.reference_metrics == realised_metrics(uploaded)
