"""Performance per window: the joiners' deltas merged into each model version's windows, and
a ``PerformanceReport`` published as labels land.

The partials topic is keyed by model version, so one reporter owns a version's windows. Each
flush merges the deltas it read into the windows they touch (outcomes, and the labels that
never found their prediction: ``orphaned``) and publishes, for each window that changed, its
report with the next ``revision`` (at most one per window per flush, a flush every few
seconds), in one transaction with the window's new state on the compacted changelog and the
consumed offsets: a report is revised exactly once per delta, whatever restarts.

Each report is set beside the version's reference: the outcomes of its uploaded reference's
labelled rows (``ReferenceProfile.performance``) or, without them, its first full window
(``vigil.performance.reference``: the earliest ended window with 100 labels covering half its
predictions). That window is chosen once, by the first flush that finds one, and a snapshot of
it goes to the changelog under ``model/version/reference`` in that flush's transaction, so a
restart, a rebalance or another reporter keeps the same reference. The reference gives the
reference metrics and value, the degraded metrics (at the version's risk tier) and, for binary
models, the calibration of the CBPE estimates; without a reference with scored outcomes, the
scores are read as calibrated probabilities.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from feedback_joiner.segments import groups_of, merge_segments, segment_states, with_segments
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
from vigil.performance import (
    TOLERANCES,
    Calibration,
    CorruptState,
    WindowPerformance,
    calibration_of,
    is_full_window,
    performance_report,
)
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.performance import PerformancePartial, PerformanceReport
from vigil.wire.records import ModelVersion, utcnow
from vigil.wire.segment_reports import SegmentState

__all__ = ["Reporting", "reference_key", "window_key"]

log = logging.getLogger(__name__)

PARTIALS = Codec(PerformancePartial)
REPORTS = Codec(PerformanceReport)
REFERENCE_SUFFIX = b"/reference"

VersionKey = tuple[str, str]
WindowKey = tuple[str, str, datetime]
Kept = tuple[int, PerformancePartial]  # a changelog record's partition and value


def window_key(partial: PerformancePartial) -> str:
    """Key of a window in the changelog: ``model/version/<window start, micros>``."""
    micros = int(partial.window_start.timestamp() * 1_000_000)
    return f"{partial.model_id}/{partial.model_version}/{micros}"


def reference_key(model_id: str, model_version: str) -> str:
    """Key of a version's chosen reference window in the changelog: ``model/version/reference``
    (identifiers have no ``/``, so it is no window's key)."""
    return f"{model_id}/{model_version}/reference"


@dataclass
class _Pending:
    """A window changed since the last flush: its committed state and the merged counts."""

    partition: int
    base: PerformancePartial
    merged: WindowPerformance
    orphaned: int
    segments: dict[tuple[str, str], WindowPerformance] = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    """A version's reference outcomes, their calibration, and the window they are (None: the
    uploaded reference's labelled rows)."""

    window: WindowPerformance
    calibration: Calibration
    start: datetime | None = None


@dataclass
class _Flushing:
    windows: dict[WindowKey, Kept]
    references: dict[VersionKey, Kept]


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
        self.versions = versions  # the registry: value, risk tier and reference of each version
        self.metrics_topic = metrics_topic
        self.changelog_topic = changelog_topic
        self.report_seconds = report_seconds
        self.clock = clock
        self.monotonic = monotonic
        # Committed windows and chosen reference windows, with their partition.
        self.windows: dict[WindowKey, Kept] = {}
        self.references: dict[VersionKey, Kept] = {}
        self.changed: dict[WindowKey, _Pending] = {}
        self.rejects: list[DeadLetter] = []
        self.reports = 0
        self.last_flush = monotonic()
        self._flushing: _Flushing | None = None
        # (revision, predictions, labelled) of committed windows, read once from their state.
        self._sizes: dict[WindowKey, tuple[int, int, int]] = {}
        # Decoded references by version and kind ("uploaded", "window"), with their bytes.
        self._decoded: dict[tuple[VersionKey, str], tuple[bytes, Reference | None]] = {}

    async def absorb(self, records: Sequence[Incoming]) -> None:
        for record in records:
            try:
                delta = PARTIALS.decode(record.value)
                window = WindowPerformance.from_bytes(delta.state)
            except (DecodeError, CorruptState) as exc:
                self.rejects.append(DeadLetter(record, f"not a performance partial: {exc}"))
                continue
            key = (delta.model_id, delta.model_version, delta.window_start)
            pending = self.changed.get(key)
            if pending is None:
                pending = self._open(key, record.partition, delta, window)
            try:
                pending.merged.merge(window)
            except ValueError as exc:  # another task than the window's
                self.rejects.append(DeadLetter(record, f"not mergeable: {exc}"))
                continue
            pending.orphaned += delta.orphaned
            try:
                merge_segments(pending.segments, delta.segments)
            except (CorruptState, ValueError) as exc:  # counted above all the same
                log.warning("segments of a partial of %s not merged: %s", key[:2], exc)
            self.changed[key] = pending

    def _open(
        self, key: WindowKey, partition: int, delta: PerformancePartial, like: WindowPerformance
    ) -> _Pending:
        """A window to merge deltas into: the committed one, or a new one like ``like``."""
        committed = self.windows.get(key)
        if committed is None:
            empty = WindowPerformance(like.task, like.positive_label)
            return _Pending(partition, delta, empty, 0)
        base = committed[1]
        pending = _Pending(partition, base, WindowPerformance.from_bytes(base.state), base.orphaned)
        merge_segments(pending.segments, base.segments)
        return pending

    def due(self, now: float) -> bool:
        return bool(self.changed or self.rejects) and now - self.last_flush >= self.report_seconds

    async def flush(self) -> Output:
        now = self.clock()
        states: dict[WindowKey, Kept] = {}
        for key, pending in self.changed.items():
            revision = pending.base.revision + 1 if key in self.windows else 1
            update = {
                "revision": revision,
                "state": pending.merged.to_bytes(),
                "orphaned": pending.orphaned,
                "segments": segment_states(pending.segments),
            }
            states[key] = (pending.partition, pending.base.model_copy(update=update))
        chosen = self._choose_references(now, states)
        records = [
            Outgoing(
                self.changelog_topic,
                PARTIALS.encode(state),
                reference_key(*version_key).encode(),
                partition,
            )
            for version_key, (partition, state) in chosen.items()
        ]
        for key, pending in self.changed.items():
            partition, state = states[key]
            report = self._report(key, pending, state, chosen, now)
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
        output = Output(records, self.rejects)
        self._flushing = _Flushing(states, chosen)
        self.changed, self.rejects = {}, []
        self.last_flush = self.monotonic()
        return output

    def _report(
        self,
        key: WindowKey,
        pending: _Pending,
        state: PerformancePartial,
        chosen: dict[VersionKey, Kept],
        now: datetime,
    ) -> PerformanceReport:
        model_id, version_id, start = key
        version = self.versions.get(model_id, version_id) if self.versions else None
        merged = pending.merged
        reference = self._reference((model_id, version_id), version, merged, chosen)
        calibration = reference.calibration if reference else Calibration.identity()
        report = performance_report(
            merged,
            model_id=model_id,
            model_version=version_id,
            window_start=start,
            window_end=state.window_end,
            revision=state.revision,
            created_at=now,
            orphaned=pending.orphaned,
            reference=reference.window if reference else None,
            calibration=calibration if merged.task == "binary" else None,
            value=version.business_value if version is not None else None,
            tolerance=TOLERANCES[version.risk.severity] if version is not None else None,
            reference_window_start=reference.start if reference else None,
        )
        window_reference = chosen.get(key[:2]) or self.references.get(key[:2])
        uploaded = version.reference if version is not None else None
        reference_groups = None
        if reference is not None and reference.start is not None and window_reference:
            reference_groups = groups_of(window_reference[1].segments)
        elif reference is not None and uploaded is not None and uploaded.segments:
            reference_groups = groups_of(  # the uploaded reference's labelled rows, by group
                SegmentState(segment=g.segment, group=g.group, state=g.state)
                for g in uploaded.segments
            )
        return with_segments(report, pending.segments, version, reference_groups)

    # -- references ---------------------------------------------------------------------------

    def _decode(
        self, version_key: VersionKey, kind: str, data: bytes, start: datetime | None
    ) -> Reference | None:
        """A reference from its packed outcomes, decoded once per version and bytes."""
        cached = self._decoded.get((version_key, kind))
        if cached is not None and cached[0] == data:
            return cached[1]
        try:
            window = WindowPerformance.from_bytes(data)
            reference: Reference | None = Reference(window, calibration_of(window), start)
        except CorruptState as exc:
            log.warning("%s/%s: the %s reference is unreadable: %s", *version_key, kind, exc)
            reference = None
        self._decoded[(version_key, kind)] = (data, reference)
        return reference

    def _uploaded(
        self, version_key: VersionKey, version: ModelVersion | None, like: WindowPerformance
    ) -> Reference | None:
        """The outcomes of the version's uploaded reference, if it has some of this task."""
        profile = version.reference if version is not None else None
        if profile is None or profile.performance is None:
            return None
        found = self._decode(version_key, "uploaded", profile.performance, None)
        if found is None or (found.window.task, found.window.positive_label) != (
            like.task,
            like.positive_label,
        ):
            return None
        return found

    def _reference(
        self,
        version_key: VersionKey,
        version: ModelVersion | None,
        like: WindowPerformance,
        chosen: dict[VersionKey, Kept],
    ) -> Reference | None:
        uploaded = self._uploaded(version_key, version, like)
        if uploaded is not None:
            return uploaded
        kept = chosen.get(version_key) or self.references.get(version_key)
        if kept is None:
            return None
        state = kept[1]
        return self._decode(version_key, "window", state.state, state.window_start)

    def _choose_references(
        self, now: datetime, states: dict[WindowKey, Kept]
    ) -> dict[VersionKey, Kept]:
        """The first full window of each changed version that has no reference yet."""
        waiting: dict[VersionKey, WindowPerformance] = {}
        for (model_id, version_id, _), pending in self.changed.items():
            version_key = (model_id, version_id)
            if version_key in self.references or version_key in waiting:
                continue
            version = self.versions.get(model_id, version_id) if self.versions else None
            if self._uploaded(version_key, version, pending.merged) is None:
                waiting[version_key] = pending.merged
        if not waiting:
            return {}
        candidates: dict[VersionKey, list[WindowKey]] = {k: [] for k in waiting}
        for key in {*self.windows, *states}:
            if key[:2] in candidates:
                candidates[key[:2]].append(key)
        chosen: dict[VersionKey, Kept] = {}
        for version_key, keys in candidates.items():
            for key in sorted(keys, key=lambda k: k[2]):
                partition, state = states.get(key) or self.windows[key]
                if key in states:
                    merged = self.changed[key].merged
                    predictions, labelled = merged.predictions, merged.labelled
                else:
                    predictions, labelled = self._size(key, state)
                if is_full_window(predictions, labelled, state.window_end, now):
                    chosen[version_key] = (partition, state)
                    break
        return chosen

    def _size(self, key: WindowKey, state: PerformancePartial) -> tuple[int, int]:
        """Predictions and outcomes of a committed window (its state decoded once)."""
        cached = self._sizes.get(key)
        if cached is None or cached[0] != state.revision:
            try:
                window = WindowPerformance.from_bytes(state.state)
                cached = (state.revision, window.predictions, window.labelled)
            except CorruptState:
                cached = (state.revision, 0, 0)
            self._sizes[key] = cached
        return cached[1], cached[2]

    # -- the stage's life ---------------------------------------------------------------------

    def committed(self, output: Output) -> None:
        if self._flushing is not None:
            self.windows.update(self._flushing.windows)
            self.references.update(self._flushing.references)
            self.reports += len(self._flushing.windows)
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
            if record.key is not None and record.key.endswith(REFERENCE_SUFFIX):
                self.references[(state.model_id, state.model_version)] = (record.partition, state)
            else:
                key = (state.model_id, state.model_version, state.window_start)
                self.windows[key] = (record.partition, state)
        return unreadable

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        numbers = {p for _, p in partitions}
        self.windows = {k: v for k, v in self.windows.items() if v[0] not in numbers}
        self.references = {k: v for k, v in self.references.items() if v[0] not in numbers}
        self._sizes = {k: v for k, v in self._sizes.items() if k in self.windows}
        self.changed, self.rejects, self._flushing = {}, [], None
