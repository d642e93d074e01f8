"""The answers of the drift heatmap and the fleet, from what the indexes hold. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.drift_rows import DriftRow, Layout, from_micros, quality_rates
from vigil.drift.verdicts import threshold
from vigil.wire.records import ModelVersion, WindowReport

__all__ = [
    "HEADLINE",
    "FleetDrift",
    "Heatmap",
    "drift_summary",
    "fleet_entry",
    "heatmap_answer",
    "performance_headline",
]

# The metric the fleet shows of a version, the first its report has (as the console does).
HEADLINE = ("accuracy", "f1", "mae", "rmse")
_DEFAULT_STATISTIC = "psi"  # every verdict's statistic today (vigil.drift.verdicts)
_OUTPUT = "output:"


@dataclass(frozen=True)
class Heatmap:
    """A version's rows over a range: windows (``resolution`` 0) or buckets of that many
    seconds, oldest first, on ``layout``."""

    layout: Layout
    resolution: int
    rows: list[DriftRow]


@dataclass(frozen=True)
class FleetDrift:
    """A version's events per hour over the last 24 hours and its newest window's verdicts."""

    traffic: list[int]
    latest: dict[str, Any] | None


def drift_summary(report: WindowReport) -> dict[str, Any]:
    """What the fleet shows of a version's newest window."""
    return {
        "window_end": report.window_end.isoformat(),
        "dataset_drift": report.dataset_drift,
        "drifted_features": list(report.drifted_features),
        "drift_share": report.drift_share,
    }


def _iso(value: int) -> str:
    return from_micros(value).isoformat()


def _names(version: ModelVersion, layout: Layout) -> list[str]:
    """The version's features in registry order, then the outputs its reports have."""
    return [f.name for f in version.features] + [n for n in layout.names if n.startswith(_OUTPUT)]


def _threshold(version: ModelVersion, name: str) -> float:
    if name.startswith(_OUTPUT):
        return threshold(version, name[len(_OUTPUT) :], output=True)
    return threshold(version, name)


def _column(row: DriftRow, positions: list[int]) -> dict[str, Any]:
    row = row.padded(max(positions, default=-1) + 1)
    values = [row.values[i] if i >= 0 else math.nan for i in positions]
    return {
        "start": _iso(row.start),
        "end": _iso(row.end),
        "window_start": _iso(row.first),
        "windows": row.windows,
        "events": row.events,
        "late_events": row.late,
        "dataset_drift": row.dataset_drift,
        "drift_share": row.drift_share,
        "multivariate_drifted": row.multivariate,
        "values": [None if math.isnan(v) else float(v) for v in values],
        "drifted": [bool(row.drifted[i]) if i >= 0 else False for i in positions],
        "quality": quality_rates(row.counts),
    }


def heatmap_answer(
    version: ModelVersion, heatmap: Heatmap, since: datetime, until: datetime
) -> dict[str, Any]:
    """``GET …/drift/heatmap``: per column, each feature's worst statistic and verdicts."""
    layout = heatmap.layout
    names = _names(version, layout)
    index = {n: i for i, n in enumerate(layout.names)}
    positions = [index.get(n, -1) for n in names]
    statistics = {
        n: layout.statistics[i] if i >= 0 else _DEFAULT_STATISTIC
        for n, i in zip(names, positions, strict=True)
    }
    resolution = heatmap.resolution
    if resolution == 0 and heatmap.rows:
        first = heatmap.rows[0]
        resolution = (first.end - first.start) // 1_000_000
    return {
        "model_id": version.model_id,
        "version": version.version,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "resolution_seconds": resolution or None,
        "features": names,
        "statistics": statistics,
        "thresholds": {n: _threshold(version, n) for n in names},
        "columns": [_column(row, positions) for row in heatmap.rows],
    }


def performance_headline(latest: Mapping[str, Any]) -> dict[str, Any]:
    """A version's latest performance window as the fleet shows it."""
    metrics: Mapping[str, float] = latest.get("metrics") or {}
    reference: Mapping[str, float] = latest.get("reference_metrics") or {}
    metric = next((m for m in HEADLINE if m in metrics), None)
    return {
        "window_end": latest.get("window_end"),
        "metric": metric,
        "value": metrics.get(metric) if metric else None,
        "reference": reference.get(metric) if metric else None,
        "degraded": list(latest.get("degraded") or ()),
        "value_per_prediction": latest.get("value_per_prediction"),
        "reference_value_per_prediction": latest.get("reference_value_per_prediction"),
        "currency": latest.get("currency"),
        "estimated": dict(latest.get("estimated") or {}),
    }


def fleet_entry(
    model_id: str,
    version: str,
    since: datetime,
    drift: FleetDrift,
    performance: Mapping[str, Any] | None,
    last_label_at: datetime | None,
    readable: bool,
) -> dict[str, Any]:
    """One version of ``GET /v1/fleet``; performance only when ``readable``."""
    return {
        "model_id": model_id,
        "version": version,
        "traffic": {"bucket_seconds": 3600, "since": since.isoformat(), "counts": drift.traffic},
        "drift": drift.latest,
        "performance": performance_headline(performance) if readable and performance else None,
        "performance_readable": readable,
        "last_label_at": last_label_at.isoformat() if readable and last_label_at else None,
    }
