"""Windows of one model version: partial profiles in, one report per window out. No Kafka here.

Workers profile the events of the prediction partitions they own into *partials* (one per model
version and flush: a window profile per window touched, plus each partition's event-time mark).
The worker that owns the model version merges the partials here, closes windows when the slowest
partition's event time has passed their end plus the allowed lateness (or they went idle), and
judges them. Counts only ever add up, so two workers produce the same reports as one.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.drift.profiles import WindowProfile, build_reference_from_batch
from vigil.drift.verdicts import SequentialDetectors, judge
from vigil.wire.columns import Batch, concat_batches
from vigil.wire.records import ModelVersion, ReferenceChange, ReferenceProfile, WindowReport

__all__ = [
    "ModelWindows",
    "OpenWindow",
    "Partial",
    "PartialBuilder",
    "PartialWindow",
    "WindowPolicy",
    "split_by_window",
]

MICROS = 1_000_000


@dataclass(frozen=True)
class WindowPolicy:
    """Detector-wide defaults; a model's DriftConfig overrides window size and lateness."""

    size_seconds: float = 60.0
    lateness_seconds: float = 10.0
    idle_close_seconds: float = 15.0
    reference_size: int = 5000

    def size(self, version: ModelVersion) -> int:
        """Time window size of ``version`` in microseconds."""
        return int((version.drift.window_seconds or self.size_seconds) * MICROS)

    def lateness(self, version: ModelVersion) -> int:
        lateness = version.drift.lateness_seconds
        return int((self.lateness_seconds if lateness is None else lateness) * MICROS)


def split_by_window(
    timestamps: npt.NDArray[np.int64], size: int | None
) -> dict[int, npt.NDArray[np.intp]]:
    """Positions of the events in each time window, by start (micros); one group if no size."""
    if size is None:
        return {0: np.arange(timestamps.size, dtype=np.intp)}
    starts = timestamps - timestamps % size
    unique, inverse = np.unique(starts, return_inverse=True)
    if unique.size == 1:
        return {int(unique[0]): np.arange(timestamps.size, dtype=np.intp)}
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(unique.size + 1))
    return {int(s): order[bounds[i] : bounds[i + 1]] for i, s in enumerate(unique)}


@dataclass
class PartialWindow:
    """What one worker counted of one window since its last flush."""

    start: int  # window start (micros); 0 for event-count windows
    events: int
    first: int  # earliest and latest event time counted
    last: int
    profile: bytes  # WindowProfile.to_bytes()


@dataclass
class Partial:
    """One worker's flush for one model version: its windows' profiles and partition marks.

    Without a reference yet, the worker sends the events themselves (``baseline``) so that the
    version's owner can build the reference from the first events, wherever they were read.
    """

    model_id: str
    model_version: str
    reference_version: int
    marks: dict[int, int]  # source partition -> latest event time read there (micros)
    windows: list[PartialWindow] = field(default_factory=list)
    baseline: Batch | None = None
    partitions: int = 0  # of the predictions topic: how many marks make a watermark

    @property
    def events(self) -> int:
        return sum(w.events for w in self.windows) + (len(self.baseline) if self.baseline else 0)

    def to_bytes(self) -> bytes:
        return zlib.compress(pickle.dumps(self, protocol=5), 1)

    @staticmethod
    def from_bytes(data: bytes) -> Partial:
        partial = pickle.loads(zlib.decompress(data))
        if not isinstance(partial, Partial):
            raise ValueError(f"not a partial profile: {type(partial).__name__}")
        return partial


@dataclass
class PartialBuilder:
    """What one worker counted of one model version since its last flush."""

    version: ModelVersion
    windows: dict[int, tuple[WindowProfile, list[int]]] = field(default_factory=dict)
    marks: dict[int, int] = field(default_factory=dict)
    baseline: list[Batch] = field(default_factory=list)
    events: int = 0

    def add(self, batch: Batch, partitions: npt.NDArray[np.int32], size: int | None) -> None:
        self.events += len(batch)
        for partition in np.unique(partitions):
            mark = int(batch.timestamps[partitions == partition].max())
            self.marks[int(partition)] = max(self.marks.get(int(partition), mark), mark)
        reference = self.version.reference
        if reference is None:
            self.baseline.append(batch)
            return
        for start, index in split_by_window(batch.timestamps, size).items():
            entry = self.windows.get(start)
            if entry is None:
                entry = self.windows[start] = (
                    WindowProfile(reference, self.version.features),
                    [0, 2**63 - 1, -(2**63)],
                )
            part = batch.take(index)
            entry[0].add(part)
            counts = entry[1]
            counts[0] += len(part)
            counts[1] = min(counts[1], int(part.timestamps.min()))
            counts[2] = max(counts[2], int(part.timestamps.max()))

    def partial(self, partitions: int = 0) -> Partial:
        reference = self.version.reference
        return Partial(
            self.version.model_id,
            self.version.version,
            reference.version if reference else 0,
            self.marks,
            [
                PartialWindow(start, counts[0], counts[1], counts[2], profile.to_bytes())
                for start, (profile, counts) in self.windows.items()
            ],
            concat_batches(self.baseline) if self.baseline else None,
            partitions,
        )


