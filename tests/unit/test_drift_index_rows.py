"""Drift over time as rows: a window's row, the rollups' maths, the resolution a heatmap picks,
quality rates, and the window counts the detector now puts in its reports."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from registry.drift_rows import (
    LEVELS,
    Layout,
    bucket_start,
    decode_row,
    encode_row,
    layout_of,
    level_for,
    merge_rows,
    micros,
    quality_rates,
    row_of,
)
from tests.drift_data import SPEC, T0, events, model_version
from tests.samples import REPORT
from vigil.drift.reference import build_reference_from_batch
from vigil.drift.verdicts import judge
from vigil.drift.window import WindowProfile
from vigil.wire.records import FeatureDrift, MultivariateDrift, WindowReport

HOUR = 3_600_000_000


def _feature(name: str, psi: float | None, drifted: bool = False, **counts: int) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        type="numeric",
        count=counts.get("count", 100),
        missing=counts.get("missing", 0),
        out_of_range=counts.get("out_of_range", 0),
        unseen_categories=counts.get("unseen", 0),
        type_violations=counts.get("violations", 0),
        statistics={} if psi is None else {"psi": psi, "ks_pvalue": 0.5},
        drift_statistic="psi",
        threshold=0.2,
        drifted=drifted,
    )


def _report(minutes: int, features: list[FeatureDrift], **fields: object) -> WindowReport:
    start = T0 + timedelta(minutes=minutes)
    update = {"window_start": start, "window_end": start + timedelta(minutes=1), **fields}
    return REPORT.model_copy(update={"features": features, **update})


def test_a_row_holds_each_features_statistic_verdict_and_counts_by_position() -> None:
    report = _report(
        0,
        [_feature("b", 0.3, True, missing=4), _feature("a", None, count=50)],
        outputs=[_feature("prediction", 0.05)],
        multivariate=MultivariateDrift(
            method="pca", value=2, reference=1, threshold=1.5, drifted=True
        ),
        late_events=7,
    )
    layout = Layout(("a", "z"), ("psi", "psi")).extended(layout_of(report))
    assert layout.names == ("a", "z", "b", "output:prediction")
    row = decode_row(encode_row(row_of(report, layout)))
    assert math.isnan(row.values[0]) and math.isnan(row.values[1])
    assert row.values[2:].tolist() == [0.3, 0.05]
    assert row.drifted.tolist() == [False, False, True, False]
    assert row.counts[:, 0].tolist() == [50, 0, 100, 100]
    assert row.counts[2, 1] == 4
    assert (row.events, row.late, row.windows, row.multivariate) == (1000, 7, 1, True)
    assert row.start == micros(T0) and row.end - row.start == 60_000_000


def test_a_bucket_takes_the_worst_statistic_any_verdict_and_sums_counts() -> None:
    layout = Layout(("a", "b"), ("psi", "psi"))
    rows = [
        row_of(_report(0, [_feature("a", 0.1, True), _feature("b", None)]), layout),
        row_of(
            _report(1, [_feature("a", 0.4), _feature("b", 0.2, missing=10)], drift_share=0.5),
            layout,
        ),
        row_of(_report(2, [_feature("a", 0.2)], dataset_drift=True, late_events=3), layout),
    ]
    start = bucket_start(rows[0].start, 600)
    merged = merge_rows(rows, start, start + 600_000_000, layout)
    assert merged.values.tolist() == [0.4, 0.2]
    assert merged.drifted.tolist() == [True, False]
    assert merged.counts[:, :2].tolist() == [[300, 0], [200, 10]]
    assert (merged.windows, merged.events, merged.late) == (3, 3000, 3)
    assert merged.dataset_drift and merged.drift_share == 0.5
    assert merged.first == rows[0].start and merged.start == start


def test_a_smaller_is_worse_statistic_keeps_its_minimum() -> None:
    layout = Layout(("a", "b"), ("ks_pvalue", "psi"))
    first = row_of(_report(0, [_feature("a", 0.3), _feature("b", 0.3)]), layout)
    second = row_of(_report(1, [_feature("a", 0.01), _feature("b", 0.01)]), layout)
    assert merge_rows([first, second], 0, 1, layout).values.tolist() == [0.01, 0.3]


def test_rollups_of_rollups_equal_one_rollup_of_the_windows() -> None:
    rng = np.random.default_rng(3)
    layout = Layout(("a", "b", "c"), ("psi",) * 3)
    rows = [
        row_of(
            _report(
                m,
                [_feature(n, float(rng.random()), bool(rng.random() < 0.1)) for n in "abc"],
                late_events=int(rng.integers(5)),
            ),
            layout,
        )
        for m in range(180)
    ]
    day = bucket_start(rows[0].start, 86400)
    flat = merge_rows(rows, day, day + 86_400_000_000, layout)
    tens = [merge_rows(rows[i : i + 10], 0, 0, layout) for i in range(0, 180, 10)]
    hours = [merge_rows(tens[i : i + 6], 0, 0, layout) for i in range(0, 18, 6)]
    nested = merge_rows(hours, day, day + 86_400_000_000, layout)
    assert nested.values.tolist() == flat.values.tolist()
    assert nested.counts.tolist() == flat.counts.tolist()
    assert (nested.windows, nested.events, nested.late) == (180, 180_000, flat.late)


def test_a_row_written_before_a_feature_was_added_reads_it_as_absent() -> None:
    old = row_of(_report(0, [_feature("a", 0.1)]), Layout(("a",), ("psi",)))
    layout = Layout(("a", "b"), ("psi", "psi"))
    new = row_of(_report(1, [_feature("a", 0.1), _feature("b", 0.3, True)]), layout)
    merged = merge_rows([decode_row(encode_row(old)), new], 0, 1, layout)
    assert merged.values.tolist() == [0.1, 0.3]
    assert merged.counts[:, 0].tolist() == [200, 100]


@pytest.mark.parametrize(
    ("hours", "windows", "columns", "level"),
    [
        (24, 1440, 200, 600),  # 144 ten-minute buckets
        (24, 150, 200, 0),  # the windows themselves fit
        (24 * 7, 10080, 200, 3600),
        (24 * 30, 43200, 200, 21600),  # 120 six-hour buckets
        (24 * 30, 43200, 20, 86400),
        (24 * 365, 10**6, 10, 86400),  # none fits: the coarsest
    ],
)
def test_the_heatmap_picks_the_finest_resolution_within_its_columns(
    hours: int, windows: int, columns: int, level: int
) -> None:
    since = micros(T0)
    assert level_for(since, since + hours * HOUR, windows, columns) == level


def test_buckets_are_aligned_on_the_epoch() -> None:
    at = micros(T0) + 123
    for seconds in LEVELS:
        start = bucket_start(at, seconds)
        assert start % (seconds * 1_000_000) == 0 and start <= at < start + seconds * 1_000_000


def test_quality_rates_are_faults_per_value_over_every_feature() -> None:
    counts = np.array([[100, 10, 5, 0, 1], [300, 30, 0, 8, 3]], np.int64)
    assert quality_rates(counts) == {
        "missing_rate": 0.1,
        "out_of_range_rate": 5 / 400,
        "unseen_rate": 8 / 400,
        "type_violation_rate": 4 / 400,
    }
    assert quality_rates(np.zeros((2, 5), np.int64))["missing_rate"] == 0.0


def test_a_report_counts_the_window_on_its_references_bins() -> None:
    rng = np.random.default_rng(7)
    version = model_version()
    reference = build_reference_from_batch(SPEC, events(rng, 5000), "uploaded", T0)
    window = WindowProfile(reference, SPEC)
    window.add(events(rng, 2000, shift=0.5))
    verdict = judge(version, reference, window)
    profiles = {p.name: p for p in reference.features}
    for drift in verdict.features:
        profile = profiles[drift.feature]
        usable = drift.count - drift.missing - drift.type_violations
        if drift.type == "numeric":
            assert len(drift.bin_counts) == len(profile.bin_counts) == len(profile.bin_edges) + 1
            assert sum(drift.bin_counts) == usable and drift.category_counts == []
        else:
            assert len(drift.category_counts) == len(profile.categories) + 1
            assert sum(drift.category_counts) == usable and drift.bin_counts == []
