"""Drifted segments for the review queue (``feedback.segment_watch``), no I/O: a version's
events kept with their groups, a reported window judged group by group once its events are
read, only the group that moved drifting, and its predictions held by that drifted window."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from feedback.review import Candidate, micros
from feedback.segment_watch import SegmentWatch, judge_window, watched
from registry.handlers import reference_from_rows
from tests.samples import MODEL, PREDICTION, T0
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.segments import SegmentSpec

HOUR = 3_600_000_000


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    regions = rng.choice(["eu", "us"], n)
    incomes = rng.lognormal(10, 0.3, n)
    return [{"income": float(i), "region": str(r)} for i, r in zip(incomes, regions, strict=True)]


def _version() -> ModelVersion:
    declared = MODEL.model_copy(
        update={"segments": [SegmentSpec(name="region")], "sensitive_attributes": []}
    )
    rows = _rows(np.random.default_rng(1), 4000)
    reference, errors = reference_from_rows(declared, rows, T0 - timedelta(days=1))
    assert reference is not None, errors
    return declared.model_copy(update={"reference": reference})


def _events(n: int, seconds: float = 0.8) -> list[PredictionEvent]:
    """``n`` events ``seconds`` apart from T0: in "us" the income doubled."""
    events = []
    for i, row in enumerate(_rows(np.random.default_rng(2), n)):
        if row["region"] == "us":
            row["income"] = float(row["income"]) * 2  # type: ignore[arg-type]
        events.append(
            PREDICTION.model_copy(
                update={
                    "prediction_id": f"p{i}",
                    "timestamp": T0 + timedelta(seconds=i * seconds),
                    "features": row,
                }
            )
        )
    return events


def test_only_the_group_that_moved_drifts_and_holds_its_own_predictions() -> None:
    version = _version()
    watch = SegmentWatch(max_rows=20_000, settle_seconds=30)
    events = _events(4600)  # 4500 in the first hour, the rest after it
    groups = [watch.add(version, e) for e in events]
    assert groups[0] == {"region": events[0].features["region"]}
    start = micros(T0)
    watch.reported((version.model_id, version.version), start, start + HOUR, now=0.0)
    [(pending, rows)] = watch.due(now=0.0)  # read past the window's end: no need to wait
    assert len(rows.features) == 4500 and not watch.pending
    [window] = judge_window(version, rows, pending.start, pending.end)
    assert (window.segment, window.group) == ("region", "us") and "income" in window.drifted
    assert window.field == f"{version.version}/{start}/region=us"
    us = next(i for i, g in enumerate(groups) if g["region"] == "us")
    eu = next(i for i, g in enumerate(groups) if g["region"] == "eu")
    late = next(i for i, e in enumerate(events) if micros(e.timestamp) >= start + HOUR)
    assert window.holds(Candidate.of(events[us].model_dump(), groups[us]))
    assert not window.holds(Candidate.of(events[eu].model_dump(), groups[eu]))
    assert not window.holds(Candidate.of(events[late].model_dump(), groups[late]))


def test_a_window_waits_for_its_events_until_it_settles() -> None:
    version = _version()
    watch = SegmentWatch(max_rows=20_000, settle_seconds=30)
    for e in _events(100):  # all inside the first hour: its end not read yet
        watch.add(version, e)
    watch.reported((version.model_id, version.version), micros(T0), micros(T0) + HOUR, now=100.0)
    assert watch.due(now=110.0) == []
    [(_, rows)] = watch.due(now=130.0)
    assert len(rows.features) == 100
    # 100 events: fewer per group than the detector's minimum, so no group is judged
    assert judge_window(version, rows, micros(T0), micros(T0) + HOUR) == []


def test_a_version_without_segments_or_reference_is_not_watched_and_memory_is_bounded() -> None:
    version = _version()
    assert watched(version)
    plain = version.model_copy(update={"segments": [], "sensitive_attributes": []})
    assert not watched(plain) and not watched(version.model_copy(update={"reference": None}))
    assert not watched(version.model_copy(update={"status": "retired"}))
    watch = SegmentWatch(max_rows=50, settle_seconds=0)
    assert watch.add(plain, _events(1)[0]) == {} and not watch.rows
    for e in _events(120):
        watch.add(version, e)
    assert len(watch.rows[(version.model_id, version.version)]) == 50
    watch.forget()
    assert not watch.rows and not watch.pending