@dataclass
class OpenWindow:
    key: int  # start (micros) for time windows, sequence number for event-count windows
    profile: WindowProfile
    last_update: float
    first: int = 2**63 - 1
    last: int = -(2**63)
    events: int = 0
    late: int = 0
    stale: int = 0  # events profiled against a replaced reference: counted, not compared

    def count(self, events: int, first: int, last: int) -> None:
        self.events += events
        self.first = min(self.first, first)
        self.last = max(self.last, last)


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / MICROS, UTC)


class ModelWindows:
    """The open windows of one model version, merged from every worker's partials."""

    def __init__(self, version: ModelVersion, policy: WindowPolicy) -> None:
        self.version = version
        self.policy = policy
        self.windows: dict[int, OpenWindow] = {}
        self.marks: dict[int, int] = {}
        self.closed_until = 0
        self.partitions = 0
        self.sequence = 0
        self.baseline: list[Batch] = []
        self.sequential = SequentialDetectors()
        # A reference built here from the first events, to be published to the registry.
        self.built_reference: ReferenceProfile | None = None

    @property
    def reference(self) -> ReferenceProfile | None:
        return self.version.reference

    @property
    def count_windows(self) -> int | None:
        return self.version.drift.window_events

    @property
    def watermark(self) -> int:
        """Event time every prediction partition has reached with this version's events.

        The slowest partition's, and none (0) until every partition has carried an event of
        the version: a partition read ahead of the others, or alone, closes nothing early.
        Until then windows close when idle.
        """
        if not self.marks or len(self.marks) < self.partitions:
            return 0
        return min(self.marks.values())

    def update_version(self, version: ModelVersion) -> None:
        """The registry changed the version (e.g. a new reference): later partials use it.

        Windows already open keep the reference they were counted with; partials counted
        against the new one still count in their event totals (``stale``), not in statistics.
        """
        old, new = self.reference, version.reference
        if new is not None and (
            old is None or (old.version, old.created_at) != (new.version, new.created_at)
        ):
            self.sequential = SequentialDetectors()  # PSI against new bins: a new baseline
        self.version = version

    # -- merging ----------------------------------------------------------------------------

    def add(self, partial: Partial, now: float) -> None:
        """Merge one partial."""
        self.partitions = max(self.partitions, partial.partitions)
        for partition, mark in partial.marks.items():
            self.marks[partition] = max(self.marks.get(partition, mark), mark)
        if partial.baseline is not None and len(partial.baseline):
            self._add_events(partial.baseline, now)
        reference = self.reference
        for pw in partial.windows:
            window = self._window_for(pw.start, now)
            if window is None:
                continue
            if not (
                reference is not None
                and partial.reference_version == reference.version
                and self._merge(window, pw.profile, reference)
            ):
                window.stale += pw.events
            self._counted(window, pw.start, pw.events, pw.first, pw.last)

    def _merge(self, window: OpenWindow, data: bytes, reference: ReferenceProfile) -> bool:
        """Merge a partial's window profile; False if it was counted against other bins (e.g.
        another detector published a different production reference meanwhile)."""
        try:
            window.profile.merge(WindowProfile.from_bytes(data, reference, self.version.features))
        except ValueError:
            return False
        return True

    def _counted(self, window: OpenWindow, start: int, events: int, first: int, last: int) -> None:
        window.count(events, first, last)
        if self.count_windows is None and start != window.key:
            window.late += events

    def _window_for(self, start: int, now: float) -> OpenWindow | None:
        """The open window that takes events of window ``start`` (a later one if it closed)."""
        reference = self.reference
        if reference is None:
            return None
        if self.count_windows is not None:
            key = self.sequence
        else:
            key = start
            if start < self.closed_until:  # its own window was published: the next report
                size = self.policy.size(self.version)
                mark = self.watermark
                key = max(self.closed_until, mark - mark % size)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = OpenWindow(
                key, WindowProfile(reference, self.version.features), now
            )
        window.last_update = now
        return window

    def _add_events(self, batch: Batch, now: float) -> None:
        """Raw events (sent while no reference existed): build the reference, then profile them."""
        if self.reference is None:
            self.baseline.append(batch)
            if sum(len(b) for b in self.baseline) < self.policy.reference_size:
                return
            self._build_reference(now)
            return
        self.profile_events(batch, now)

    def _build_reference(self, now: float) -> None:
        events = concat_batches(self.baseline)
        self.baseline = []
        first = events.take(np.arange(self.policy.reference_size, dtype=np.intp))
        created = datetime.now(UTC)
        reference = build_reference_from_batch(
            self.version.features, first, "production", created, task=self.version.task
        )
        history = [
            *self.version.reference_history,
            ReferenceChange(
                version=reference.version,
                source="production",
                row_count=reference.row_count,
                created_at=created,
            ),
        ]
        self.version = self.version.model_copy(
            update={"reference": reference, "reference_history": history, "updated_at": created}
        )
        self.built_reference = reference
        self.profile_events(events, now)

    def profile_events(self, batch: Batch, now: float) -> None:
        """Count raw events into their windows."""
        reference = self.reference
        assert reference is not None
        size = None if self.count_windows is not None else self.policy.size(self.version)
        for start, index in split_by_window(batch.timestamps, size).items():
            window = self._window_for(start, now)
            assert window is not None
            part = batch.take(index)
            window.profile.add(part)
            stamps = part.timestamps
            self._counted(window, start, len(part), int(stamps.min()), int(stamps.max()))

    # -- closing ----------------------------------------------------------------------------

    def close_due(self, now: float) -> list[OpenWindow]:
        """Windows to publish now, oldest first; they are removed from the open ones."""
        if self.count_windows is not None:
            due = [w for w in self.windows.values() if w.events >= self.count_windows]
            if due:
                self.sequence = max(w.key for w in due) + 1
        else:
            size = self.policy.size(self.version)
            lateness = self.policy.lateness(self.version)
            mark = self.watermark
            due = [
                w
                for w in self.windows.values()
                if mark >= w.key + size + lateness
                or now - w.last_update >= self.policy.idle_close_seconds
            ]
            for w in due:
                self.closed_until = max(self.closed_until, w.key + size)
        due.sort(key=lambda w: w.key)
        for w in due:
            del self.windows[w.key]
        return due

    def report(self, window: OpenWindow, created_at: datetime) -> WindowReport:
        """Judge a closed window against the reference it was counted with."""
        reference = window.profile.reference
        verdict = judge(self.version, reference, window.profile, self.sequential)
        if self.count_windows is not None:
            start, end = window.first, window.last
            report_id = f"{self.version.model_id}/{self.version.version}/n{window.key}"
        else:
            start, end = window.key, window.key + self.policy.size(self.version)
            report_id = f"{self.version.model_id}/{self.version.version}/{window.key}"
        return WindowReport(
            report_id=report_id,
            model_id=self.version.model_id,
            model_version=self.version.version,
            window_start=_datetime(start),
            window_end=_datetime(end),
            event_count=window.events,
            reference_source=reference.source,
            reference_version=reference.version,
            features=verdict.features,
            drifted_features=[f.feature for f in verdict.features if f.drifted],
            dataset_drift=verdict.dataset_drift,
            drift_share=verdict.drift_share,
            outputs=verdict.outputs,
            multivariate=verdict.multivariate,
            late_events=window.late,
            created_at=created_at,
        )

    # -- state --------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Everything needed to resume, for the changelog (the version comes from the registry)."""
        state: dict[str, Any] = {
            "reference_version": self.reference.version if self.reference else 0,
            "windows": [
                (w.key, w.first, w.last, w.events, w.late, w.stale, w.profile.to_bytes())
                for w in self.windows.values()
            ],
            "marks": self.marks,
            "closed_until": self.closed_until,
            "partitions": self.partitions,
            "sequence": self.sequence,
            "baseline": self.baseline,
            "sequential": self.sequential,
            "built_reference": self.built_reference,
        }
        return zlib.compress(pickle.dumps(state, protocol=5), 1)

    @classmethod
    def restore(
        cls, data: bytes, version: ModelVersion, policy: WindowPolicy, now: float
    ) -> ModelWindows:
        """The state ``snapshot`` saved, under the registry's current ``version``."""
        state = pickle.loads(zlib.decompress(data))
        self = cls(version, policy)
        self.marks = state["marks"]
        self.closed_until = state["closed_until"]
        self.partitions = state.get("partitions", 0)
        self.sequence = state["sequence"]
        self.baseline = state["baseline"]
        self.sequential = state["sequential"]
        built: ReferenceProfile | None = state["built_reference"]
        if built is not None and (self.reference is None or self.reference.version < built.version):
            # Built and about to be published when the worker stopped: use it.
            self.version = version.model_copy(update={"reference": built})
            self.built_reference = built
        reference = self.reference
        for key, first, last, events, late, stale, profile in state["windows"]:
            if reference is None:
                continue
            if reference.version == state["reference_version"]:
                window_profile = WindowProfile.from_bytes(profile, reference, version.features)
            else:
                window_profile, stale = WindowProfile(reference, version.features), events
            window = OpenWindow(key, window_profile, now, first, last, events, late, stale)
            self.windows[key] = window
        return self
