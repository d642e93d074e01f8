"""What one flush of the join changes in the performance windows: each touched window's
accumulator delta, and its orphaned labels (see ``feedback_joiner.handlers`` on orphans).

A label that comes before its prediction is counted as orphaned in a window of the model the
feedback names (its champion version, else its newest): the newest window of that version the
partition has seen predictions in, kept per partition in the join store as an entry
``\\x00newest/<model>/<version>`` (window start, micros) that goes to the changelog with the
ids, or, before any, the window of the label's timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from feedback_joiner.entries import model_of
from feedback_joiner.groups import column_groups, event_groups, positive_flags
from feedback_joiner.ports import JoinStore
from vigil.adapters.ports import Catalog
from vigil.performance import WindowPerformance, window_of
from vigil.performance.bins import SCORE_BINS
from vigil.wire.base import as_utc
from vigil.wire.columns import Batch
from vigil.wire.joins import JoinEntry, OrphanMark
from vigil.wire.performance import PerformancePartial
from vigil.wire.records import FeedbackEvent, Label, ModelVersion, PredictionEvent
from vigil.wire.segment_reports import SegmentState

__all__ = ["NEWEST", "Delta", "FlushDeltas", "count_outcome", "latency"]

NEWEST = "\x00newest/"  # key prefix of a version's newest window in a partition
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Key = tuple[int, str]  # (partition, store key)
WindowKey = tuple[str, str, datetime]  # (model, version, window start)


@dataclass
class Delta:
    """A window's change in one flush: its accumulator's delta and orphaned labels (+/-)."""

    start: datetime
    end: datetime
    window: WindowPerformance
    orphaned: int = 0
    segments: dict[tuple[str, str], WindowPerformance] = field(default_factory=dict)

    def group(self, segment: str, group: str) -> WindowPerformance:
        """The accumulator of one group of one segment of the window."""
        found = self.segments.get((segment, group))
        if found is None:
            found = WindowPerformance(self.window.task, self.window.positive_label)
            self.segments[(segment, group)] = found
        return found


class FlushDeltas:
    """This flush's window deltas, and each version's newest window per partition."""

    def __init__(self, store: JoinStore, versions: Catalog | None, window_seconds: float) -> None:
        self.store = store
        self.versions = versions
        self.window_seconds = window_seconds
        self.deltas: dict[WindowKey, Delta] = {}
        # Newest window start (micros) per (partition, store key): committed and this flush's;
        # and what this flush changed (to write with the ids).
        self.newest: dict[Key, int | None] = {}
        self.newest_dirty: dict[Key, bytes] = {}

    def version(self, model_id: str, version: str) -> ModelVersion | None:
        """The version as the registry knows it; None if it does not (joined all the same,
        not counted)."""
        return None if self.versions is None else self.versions.get(model_id, version)

    def seconds(self, version: ModelVersion) -> float:
        """The width of the version's windows: its own, or the joiner's default."""
        return version.performance.window_seconds or self.window_seconds

    def at(self, version: ModelVersion, event_time: datetime) -> Delta:
        """This flush's delta of the version's window holding ``event_time``."""
        start, end = window_of(event_time, self.seconds(version))
        return self._delta(version.model_id, version.version, start, end, version)

    def _delta(
        self,
        model_id: str,
        version_id: str,
        start: datetime,
        end: datetime,
        version: ModelVersion | None = None,
    ) -> Delta:
        key = (model_id, version_id, start)
        found = self.deltas.get(key)
        if found is None:
            version = version or self.version(model_id, version_id)
            task = version.task if version is not None else "binary"
            positive = version.positive_label if version is not None else None
            found = self.deltas[key] = Delta(start, end, WindowPerformance(task, positive))
        return found

    # -- counting ----------------------------------------------------------------------------

    def prediction(self, partition: int, prediction: PredictionEvent) -> None:
        """Count a prediction in its window (and note the window as the partition's newest)."""
        version = self.version(prediction.model_id, prediction.model_version)
        if version is None:
            return
        delta = self.at(version, as_utc(prediction.timestamp))
        delta.window.add_prediction(prediction.prediction, prediction.score)
        for segment, group in event_groups(version, prediction):
            delta.group(segment, group).add_prediction(prediction.prediction, prediction.score)
        key, newest = self._newest(partition, version)
        start = (delta.start - _EPOCH) // _MICROSECOND
        if newest is None or start > newest:
            self.newest[key] = start
            self.newest_dirty[key] = str(start).encode()

    def predictions(self, partition: int, version: ModelVersion, batch: Batch) -> None:
        """Count a batch of one version's predictions at once (as ``prediction`` one by one)."""
        width = round(self.seconds(version) * 1_000_000)
        starts = batch.timestamps - batch.timestamps % width
        positive = bins = None
        if version.task == "binary":
            positive = positive_flags(batch.prediction, version.positive_label)
            score = batch.score
            usable = (score >= 0.0) & (score <= 1.0)  # NaN (no score) is neither
            bins = np.where(usable, np.minimum(score * SCORE_BINS, SCORE_BINS - 1), -1)
            bins = bins.astype(np.int64)
        groups = column_groups(version, batch)
        for start in np.unique(starts).tolist():
            at = starts == start
            begin = _EPOCH + start * _MICROSECOND
            delta = self._delta(
                version.model_id, version.version, begin, begin + width * _MICROSECOND, version
            )
            delta.window.add_predictions(
                int(np.count_nonzero(at)),
                None if positive is None else positive[at],
                None if bins is None else bins[at],
            )
            for segment, (names, codes) in groups.items():
                for code in np.unique(codes[at]).tolist():
                    rows = at & (codes == code)
                    delta.group(segment, names[code]).add_predictions(
                        int(np.count_nonzero(rows)),
                        None if positive is None else positive[rows],
                        None if bins is None else bins[rows],
                    )
        key, newest = self._newest(partition, version)
        latest = int(starts.max())
        if newest is None or latest > newest:
            self.newest[key] = latest
            self.newest_dirty[key] = str(latest).encode()

    def outcome(
        self,
        prediction: PredictionEvent,
        label: FeedbackEvent,
        actual: bool | int | float | str,
        replaces: FeedbackEvent | None,
    ) -> str | None:
        """Count a label into its window, a correction taking the old label out first; why the
        label cannot be counted (the old one is taken out all the same), or None."""
        version = self.version(prediction.model_id, prediction.model_version)
        if version is None:
            return None
        delta = self.at(version, as_utc(prediction.timestamp))
        windows = [delta.window]
        windows += [delta.group(s, g) for s, g in event_groups(version, prediction)]
        old = None
        if replaces is not None and replaces.actual is not None:
            old = (replaces.actual, latency(prediction, replaces))
        seconds = latency(prediction, label)
        return count_outcome(windows, prediction.prediction, prediction.score, actual, seconds, old)

    def window(self, version: ModelVersion, micros: int) -> Delta:
        """This flush's delta of the version's window holding the event time ``micros``
        (microseconds since the epoch): ``at`` without the ``datetime``."""
        width = round(self.seconds(version) * 1_000_000)
        if width <= 0:  # no window: ``at`` says why
            return self.at(version, _EPOCH + micros * _MICROSECOND)
        begin = _EPOCH + (micros - micros % width) * _MICROSECOND
        return self._delta(
            version.model_id, version.version, begin, begin + width * _MICROSECOND, version
        )

    def horizon(self, entry: JoinEntry, default: timedelta) -> timedelta:
        """The label horizon of an entry: its version's, or (no prediction yet) the longest of
        its feedback's model, or the joiner's default for a model the registry does not know."""
        if entry.has_prediction:
            model_id, version_id = model_of(entry)
            version = self.version(model_id, version_id)
            return timedelta(seconds=version.label_horizon) if version else default
        feedback = [entry.label] if entry.label is not None else []
        named = next((f.model_id for f in [*feedback, *entry.waiting] if f.model_id), None)
        versions = self.versions.versions(named) if self.versions and named else []
        if not versions:
            return default
        return timedelta(seconds=max(v.label_horizon for v in versions))

    # -- orphans -----------------------------------------------------------------------------

    def _newest(self, partition: int, version: ModelVersion) -> tuple[Key, int | None]:
        """The version's newest window start (micros) this partition saw predictions in."""
        key = (partition, f"{NEWEST}{version.model_id}/{version.version}")
        if key not in self.newest:
            raw = self.store.get(*key)
            self.newest[key] = int(raw) if raw is not None and raw.isdigit() else None
        return key, self.newest[key]

    def orphan(self, partition: int, feedback: FeedbackEvent) -> OrphanMark | None:
        """Count a label that came before its prediction as orphaned; where (None: its model
        is not known, and it is not counted)."""
        if self.versions is None or feedback.model_id is None:
            return None
        live = [v for v in self.versions.versions(feedback.model_id) if v.status != "retired"]
        if not live:
            return None
        champions = [v for v in live if v.status == "champion"]
        version = (champions or live)[-1]
        _, newest = self._newest(partition, version)
        if newest is not None:
            start = _EPOCH + newest * _MICROSECOND
            end = start + timedelta(seconds=self.seconds(version))
        else:
            start, end = window_of(as_utc(feedback.timestamp), self.seconds(version))
        mark = OrphanMark(
            model_id=version.model_id,
            model_version=version.version,
            window_start=start,
            window_end=end,
        )
        self.orphans(mark, +1)
        return mark

    def orphans(self, mark: OrphanMark, sign: int) -> None:
        """Count (+1) or take back (-1) an orphaned label where ``mark`` says."""
        start, end = as_utc(mark.window_start), as_utc(mark.window_end)
        self._delta(mark.model_id, mark.model_version, start, end).orphaned += sign

    # -- flushing ----------------------------------------------------------------------------

    def take(self) -> tuple[list[PerformancePartial], Mapping[Key, bytes]]:
        """This flush's partials and newest windows, to send; the next flush starts afresh."""
        partials = [
            PerformancePartial(
                model_id=model_id,
                model_version=version,
                window_start=start,
                window_end=delta.end,
                state=delta.window.to_bytes(),
                orphaned=delta.orphaned,
                segments=[
                    SegmentState(segment=segment, group=group, state=window.to_bytes())
                    for (segment, group), window in sorted(delta.segments.items())
                ],
            )
            for (model_id, version, start), delta in self.deltas.items()
        ]
        newest = self.newest_dirty
        self.deltas, self.newest_dirty = {}, {}
        return partials, newest

    def reset(self) -> None:
        """Forget everything not committed (a rewind, a revocation, an assignment)."""
        self.deltas, self.newest, self.newest_dirty = {}, {}, {}


def count_outcome(
    windows: Sequence[WindowPerformance],
    prediction: Label,
    score: float | None,
    actual: Label,
    seconds: float,
    old: tuple[Label, float] | None = None,
) -> str | None:
    """Count an outcome (label latency ``seconds``) into each window, the ``old`` label
    (actual, latency) taken out first; why the label cannot be counted (the old one is taken
    out all the same), or None."""
    unreadable: str | None = None
    for window in windows:
        if old is not None:
            with suppress(ValueError):  # not counted either: nothing to take out
                window.add_outcome(prediction, score, old[0], old[1], sign=-1)
        try:
            window.add_outcome(prediction, score, actual, seconds)
        except ValueError as exc:  # e.g. a string label for a regression model
            unreadable = str(exc)
    return unreadable


def latency(prediction: PredictionEvent, label: FeedbackEvent) -> float:
    """Seconds from the prediction to its label (0 for a label stamped before it)."""
    return max((as_utc(label.timestamp) - as_utc(prediction.timestamp)).total_seconds(), 0.0)
