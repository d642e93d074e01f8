"""What the model page and the window page show, shaped from the services' answers (no I/O):
versions, the drift heat map, the time charts, fairness by group, a window's distributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlencode

from console.charts import Bar, Line, LineChart, heat_level, interval_marks, line_chart, share_bars

__all__ = [
    "FairnessTable",
    "FeatureView",
    "HeatMap",
    "HeatRow",
    "fairness_tables",
    "heat_map",
    "performance_charts",
    "pick_version",
    "quality_chart",
    "segment_names",
    "version_href",
    "window_features",
]

# The metric a window is summed up by: the first one its report has.
HEADLINE = ("accuracy", "f1", "mae", "rmse", "r2")
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision")
QUALITY = ("missing_rate", "out_of_range_rate", "unseen_rate", "type_violation_rate")


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def pick_version(versions: Sequence[Mapping[str, Any]], wanted: str) -> Mapping[str, Any] | None:
    """The version asked for; without one, the champion (else the newest not retired)."""
    if wanted:
        return next((v for v in versions if v.get("version") == wanted), None)
    for status in ("champion", "challenger", "shadow", "retired"):
        found = [v for v in versions if v.get("status") == status]
        if found:
            return found[-1]
    return None


def segment_names(version: Mapping[str, Any]) -> list[str]:
    """What drift can be asked by for a version (the registry's ``GET …/drift/segments``):
    its segments, its sensitive attributes, and the crossed pair."""
    names = [str(s.get("name")) for s in version.get("segments") or [] if s.get("name")]
    names += [str(a) for a in version.get("sensitive_attributes") or [] if a not in names]
    cross = [str(c) for c in version.get("segment_cross") or []]
    return names + ([" x ".join(cross)] if len(cross) == 2 else [])


def version_href(model_id: str, version: str) -> str:
    """The path of a version's window pages (a window's start is appended)."""
    return f"/models/{quote(model_id, safe='')}/versions/{quote(version, safe='')}/windows/"


@dataclass(frozen=True)
class HeatCell:
    """One window bucket of one feature: its colour class, accessible name and link."""

    css: str
    label: str
    href: str | None


@dataclass(frozen=True)
class HeatRow:
    """A feature's cells, oldest first, and its threshold."""

    feature: str
    statistic: str
    threshold: float | None
    cells: list[HeatCell]


@dataclass(frozen=True)
class HeatMap:
    """Features by window buckets, and the buckets' times and dataset-drift marks."""

    rows: list[HeatRow]
    starts: list[str]
    dataset_drift: list[bool]
    resolution_seconds: float | None
    windows: int


def heat_map(answer: Mapping[str, Any], model_id: str, version: str) -> HeatMap:
    """The registry's heat map as rows of cells linking to each bucket's window page."""
    columns: list[Mapping[str, Any]] = list(answer.get("columns") or ())
    features = [str(f) for f in answer.get("features") or ()]
    statistics: Mapping[str, Any] = answer.get("statistics") or {}
    thresholds: Mapping[str, Any] = answer.get("thresholds") or {}
    base = version_href(model_id, version)
    starts, links = [], []
    for column in columns:
        begins = _time(column.get("start"))
        starts.append(begins.strftime("%Y-%m-%d %H:%M") if begins else str(column.get("start")))
        window = column.get("window_start")
        links.append(base + quote(str(window), safe="") if window else None)
    rows = []
    for i, feature in enumerate(features):
        statistic = str(statistics.get(feature) or "psi")
        threshold = _number(thresholds.get(feature))
        query = "?" + urlencode({"feature": feature})
        cells = []
        for column, start, link in zip(columns, starts, links, strict=True):
            values, drifted = column.get("values") or (), column.get("drifted") or ()
            value = _number(values[i]) if i < len(values) else None
            bad = bool(drifted[i]) if i < len(drifted) else False
            if value is None:
                cells.append(HeatCell("heat-na", f"{feature}, {start}: no data", None))
                continue
            verdict = "drifted" if bad else "not drifted"
            label = f"{feature}, {start}: {statistic} {value:.3g}, {verdict}"
            cells.append(HeatCell(heat_level(value, threshold, bad), label, link and link + query))
        rows.append(HeatRow(feature, statistic, threshold, cells))
    return HeatMap(
        rows,
        starts,
        [bool(c.get("dataset_drift")) for c in columns],
        _number(answer.get("resolution_seconds")),
        sum(int(c.get("windows") or 0) for c in columns),
    )


def quality_chart(answer: Mapping[str, Any]) -> LineChart:
    """The heat map's buckets' data-quality rates over time."""
    columns = [c for c in answer.get("columns") or () if _time(c.get("start"))]
    times = [_time(c["start"]) for c in columns]
    lines = [
        Line(
            name.removesuffix("_rate").replace("_", " "),
            f"q{n}",
            [_number((c.get("quality") or {}).get(name)) for c in columns],
        )
        for n, name in enumerate(QUALITY)
    ]
    return line_chart([t for t in times if t], lines)


def _headline(reports: Sequence[Mapping[str, Any]]) -> str | None:
    for metric in HEADLINE:
        if any(
            metric in (r.get("metrics") or {}) or metric in (r.get("estimated") or {})
            for r in reports
        ):
            return metric
    return None


