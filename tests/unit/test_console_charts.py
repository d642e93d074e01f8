"""The console's charts: SVG geometry and colour classes computed from series."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from console.charts import (
    Line,
    downsample,
    heat_level,
    interval_marks,
    line_chart,
    share_bars,
    sparkline,
)

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _points(points: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_a_sparkline_spans_its_box_from_zero_to_the_peak() -> None:
    line = sparkline([0, 5, 10, 5], width=90, height=20)
    points = _points(line.points)
    assert [x for x, _ in points] == [0.0, 30.0, 60.0, 90.0]
    assert points[0][1] == 19.0 and points[2][1] == 1.0  # zero at the bottom, the peak on top
    assert points[1][1] == points[3][1] == 10.0
    assert (line.total, line.peak) == (20, 10)


def test_a_sparkline_of_no_traffic_lies_flat_and_of_nothing_is_empty() -> None:
    assert {y for _, y in _points(sparkline([0, 0, 0]).points)} == {23.0}
    assert sparkline([]).points == "" and sparkline([]).total == 0


@pytest.mark.parametrize(
    ("value", "threshold", "drifted", "css"),
    [
        (None, 0.2, False, "heat-na"),
        (0.01, 0.2, False, "heat-0"),
        (0.06, 0.2, False, "heat-1"),
        (0.12, 0.2, False, "heat-2"),
        (0.19, 0.2, False, "heat-3"),
        (0.5, 0.2, False, "heat-3"),  # above the threshold but not judged drifted (few events)
        (0.25, 0.2, True, "heat-4"),
        (0.4, 0.2, True, "heat-5"),
        (0.3, None, True, "heat-5"),
        (0.3, 0.0, False, "heat-0"),
        (-0.1, 0.2, False, "heat-0"),
    ],
)
def test_heat_levels_follow_the_statistic_beside_its_threshold(
    value: float | None, threshold: float | None, drifted: bool, css: str
) -> None:
    assert heat_level(value, threshold, drifted) == css


def test_downsampling_averages_groups_and_skips_gaps() -> None:
    times = [T0 + timedelta(hours=h) for h in range(6)]
    shown, [values] = downsample(times, [[1.0, 3.0, None, None, 5.0, None]], 3)
    assert shown == [times[0], times[2], times[4]]
    assert values == [2.0, None, 5.0]
    same, [kept] = downsample(times[:2], [[1.0, None]], 3)
    assert same == times[:2] and kept == [1.0, None]


def test_720_windows_are_drawn_with_at_most_the_points_asked_for() -> None:
    times = [T0 + timedelta(hours=h) for h in range(720)]
    chart = line_chart(
        times, [Line("a", "realised", [float(h) for h in range(720)])], max_points=240
    )
    assert chart.points == 240
    assert chart.traces[0].d.count("L") == 239


def test_a_line_breaks_at_missing_values_and_a_lone_point_is_a_dot() -> None:
    times = [T0 + timedelta(hours=h) for h in range(5)]
    chart = line_chart(times, [Line("a", "realised", [1.0, 2.0, None, 3.0, None])])
    runs = chart.traces[0].d.split("M")[1:]
    assert len(runs) == 2
    assert runs[0].count("L") == 1 and runs[1].strip().endswith("h0")


def test_values_map_onto_the_chart_with_higher_values_higher_up() -> None:
    times = [T0, T0 + timedelta(hours=1)]
    chart = line_chart(times, [Line("a", "realised", [0.0, 1.0])], width=200, height=100)
    (x0, y0), (x1, y1) = [
        tuple(map(float, p.split())) for p in re.split(r"[ML]", chart.traces[0].d)[1:]
    ]
    assert x0 == chart.left and x1 == 200 - 8
    assert y1 < y0
    labels = [float(t.label) for t in chart.y_ticks]
    assert labels[0] > 1.0 and labels[-1] < 0.0  # the axis covers every value, padded


def test_the_reference_is_dashed_the_band_closed_and_an_empty_series_left_out() -> None:
    times = [T0 + timedelta(hours=h) for h in range(3)]
    chart = line_chart(
        times,
        [
            Line("realised", "realised", [0.8, 0.82, 0.81]),
            Line("estimated", "estimated", [None, None, None]),
            Line("reference", "reference", [0.9, 0.9, 0.9], dashed=True),
        ],
        band=("interval", [0.78, None, 0.79], [0.82, None, 0.83]),
    )
    assert [(t.css, t.dashed) for t in chart.traces] == [("realised", False), ("reference", True)]
    (band,) = chart.bands
    assert band.d.count("Z") == 2  # the unknown middle splits the band


def test_a_chart_of_nothing_is_empty() -> None:
    assert line_chart([], [Line("a", "realised", [])]).empty
    assert line_chart([T0], [Line("a", "realised", [None])]).empty


def test_shares_are_compared_on_one_scale() -> None:
    bars = share_bars(["<1", "1..2", ">=2"], [50, 25, 25], [10, 10, 80], width=300, height=100)
    assert [round(b.reference_share, 2) for b in bars] == [0.5, 0.25, 0.25]
    assert [round(b.window_share, 2) for b in bars] == [0.1, 0.1, 0.8]
    tallest = bars[2]
    assert tallest.window_height == 98 and tallest.window_y == 2
    assert bars[0].reference_height == pytest.approx(98 * 0.5 / 0.8)
    assert [b.x for b in bars] == [0, 100, 200] and bars[0].slot == 100
    assert share_bars(["a", "b"], [1, 2], [1, 2, 3]) == []


def test_interval_marks_are_clipped_to_the_line() -> None:
    assert interval_marks(0.5, 0.4, 0.6, width=100) == (40.0, 50.0, 60.0)
    assert interval_marks(0.98, 0.9, 1.02, width=100) == (90.0, 98.0, 100.0)
    assert interval_marks(0.5, None, 0.6) is None
