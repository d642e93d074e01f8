"""Drift over time per model version (the ``DriftIndex`` port, kept in Redis by
``registry.drift_redis``), and ``MemoryDriftIndex`` for a registry run without Redis."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from registry.drift_answers import FleetDrift, Heatmap, drift_summary
from registry.drift_rows import (
    DriftRow,
    Layout,
    bucket_start,
    layout_of,
    level_for,
    merge_rows,
    micros,
    row_of,
)
from registry.metrics_feed import ReportIndex
from vigil.wire.base import Record, as_utc
from vigil.wire.records import WindowReport

__all__ = ["DriftIndex", "MemoryDriftIndex"]

_HOUR = 3_600_000_000


class DriftIndex(ReportIndex[WindowReport]):
    """Drift over time per model version: windows, rollups and the latest verdicts."""

    record: ClassVar[type[Record]] = WindowReport

    @abstractmethod
    async def window(self, model_id: str, version: str, start: datetime) -> WindowReport | None:
        """The latest report of the window starting at ``start``, if kept."""

    @abstractmethod
    async def heatmap(
        self, model_id: str, version: str, since: int, until: int, columns: int
    ) -> Heatmap:
        """The windows starting in [since, until) (micros), at the finest resolution with at
        most ``columns`` buckets."""

    @abstractmethod
    async def fleet(
        self, versions: Sequence[tuple[str, str]], since: int
    ) -> dict[tuple[str, str], FleetDrift]:
        """Per version: events per hour over the 24 hours from ``since``, latest verdicts."""


class MemoryDriftIndex(DriftIndex):
    """In this process only: every window's latest report, rows computed when asked."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], dict[int, WindowReport]] = {}

    async def put(self, report: WindowReport) -> bool:
        windows = self.kept.setdefault((report.model_id, report.model_version), {})
        start = micros(report.window_start)
        before = windows.get(start)
        if before is not None and as_utc(before.created_at) >= as_utc(report.created_at):
            return False
        windows[start] = report
        return True

    async def window(self, model_id: str, version: str, start: datetime) -> WindowReport | None:
        return self.kept.get((model_id, version), {}).get(micros(start))

    async def heatmap(
        self, model_id: str, version: str, since: int, until: int, columns: int
    ) -> Heatmap:
        windows = self.kept.get((model_id, version), {})
        reports = [windows[s] for s in sorted(windows)]
        layout = Layout((), ())
        for report in reports:
            layout = layout.extended(layout_of(report))
        rows = [row_of(r, layout) for r in reports]
        inside = [r for r in rows if since <= r.start < until]
        level = level_for(since, until, len(inside), columns)
        if level == 0:
            return Heatmap(layout, 0, inside)
        buckets: dict[int, list[DriftRow]] = {}
        for row in rows:
            bucket = bucket_start(row.start, level)
            if bucket_start(since, level) <= bucket < until:
                buckets.setdefault(bucket, []).append(row)
        step = level * 1_000_000
        merged = [merge_rows(b, s, s + step, layout) for s, b in sorted(buckets.items())]
        return Heatmap(layout, level, merged)

    async def fleet(
        self, versions: Sequence[tuple[str, str]], since: int
    ) -> dict[tuple[str, str], FleetDrift]:
        answer = {}
        for key in versions:
            windows = self.kept.get(key, {})
            traffic = [0] * 24
            for start, report in windows.items():
                hour = (bucket_start(start, 3600) - since) // _HOUR
                if 0 <= hour < 24:
                    traffic[hour] += report.event_count
            newest = windows[max(windows)] if windows else None
            answer[key] = FleetDrift(traffic, drift_summary(newest) if newest else None)
        return answer
