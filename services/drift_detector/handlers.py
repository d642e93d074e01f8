"""Drift detection logic: event-time windows per model version, compared with the reference.

No Kafka here: the worker feeds decoded events in and sends the reports this returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vigil.profiles import WindowProfile, build_reference
from vigil.schemas import (
    FeatureDrift,
    FeatureValue,
    ModelVersion,
    PredictionEvent,
    ReferenceProfile,
    WindowReport,
)
from vigil.stats import psi

MICROS = 1_000_000


@dataclass(frozen=True)
class WindowPolicy:
    """How windows are cut and judged (defaults: the drift detector's Settings)."""

    size_seconds: float
    lateness_seconds: float
    idle_close_seconds: float
    min_events: int
    psi_threshold: float
    reference_size: int


def _micros(ts: datetime) -> int:
    return int(ts.timestamp() * MICROS)


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / MICROS, UTC)


@dataclass
class _Window:
    start: int
    profile: WindowProfile
    last_update: float


@dataclass
class ModelWindows:
    """Open windows of one model version, plus the events that build its reference if needed."""

    version: ModelVersion
    policy: WindowPolicy
    reference: ReferenceProfile | None = None
    baseline: list[dict[str, FeatureValue]] = field(default_factory=list)
    windows: dict[int, _Window] = field(default_factory=dict)
    marks: dict[int, int] = field(default_factory=dict)
    closed_until: int = 0

    @property
    def watermark(self) -> int:
        """Event time every partition carrying this version has reached.

        The slowest partition's, so a partition read ahead of the others closes no window early.
        """
        return min(self.marks.values()) if self.marks else 0

    @property
    def size(self) -> int:
        return int(self.policy.size_seconds * MICROS)

    def observe(
        self,
        events: Sequence[PredictionEvent],
        now: float,
        partitions: Sequence[int] | None = None,
    ) -> None:
        """Count a micro-batch of this version's events (read from ``partitions``) into windows."""
        parts = list(partitions) if partitions is not None else [0] * len(events)
        if self.reference is None and self.version.reference is None:
            used = self._collect_baseline(events)
            events, parts = events[used:], parts[used:]
        reference = self.version.reference or self.reference
        if reference is None or not events:
            return
        by_window: dict[int, list[dict[str, FeatureValue]]] = {}
        for event, part in zip(events, parts, strict=True):
            ts = _micros(event.timestamp)
            self.marks[part] = max(self.marks.get(part, ts), ts)
            start = ts - ts % self.size
            if start < self.closed_until:  # too late for its window: counts in the next report
                mark = self.watermark
                start = max(self.closed_until, mark - mark % self.size)
            by_window.setdefault(start, []).append(event.features)
        for start, rows in by_window.items():
            window = self.windows.get(start)
            if window is None:
                window = _Window(start, WindowProfile(reference, self.version.features), now)
                self.windows[start] = window
            window.profile.add(rows)
            window.last_update = now

    def _collect_baseline(self, events: Sequence[PredictionEvent]) -> int:
        """Take events for the production reference; returns how many were taken."""
        room = self.policy.reference_size - len(self.baseline)
        self.baseline.extend(e.features for e in events[:room])
        if len(self.baseline) >= self.policy.reference_size:
            self.reference = build_reference(
                self.version.features, self.baseline, "production", datetime.now(UTC)
            )
            self.baseline = []
        return min(room, len(events))

    def close_due(self, now: float) -> list[_Window]:
        """Windows past the watermark plus lateness, or idle for long enough."""
        lateness = int(self.policy.lateness_seconds * MICROS)
        due = [
            w
            for w in self.windows.values()
            if self.watermark >= w.start + self.size + lateness
            or now - w.last_update >= self.policy.idle_close_seconds
        ]
        for window in sorted(due, key=lambda w: w.start):
            del self.windows[window.start]
            self.closed_until = max(self.closed_until, window.start + self.size)
        return due

    def report(self, window: _Window, created_at: datetime) -> WindowReport:
        """The drift and data-quality report of a closed window."""
        reference = window.profile.features
        judged = window.profile.event_count >= self.policy.min_events
        features = []
        for name, counts in reference.items():
            ref_counts = counts.reference.bin_counts or counts.reference.category_counts
            value = psi(ref_counts, counts.bins)
            features.append(
                FeatureDrift(
                    feature=name,
                    type=counts.reference.type,
                    count=counts.count,
                    missing=counts.missing,
                    out_of_range=counts.out_of_range,
                    unseen_categories=counts.unseen,
                    statistics={"psi": value},
                    drift_statistic="psi",
                    threshold=self.policy.psi_threshold,
                    drifted=judged and value > self.policy.psi_threshold,
                )
            )
        drifted = [f.feature for f in features if f.drifted]
        return WindowReport(
            report_id=f"{self.version.model_id}/{self.version.version}/{window.start}",
            model_id=self.version.model_id,
            model_version=self.version.version,
            window_start=_datetime(window.start),
            window_end=_datetime(window.start + self.size),
            event_count=window.profile.event_count,
            reference_source=window.profile.source,
            features=features,
            drifted_features=drifted,
            dataset_drift=bool(features) and len(drifted) * 2 >= len(features) and judged,
            created_at=created_at,
        )


class DriftMonitor:
    """Every model version's windows; feed events in, take reports out."""

    def __init__(self, policy: WindowPolicy) -> None:
        self.policy = policy
        self.models: dict[tuple[str, str], ModelWindows] = {}

    def observe(
        self,
        version: ModelVersion,
        events: Sequence[PredictionEvent],
        now: float,
        partitions: Sequence[int] | None = None,
    ) -> None:
        key = (version.model_id, version.version)
        windows = self.models.get(key)
        if windows is None:
            windows = self.models[key] = ModelWindows(version, self.policy)
        elif windows.version.updated_at != version.updated_at:
            windows.version = version  # e.g. a reference was uploaded: new windows use it
        windows.observe(events, now, partitions)

    def due_reports(self, now: float, created_at: datetime) -> Iterable[WindowReport]:
        for windows in self.models.values():
            for window in windows.close_due(now):
                yield windows.report(window, created_at)