def performance_charts(
    reports: Sequence[Mapping[str, Any]],
) -> tuple[str | None, LineChart, LineChart]:
    """The headline metric, its chart (realised with its interval, estimated before labels,
    reference dashed) and the value per prediction's chart (realised, estimated, reference)."""
    dated = [(t, r) for r in reports if (t := _time(r.get("window_start")))]
    times = [t for t, _ in dated]
    metric = _headline([r for _, r in dated])

    def of(field: str, name: str | None) -> list[float | None]:
        return [_number((r.get(field) or {}).get(name)) if name else None for _, r in dated]

    def plain(field: str) -> list[float | None]:
        return [_number(r.get(field)) for _, r in dated]

    metric_chart = line_chart(
        times,
        [
            Line("realised", "realised", of("metrics", metric)),
            Line("estimated before labels", "estimated", of("estimated", metric)),
            Line("reference", "reference", of("reference_metrics", metric), dashed=True),
        ],
        band=("95 % interval", of("metrics_low", metric), of("metrics_high", metric)),
    )
    estimated_value = [
        (_number(r.get("estimated_value")) or 0.0) / r["predictions"]
        if _number(r.get("estimated_value")) is not None and r.get("predictions")
        else None
        for _, r in dated
    ]
    value_chart = line_chart(
        times,
        [
            Line("realised", "realised", plain("value_per_prediction")),
            Line("estimated before labels", "estimated", estimated_value),
            Line("reference", "reference", plain("reference_value_per_prediction"), dashed=True),
        ],
    )
    return metric, metric_chart, value_chart


@dataclass(frozen=True)
class FairnessTable:
    """One sensitive attribute in the latest window judged: each group's rates with their
    intervals (and marks on a 0-1 line), the measures across groups, the violations."""

    attribute: str
    window_end: str
    rates: list[str]
    groups: list[tuple[str, int, int, list[tuple[str, tuple[float, float, float] | None]]]]
    measures: list[tuple[str, Mapping[str, Any], bool]]


def _rate(group: Mapping[str, Any], name: str) -> tuple[str, tuple[float, float, float] | None]:
    value = _number((group.get("rates") or {}).get(name))
    low = _number((group.get("rates_low") or {}).get(name))
    high = _number((group.get("rates_high") or {}).get(name))
    if value is None:
        return "—", None
    text = f"{value:.3f}" + (
        f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    )
    return text, interval_marks(value, low, high)


def fairness_tables(windows: Sequence[Mapping[str, Any]]) -> list[FairnessTable]:
    """Fairness of the newest window that has any, one table per attribute."""
    latest = next((w for w in reversed(windows) if w.get("fairness")), None)
    if latest is None:
        return []
    tables = []
    for report in latest["fairness"]:
        groups = [
            (
                str(g.get("group")),
                int(g.get("predictions") or 0),
                int(g.get("labelled") or 0),
                [_rate(g, name) for name in RATES],
            )
            for g in report.get("groups") or ()
        ]
        violations = set(report.get("violations") or ())
        measures = [
            (name, m, name in violations) for name, m in (report.get("measures") or {}).items()
        ]
        tables.append(
            FairnessTable(
                str(report.get("attribute")),
                str(latest.get("window_end", "")),
                list(RATES),
                groups,
                measures,
            )
        )
    return tables


@dataclass(frozen=True)
class FeatureView:
    """One feature of a window: its verdict, counts, every statistic, and its distribution
    beside the reference's when the report carries the window's counts."""

    feature: Mapping[str, Any]
    ratio: float
    focused: bool
    bars: list[Bar]


def _edges_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return []
    inner = [f"{a:.3g}..{b:.3g}" for a, b in pairwise(edges)]
    return [f"<{edges[0]:.3g}", *inner, f"≥{edges[-1]:.3g}"]


def _bars(feature: Mapping[str, Any], profile: Mapping[str, Any] | None) -> list[Bar]:
    if profile is None:
        return []
    if feature.get("bin_counts"):
        labels = _edges_labels(profile.get("bin_edges") or [])
        return share_bars(labels, profile.get("bin_counts") or [], feature["bin_counts"])
    if feature.get("category_counts"):
        labels = list(profile.get("categories") or [])
        reference = list(profile.get("category_counts") or [])
        counts = list(feature["category_counts"])
        if len(counts) == len(labels) + 1:  # the categories the reference never saw
            labels, reference = [*labels, "unseen"], [*reference, 0]
        return share_bars(labels, reference, counts)
    return []


def _profiles(version: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    reference = (version or {}).get("reference") or {}
    found = {str(p.get("name")): p for p in reference.get("features") or ()}
    for output in ("prediction", "score"):
        if reference.get(output):
            found.setdefault(str(reference[output].get("name")), reference[output])
    return found


def window_features(
    report: Mapping[str, Any], version: Mapping[str, Any] | None, focus: str
) -> list[FeatureView]:
    """The window's features and outputs, the one asked about first, then the most drifted."""
    profiles = _profiles(version)
    views = []
    for feature in [*(report.get("features") or ()), *(report.get("outputs") or ())]:
        name = str(feature.get("feature"))
        value = _number((feature.get("statistics") or {}).get(feature.get("drift_statistic")))
        threshold = _number(feature.get("threshold"))
        ratio = value / threshold if value is not None and threshold else 0.0
        focused = focus in (name, f"output:{name}")
        views.append(FeatureView(feature, ratio, focused, _bars(feature, profiles.get(name))))
    return sorted(views, key=lambda v: (not v.focused, not v.feature.get("drifted"), -v.ratio))
