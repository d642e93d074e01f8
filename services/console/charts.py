"""Charts drawn on the server as SVG: pure functions from series to points, paths and colour
classes (the templates only place them; CSP allows no script or inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "HEAT_LEVELS",
    "Band",
    "Bar",
    "Line",
    "LineChart",
    "Sparkline",
    "Tick",
    "Trace",
    "downsample",
    "heat_level",
    "interval_marks",
    "line_chart",
    "share_bars",
    "sparkline",
]

# Heat-map colour classes, from far below the feature's threshold to twice it and more.
HEAT_LEVELS = 6
Values = Sequence[float | None]


@dataclass(frozen=True)
class Sparkline:
    """A polyline of counts in a ``width`` by ``height`` box, with what it sums to."""

    points: str
    total: int
    peak: int
    width: int
    height: int


def sparkline(counts: Sequence[float], width: int = 96, height: int = 24) -> Sparkline:
    """Counts (oldest first) as a polyline; the tallest touches the top, zero the bottom."""
    if not counts:
        return Sparkline("", 0, 0, width, height)
    peak = max(max(counts), 0)
    step = width / max(len(counts) - 1, 1)
    low = height - 1.0  # keep the line's stroke inside the box
    points = " ".join(
        f"{i * step:.1f},{low - (max(c, 0) / peak * (height - 2) if peak else 0):.1f}"
        for i, c in enumerate(counts)
    )
    return Sparkline(points, int(sum(max(c, 0) for c in counts)), int(peak), width, height)


def heat_level(value: float | None, threshold: float | None, drifted: bool) -> str:
    """The colour class of a statistic beside its threshold: ``heat-na`` without a value,
    ``heat-0``…``heat-3`` below the threshold by quarters, ``heat-4``/``heat-5`` drifted
    (up to twice the threshold, and beyond)."""
    if value is None:
        return "heat-na"
    ratio = value / threshold if threshold and threshold > 0 else (2.0 if drifted else 0.0)
    if drifted:
        return "heat-5" if ratio >= 2 else "heat-4"
    return f"heat-{min(int(max(ratio, 0.0) * 4), 3)}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def downsample(
    times: Sequence[datetime], columns: Sequence[Values], max_points: int
) -> tuple[list[datetime], list[list[float | None]]]:
    """At most ``max_points`` points: consecutive points averaged in equal groups (a group's
    time is its first); None values are left out of a mean, a group of only None is None."""
    if len(times) <= max_points:
        return list(times), [list(c) for c in columns]
    groups = [
        (len(times) * g // max_points, len(times) * (g + 1) // max_points)
        for g in range(max_points)
    ]
    out_times = [times[a] for a, _ in groups]
    out = [
        [_mean([v for v in column[a:b] if v is not None]) for a, b in groups] for column in columns
    ]
    return out_times, out


@dataclass(frozen=True)
class Line:
    """A series to draw: its legend, CSS class, values (None: a gap) and whether dashed."""

    label: str
    css: str
    values: Values
    dashed: bool = False


@dataclass(frozen=True)
class Trace:
    """A drawn line: an SVG path (``d``), its class and legend."""

    label: str
    css: str
    d: str
    dashed: bool


@dataclass(frozen=True)
class Band:
    """A shaded interval between two series, as a closed SVG path."""

    label: str
    css: str
    d: str


@dataclass(frozen=True)
class Tick:
    """An axis label at ``at`` (x or y in the chart's coordinates)."""

    at: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """A time chart ready for a template: its box, lines, bands and axis labels."""

    width: int
    height: int
    left: int
    traces: tuple[Trace, ...]
    bands: tuple[Band, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    points: int

    @property
    def empty(self) -> bool:
        """Nothing to draw."""
        return not self.traces and not self.bands


def _path(xs: Sequence[float], ys: Sequence[float | None]) -> str:
    """Runs of known points as lines; a lone point as a dot (a zero-length segment, drawn
    by the round line cap)."""
    runs: list[list[str]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            runs.append([])
        else:
            runs[-1].append(f"{x:.1f} {y:.1f}")
    return " ".join(
        "M" + (" L".join(run) if len(run) > 1 else f"{run[0]} h0") for run in runs if run
    )


def _band_path(
    xs: Sequence[float], low: Sequence[float | None], high: Sequence[float | None]
) -> str:
    """The band's outline, in runs where both bounds are known."""
    runs: list[list[int]] = [[]]
    for i, (a, b) in enumerate(zip(low, high, strict=True)):
        if a is None or b is None:
            runs.append([])
        else:
            runs[-1].append(i)
    shapes = []
    for run in (r for r in runs if r):
        top = [f"{xs[i]:.1f} {high[i]:.1f}" for i in run]
        bottom = [f"{xs[i]:.1f} {low[i]:.1f}" for i in reversed(run)]
        shapes.append("M" + " L".join(top + bottom) + " Z")
    return " ".join(shapes)


def _y_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def line_chart(
    times: Sequence[datetime],
    lines: Sequence[Line],
    band: tuple[str, Values, Values] | None = None,
    width: int = 720,
    height: int = 200,
    max_points: int = 360,
) -> LineChart:
    """Lines over time (and a shaded ``band``: legend, low, high) on one y scale, downsampled
    to ``max_points``; the y axis spans every value drawn, the x axis the first to last time."""
    left, top, bottom = 56, 8, 22
    columns: list[Values] = [line.values for line in lines]
    if band is not None:
        columns += [band[1], band[2]]
    shown_times, shown = downsample(times, columns, max_points)
    known = [v for column in shown for v in column if v is not None]
    if not shown_times or not known:
        return LineChart(width, height, left, (), (), (), (), 0)
    y_low, y_high = _y_range(known)
    start, end = shown_times[0].timestamp(), shown_times[-1].timestamp()
    span = end - start or 1.0
    inner_w, inner_h = width - left - 8, height - top - bottom

    def x_of(t: datetime) -> float:
        return (
            left + (t.timestamp() - start) / span * inner_w if end > start else left + inner_w / 2
        )

    def y_of(v: float | None) -> float | None:
        return None if v is None else top + (y_high - v) / (y_high - y_low) * inner_h

    xs = [x_of(t) for t in shown_times]
    traces = tuple(
        Trace(line.label, line.css, _path(xs, [y_of(v) for v in values]), line.dashed)
        for line, values in zip(lines, shown, strict=False)
        if any(v is not None for v in values)
    )
    bands: tuple[Band, ...] = ()
    if band is not None:
        low, high = shown[-2], shown[-1]
        d = _band_path(xs, [y_of(v) for v in low], [y_of(v) for v in high])
        bands = (Band(band[0], "band", d),) if d else ()
    y_ticks = tuple(
        Tick(top + f * inner_h, f"{y_high - f * (y_high - y_low):.3g}") for f in (0, 0.5, 1)
    )
    picks = sorted({0, len(shown_times) // 2, len(shown_times) - 1})
    x_ticks = tuple(Tick(xs[i], shown_times[i].strftime("%m-%d %H:%M")) for i in picks)
    return LineChart(width, height, left, traces, bands, y_ticks, x_ticks, len(shown_times))


@dataclass(frozen=True)
class Bar:
    """One bin of a distribution: the reference's share and the window's, as bar heights."""

    label: str
    x: float
    slot: float
    reference_share: float
    window_share: float
    reference_y: float
    window_y: float
    reference_height: float
    window_height: float


def share_bars(
    labels: Sequence[str],
    reference_counts: Sequence[float],
    window_counts: Sequence[float],
    width: int = 480,
    height: int = 120,
) -> list[Bar]:
    """Paired bars of each bin's share of the reference and of the window, on one scale;
    empty when the two do not line up bin for bin."""
    if not labels or len(labels) != len(reference_counts) or len(labels) != len(window_counts):
        return []
    ref_total, win_total = sum(reference_counts) or 1.0, sum(window_counts) or 1.0
    ref = [c / ref_total for c in reference_counts]
    win = [c / win_total for c in window_counts]
    top = max(max(ref), max(win)) or 1.0
    slot = width / len(labels)
    bars = []
    for i, label in enumerate(labels):
        rh, wh = ref[i] / top * (height - 2), win[i] / top * (height - 2)
        bars.append(Bar(label, i * slot, slot, ref[i], win[i], height - rh, height - wh, rh, wh))
    return bars


def interval_marks(
    value: float | None, low: float | None, high: float | None, width: int = 120
) -> tuple[float, float, float] | None:
    """A rate in [0, 1] with its interval as x positions on a ``width`` line (low, value,
    high), or None when any is unknown."""
    if value is None or low is None or high is None:
        return None

    def clip(v: float) -> float:
        return round(min(max(v, 0.0), 1.0) * width, 1)

    return clip(low), clip(value), clip(high)
