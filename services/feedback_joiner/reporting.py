"""Performance per window: the joiners' deltas merged into each model version's windows, and
a ``PerformanceReport`` published as labels land.

The partials topic is keyed by model version, so one reporter owns a version's windows. Each
flush merges the deltas it read into the windows they touch and publishes, for each window
that changed, its report with the next ``revision`` (at most one per window per flush, a flush
every few seconds), in one transaction with the window's new state on the compacted changelog
and the consumed offsets: a report is revised exactly once per delta, whatever restarts.

The estimates (CBPE, binary models) read the scores as calibrated probabilities: a calibration
fitted on the reference's outcomes is not kept yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from vigil.adapters.ports import Catalog
from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    Incoming,
    Outgoing,
    Output,
    StageLogic,
    TopicPartitionKey,
)
from vigil.performance import Calibration, CorruptState, WindowPerformance, performance_report
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.performance import PerformancePartial, PerformanceReport
from vigil.wire.records import utcnow

__all__ = ["Reporting", "window_key"]

log = logging.getLogger(__name__)

PARTIALS = Codec(PerformancePartial)
REPORTS = Codec(PerformanceReport)
IDENTITY = Calibration.identity()

WindowKey = tuple[str, str, datetime]


def window_key(partial: PerformancePartial) -> str:
    """Key of a window in the changelog: ``model/version/<window start, micros>``."""
    micros = int(partial.window_start.timestamp() * 1_000_000)
    return f"{partial.model_id}/{partial.model_version}/{micros}"


class Reporting(StageLogic):
    """Merges performance deltas into windows and reports them (see the module)."""

    def __init__(
        self,
        metrics_topic: str,
        changelog_topic: str,
        report_seconds: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        versions: Catalog | None = None,
    ) -> None:
        self.versions = versions  # the registry: each version's business value
        self.metrics_topic = metrics_topic
        self.changelog_topic = changelog_topic
        self.report_seconds = report_seconds
        self.clock = clock
        self.monotonic = monotonic
        # Committed windows, and the ones this flush changed, with their partition.
        self.windows: dict[WindowKey, tuple[int, PerformancePartial]] = {}
        self.changed: dict[WindowKey, tuple[int, PerformancePartial, WindowPerformance]] = {}
        self.rejects: list[DeadLetter] = []
        self.reports = 0
        self.last_flush = monotonic()
        self._flushing: dict[WindowKey, tuple[int, PerformancePartial]] | None = None

    async def absorb(self, records: Sequence[Incoming]) -> None:
        for record in records:
            try:
                delta = PARTIALS.decode(record.value)
                window = WindowPerformance.from_bytes(delta.state)
            except (DecodeError, CorruptState) as exc:
                self.rejects.append(DeadLetter(record, f"not a performance partial: {exc}"))
                continue
            key = (delta.model_id, delta.model_version, delta.window_start)
            if key in self.changed:
                _, base, merged = self.changed[key]
            else:
                _, base = self.windows.get(key, (record.partition, delta))
                merged = (
                    WindowPerformance.from_bytes(base.state)
                    if key in self.windows
                    else WindowPerformance(window.task, window.positive_label)
                )
            try:
                merged.merge(window)
            except ValueError as exc:  # another task than the window's
                self.rejects.append(DeadLetter(record, f"not mergeable: {exc}"))
                continue
            self.changed[key] = (record.partition, base, merged)

    def due(self, now: float) -> bool:
        return bool(self.changed or self.rejects) and now - self.last_flush >= self.report_seconds

    async def flush(self) -> Output:
        now = self.clock()
        records: list[Outgoing] = []
        flushing: dict[WindowKey, tuple[int, PerformancePartial]] = {}
        for key, (partition, base, merged) in self.changed.items():
            model_id, version_id, start = key
            revision = base.revision + 1 if key in self.windows else 1
            version = self.versions.get(model_id, version_id) if self.versions else None
            report = performance_report(
                merged,
                model_id=model_id,
                model_version=version_id,
                window_start=start,
                window_end=base.window_end,
                revision=revision,
                created_at=now,
                calibration=IDENTITY if merged.task == "binary" else None,
                value=version.business_value if version is not None else None,
            )
            state = base.model_copy(update={"revision": revision, "state": merged.to_bytes()})
            records.append(
                Outgoing(self.metrics_topic, REPORTS.encode(report), report.key.encode())
            )
            records.append(
                Outgoing(
                    self.changelog_topic,
                    PARTIALS.encode(state),
                    window_key(state).encode(),
                    partition,
                )
            )
            flushing[key] = (partition, state)
        output = Output(records, self.rejects)
        self._flushing = flushing
        self.changed, self.rejects = {}, []
        self.last_flush = self.monotonic()
        return output

    def committed(self, output: Output) -> None:
        if self._flushing is not None:
            self.windows.update(self._flushing)
            self.reports += len(self._flushing)
            self._flushing = None

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        numbers = {p for _, p in assigned.partitions}
        unreadable: list[DeadLetter] = []
        for record in assigned.changelog:
            if record.value is None or record.partition not in numbers:
                continue
            try:
                state = PARTIALS.decode(record.value)
            except DecodeError as exc:
                unreadable.append(DeadLetter(record, f"not a performance window: {exc.reason}"))
                continue
            key = (state.model_id, state.model_version, state.window_start)
            self.windows[key] = (record.partition, state)
        return unreadable

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        numbers = {p for _, p in partitions}
        self.windows = {k: v for k, v in self.windows.items() if v[0] not in numbers}
        self.changed, self.rejects, self._flushing = {}, [], None
