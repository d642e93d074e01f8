"""Merging partial window profiles: workers, watermarks, lateness, count windows, state."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from drift_detector.partials import Partial, PartialBuilder, WindowPolicy
from drift_detector.windows import ModelWindows
from vigil.drift.reference import build_reference
from vigil.wire.columns import Batch, batch_from_rows
from vigil.wire.records import DriftConfig, FeatureSpec, ModelVersion, RiskAssessment, WindowReport

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
START = int(T0.timestamp()) * 1_000_000
MINUTE = 60_000_000
SPEC = [
    FeatureSpec(name="a", type="numeric"),
    FeatureSpec(name="b", type="numeric"),
    FeatureSpec(name="c", type="categorical"),
]
POLICY = WindowPolicy(
    size_seconds=60, lateness_seconds=10, idle_close_seconds=30, reference_size=1000
)


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, object]]:
    return [
        {"a": float(a), "b": float(b), "c": str(c)}
        for a, b, c in zip(
            rng.normal(shift, 1, n),
            rng.exponential(1, n),
            rng.choice(["x", "y", "z"], n),
            strict=True,
        )
    ]


def _version(reference: bool = True, drift: DriftConfig | None = None) -> ModelVersion:
    ref = (
        build_reference(SPEC, _rows(np.random.default_rng(0), 3000), "uploaded", T0)
        if reference
        else None
    )
    return ModelVersion(
        model_id="m",
        version="1",
        task="binary",
        features=SPEC,
        owner="me",
        risk=RiskAssessment(probability=3, impact=3, severity="medium"),
        reference=ref,
        drift=drift or DriftConfig(),
        created_at=T0,
        updated_at=T0,
    )


def _batch(rows: list[dict[str, object]], start: int, spacing: int) -> Batch:
    n = len(rows)
    return batch_from_rows(
        "m",
        "1",
        rows,
        [s.name for s in SPEC],
        timestamps=[start + i * spacing for i in range(n)],
        predictions=[i % 2 == 0 for i in range(n)],
        scores=[(i % 10) / 10 for i in range(n)],
    )


def _partial(version: ModelVersion, batch: Batch, partitions: np.ndarray, of: int = 0) -> Partial:
    builder = PartialBuilder(version)
    size = None if version.drift.window_events else POLICY.size(version)
    builder.add(batch, partitions.astype(np.int32), size)
    return Partial.from_bytes(builder.partial(of).to_bytes())


def _close_all(windows: ModelWindows, now: float = 1e9) -> list[WindowReport]:
    return [windows.report(w, T0) for w in windows.close_due(now)]


def test_partials_from_two_workers_give_the_report_one_worker_gives() -> None:
    rng = np.random.default_rng(1)
    version = _version()
    batch = _batch(_rows(rng, 4000, shift=0.3), START, 10_000)
    partitions = np.arange(len(batch)) % 6
    one = ModelWindows(version, POLICY)
    one.add(_partial(version, batch, partitions), 0.0)
    two = ModelWindows(version, POLICY)
    for owned in ((0, 1, 2), (3, 4, 5)):  # each worker owns three partitions
        mine = np.flatnonzero(np.isin(partitions, owned))
        two.add(_partial(version, batch.take(mine), partitions[mine]), 0.0)
    (a,), (b,) = _close_all(one), _close_all(two)
    assert a.event_count == b.event_count == 4000
    assert a.drifted_features == b.drifted_features
    for fa, fb in zip(a.features + a.outputs, b.features + b.outputs, strict=True):
        assert fa.statistics == pytest.approx(fb.statistics, rel=1e-9, abs=1e-12)


def test_a_window_closes_when_the_slowest_partition_passes_its_end_plus_lateness() -> None:
    rng = np.random.default_rng(2)
    version = _version()
    windows = ModelWindows(version, POLICY)
    windows.add(_partial(version, _batch(_rows(rng, 600), START, 50_000), np.zeros(600)), 0.0)
    ahead = _batch(_rows(rng, 10), START + MINUTE + 11_000_000, 1)  # partition 1 is past it
    windows.add(_partial(version, ahead, np.ones(10)), 1.0)
    assert [w.key for w in windows.close_due(2.0)] == []  # partition 0 is still inside
    behind = _batch(_rows(rng, 10), START + MINUTE + 10_500_000, 1)
    windows.add(_partial(version, behind, np.zeros(10)), 2.0)
    assert [w.key for w in windows.close_due(3.0)] == [START]


def test_events_later_than_the_lateness_count_in_the_next_report() -> None:
    rng = np.random.default_rng(3)
    version = _version()
    windows = ModelWindows(version, POLICY)
    first = _batch(_rows(rng, 600), START, 50_000)
    windows.add(_partial(version, first, np.zeros(600)), 0.0)
    windows.add(
        _partial(version, _batch(_rows(rng, 5), START + MINUTE + 20_000_000, 1), np.zeros(5)), 0.0
    )
    (closed,) = windows.close_due(1.0)
    assert windows.report(closed, T0).event_count == 600
    late = _batch(_rows(rng, 7), START + 1_000_000, 1)  # belongs to the published window
    windows.add(_partial(version, late, np.zeros(7)), 1.0)
    (report,) = _close_all(windows)
    assert report.window_start == datetime.fromtimestamp((START + MINUTE) / 1e6, UTC)
    assert (report.event_count, report.late_events) == (12, 7)


def test_event_count_windows_close_once_they_hold_the_count() -> None:
    rng = np.random.default_rng(4)
    version = _version(drift=DriftConfig(window_events=1000))
    windows = ModelWindows(version, POLICY)
    reports = []
    for i in range(5):
        batch = _batch(_rows(rng, 400), START + i * 400_000, 1000)
        windows.add(_partial(version, batch, np.zeros(400)), float(i))
        reports += [windows.report(w, T0) for w in windows.close_due(float(i))]
    assert [r.event_count for r in reports] == [1200]
    assert reports[0].report_id == "m/1/n0"
    assert sum(w.events for w in windows.windows.values()) == 800


def test_without_a_reference_the_first_events_become_it_and_all_are_counted() -> None:
    rng = np.random.default_rng(5)
    windows = ModelWindows(_version(reference=False), POLICY)
    for i in range(3):
        batch = _batch(_rows(rng, 500), START + i * 500 * 10_000, 10_000)
        windows.add(_partial(windows.version, batch, np.full(500, i % 2)), float(i))
    built = windows.built_reference
    assert built is not None and windows.reference is built
    assert (built.source, built.row_count, built.version) == ("production", 1000, 1)
    # Recorded in the history when published, on the registry's latest record.
    assert windows.version.reference_history == []
    assert sum(r.event_count for r in _close_all(windows)) == 1500


def test_a_restored_snapshot_resumes_with_the_same_counts() -> None:
    rng = np.random.default_rng(6)
    version = _version()
    windows = ModelWindows(version, POLICY)
    batch = _batch(_rows(rng, 2000), START, 20_000)
    windows.add(_partial(version, batch.take(np.arange(1000)), np.zeros(1000)), 0.0)
    restored = ModelWindows.restore(windows.snapshot(), version, POLICY, 0.0)
    for w in (windows, restored):
        w.add(_partial(version, batch.take(np.arange(1000, 2000)), np.ones(1000)), 1.0)
    (a,), (b,) = _close_all(windows), _close_all(restored)
    assert a.model_dump(exclude={"created_at"}) == b.model_dump(exclude={"created_at"})
    assert a.event_count == 2000


def test_a_replaced_reference_judges_new_windows_and_counts_every_event() -> None:
    rng = np.random.default_rng(7)
    old = _version()
    windows = ModelWindows(old, POLICY)
    windows.add(_partial(old, _batch(_rows(rng, 600), START, 10_000), np.zeros(600)), 0.0)
    new_reference = build_reference(
        SPEC, _rows(np.random.default_rng(9), 2000), "uploaded", T0, version=2
    )
    new = old.model_copy(update={"reference": new_reference})
    windows.update_version(new)
    # The same window, counted by a worker that already uses the new reference.
    windows.add(
        _partial(new, _batch(_rows(rng, 400), START + 6_000_000, 10_000), np.zeros(400)), 1.0
    )
    windows.add(_partial(new, _batch(_rows(rng, 700), START + MINUTE, 10_000), np.zeros(700)), 1.0)
    first, second = _close_all(windows)
    assert (first.event_count, first.reference_version) == (1000, 1)
    assert first.features[0].count == 600  # the 400 counted in other bins are not compared
    assert (second.event_count, second.reference_version) == (700, 2)


def test_no_watermark_until_every_partition_has_carried_the_version() -> None:
    rng = np.random.default_rng(8)
    version = _version()
    windows = ModelWindows(version, POLICY)
    # Partition 0 is read first, all ten minutes of it: nothing may close on its word alone.
    minutes = _batch(_rows(rng, 1200), START, 500_000)
    windows.add(_partial(version, minutes, np.zeros(1200), of=3), 0.0)
    assert windows.close_due(1.0) == []
    for partition in (1, 2):
        windows.add(_partial(version, minutes, np.full(1200, partition), of=3), 2.0)
    closed = windows.close_due(3.0)
    assert [w.key for w in closed] == [START + i * MINUTE for i in range(9)]  # 10th: + lateness
    assert [w.events for w in closed] == [360] * 9  # 120 a minute from each partition


def test_a_partial_without_a_reference_carries_its_events_through_avro() -> None:
    rng = np.random.default_rng(10)
    version = _version(reference=False)
    batch = _batch(_rows(rng, 300), START, 1000)
    partial = _partial(version, batch, np.arange(300) % 3, of=6)
    assert partial.baseline is not None and partial.windows == []
    assert (partial.events, partial.partitions, sorted(partial.marks)) == (300, 6, [0, 1, 2])
    for name, column in batch.features.items():
        got = partial.baseline.features[name]
        assert np.array_equal(got.kinds, column.kinds)
        assert np.array_equal(got.numbers, column.numbers, equal_nan=True)
        assert [got.vocab[c] if c >= 0 else None for c in got.codes] == [
            column.vocab[c] if c >= 0 else None for c in column.codes
        ]
    assert np.array_equal(partial.baseline.timestamps, batch.timestamps)
    assert np.array_equal(partial.baseline.score, batch.score)


def test_a_state_with_a_baseline_a_built_reference_and_detectors_survives_a_restore() -> None:
    rng = np.random.default_rng(11)
    windows = ModelWindows(_version(reference=False), POLICY)
    windows.add(_partial(windows.version, _batch(_rows(rng, 400), START, 1000), np.zeros(400)), 0)
    restored = ModelWindows.restore(windows.snapshot(), windows.version, POLICY, 0.0)
    assert sum(len(b) for b in restored.baseline) == 400 and restored.reference is None
    # Past the reference size: the reference is built, then saved until it is published.
    windows.add(
        _partial(windows.version, _batch(_rows(rng, 700), START + 400_000, 1000), np.ones(700)), 1
    )
    windows.sequential.update({"a": 0.01, "b": 0.02})
    built = windows.built_reference
    assert built is not None
    restored = ModelWindows.restore(windows.snapshot(), _version(reference=False), POLICY, 1.0)
    assert restored.built_reference == built and restored.reference == built
    assert restored.sequential.state() == windows.sequential.state()
    assert _close_all(restored)[0].model_dump(exclude={"created_at"}) == _close_all(windows)[
        0
    ].model_dump(exclude={"created_at"})


@pytest.mark.parametrize("data", [b"", b"\x00junk", b"\xc3\x01" + bytes(8) + b"x", b"{}"])
def test_malformed_partials_and_states_raise_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        Partial.from_bytes(data)
    with pytest.raises(ValueError):
        ModelWindows.restore(data, _version(), POLICY, 0.0)
