"""Windows of one model version: partial profiles in, one report per window out. No Kafka here.

The worker that owns a model version merges every worker's partials here, closes windows when
the slowest partition's event time has passed their end plus the allowed lateness (or they went
idle), and judges them. Counts only ever add up, so two workers produce the same reports as one.
Its state goes to the changelog as a ``vigil.DriftState`` Avro record (``snapshot``/``restore``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from drift_detector.partials import (
    MICROS,
    Partial,
    WindowPolicy,
    batch_from_wire,
    batch_to_wire,
    split_by_window,
)
from vigil.drift.reference import build_reference_from_batch
from vigil.drift.sequential import SequentialDetectors
from vigil.drift.verdicts import judge
from vigil.drift.window import CorruptProfile, WindowProfile
from vigil.wire.codec import Codec
from vigil.wire.columns import Batch, concat_batches
from vigil.wire.drift_state import DriftOpenWindow, DriftState
from vigil.wire.records import ModelVersion, ReferenceProfile, WindowReport

__all__ = ["ModelWindows", "OpenWindow"]

STATE_CODEC = Codec(DriftState)


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
        # A reference built here from the first events, used at once and published to the
        # models topic under the registry's revision rule (``drift_detector.references``).
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

    @property
    def baseline_events(self) -> int:
        """Events held to build the reference from, not yet in any window."""
        return sum(len(b) for b in self.baseline)

    def update_version(self, version: ModelVersion) -> None:
        """The registry changed the version (e.g. a new reference): later partials use it.

        Windows already open keep the reference they were counted with; partials counted
        against the new one still count in their event totals (``stale``), not in statistics.
        A reference built here and not published yet stays in use over a version without one.
        """
        if version.reference is None and self.built_reference is not None:
            version = version.model_copy(update={"reference": self.built_reference})
        old, new = self.reference, version.reference
        if new is not None and (
            old is None or (old.version, old.created_at) != (new.version, new.created_at)
        ):
            self.sequential = SequentialDetectors()  # PSI against new bins: a new baseline
        self.version = version

    def settle_reference(self, version: ModelVersion) -> None:
        """The built reference's fate is decided: ``version`` is the record that won, with the
        built reference as published or with the reference the registry had meanwhile."""
        self.built_reference = None
        self.update_version(version)

    # -- merging ----------------------------------------------------------------------------

    def add(self, partial: Partial, now: float) -> None:
        """Merge one partial; CorruptProfile, with nothing of it merged, if a window profile in
        it is not one at all."""
        profiles = self._profiles(partial)
        self.partitions = max(self.partitions, partial.partitions)
        for partition, mark in partial.marks.items():
            self.marks[partition] = max(self.marks.get(partition, mark), mark)
        if partial.baseline is not None and len(partial.baseline):
            self._add_events(partial.baseline, now)
        for pw, profile in zip(partial.windows, profiles, strict=True):
            window = self._window_for(pw.start, now)
            if window is None:
                continue
            if not (profile is not None and self._merge(window, profile)):
                window.stale += pw.events
            self._counted(window, pw.start, pw.events, pw.first, pw.last)

    def _profiles(self, partial: Partial) -> list[WindowProfile | None]:
        """The partial's window profiles, decoded before anything of it is merged: None for one
        counted against other bins (e.g. another detector published a different production
        reference meanwhile); CorruptProfile if one is undecodable."""
        reference = self.reference
        if reference is None or partial.reference_version != reference.version:
            return [None] * len(partial.windows)
        profiles: list[WindowProfile | None] = []
        for pw in partial.windows:
            try:
                profiles.append(
                    WindowProfile.from_bytes(pw.profile, reference, self.version.features)
                )
            except CorruptProfile:
                raise
            except ValueError:
                profiles.append(None)
        return profiles

    @staticmethod
    def _merge(window: OpenWindow, profile: WindowProfile) -> bool:
        """Merge a partial's window profile; False if the window was opened with other bins
        (its reference was replaced since)."""
        try:
            window.profile.merge(profile)
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
        """Build the reference from the first events and use it here; the record to publish is
        made later, from the registry's latest one (``drift_detector.references``)."""
        events = concat_batches(self.baseline)
        self.baseline = []
        first = events.take(np.arange(self.policy.reference_size, dtype=np.intp))
        reference = build_reference_from_batch(
            self.version.features,
            first,
            "production",
            datetime.now(UTC),
            task=self.version.task,
            # One past any the version had (it has none now, as the registry numbers them).
            version=max((h.version for h in self.version.reference_history), default=0) + 1,
        )
        self.version = self.version.model_copy(update={"reference": reference})
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

    def close_all(self) -> list[OpenWindow]:
        """Every open window, oldest first, for their last reports (the version is retired)."""
        due = sorted(self.windows.values(), key=lambda w: w.key)
        self.windows = {}
        return due

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
        v = self.version
        record = DriftState(
            model_id=v.model_id,
            model_version=v.version,
            reference_version=self.reference.version if self.reference else 0,
            windows=[
                DriftOpenWindow(
                    key=w.key,
                    first=w.first,
                    last=w.last,
                    events=w.events,
                    late=w.late,
                    stale=w.stale,
                    profile=w.profile.to_bytes(),
                )
                for w in self.windows.values()
            ],
            marks={str(p): m for p, m in self.marks.items()},
            closed_until=self.closed_until,
            partitions=self.partitions,
            sequence=self.sequence,
            baseline=[batch_to_wire(b) for b in self.baseline],
            sequential=self.sequential.state(),
            built_reference=self.built_reference,
        )
        return STATE_CODEC.encode(record)

    @staticmethod
    def held_events(data: bytes) -> int:
        """Events a saved state holds in open windows and baseline (0 if it is not a state)."""
        try:
            state = STATE_CODEC.decode(data)
        except ValueError:
            return 0
        baseline = sum(len(b.timestamps) // 8 for b in state.baseline)
        return sum(w.events for w in state.windows) + baseline

    @classmethod
    def restore(
        cls, data: bytes, version: ModelVersion, policy: WindowPolicy, now: float
    ) -> ModelWindows:
        """The state ``snapshot`` saved, under the registry's current ``version``; DecodeError
        or ValueError if ``data`` is not such a state."""
        state = STATE_CODEC.decode(data)
        self = cls(version, policy)
        self.marks = {int(p): m for p, m in state.marks.items()}
        self.closed_until = state.closed_until
        self.partitions = state.partitions
        self.sequence = state.sequence
        self.baseline = [
            batch_from_wire(b, version.model_id, version.version) for b in state.baseline
        ]
        self.sequential = SequentialDetectors.restore(state.sequential)
        built = state.built_reference
        if built is not None and self.reference is None:
            # Built and not published yet when the worker stopped: use it, publish it later.
            # Had the registry a reference meanwhile (its upload, or this one published), that
            # one wins.
            self.version = version.model_copy(update={"reference": built})
            self.built_reference = built
        reference = self.reference
        for w in state.windows:
            if reference is None:
                continue
            profile, stale = WindowProfile(reference, self.version.features), w.events
            if reference.version == state.reference_version:
                # Counted against another reference of the same number (one built here and the
                # registry's that won): counted, not compared, as any replaced reference.
                with contextlib.suppress(ValueError):
                    profile = WindowProfile.from_bytes(w.profile, reference, self.version.features)
                    stale = w.stale
            self.windows[w.key] = OpenWindow(
                w.key, profile, now, w.first, w.last, w.events, w.late, stale
            )
        return self
