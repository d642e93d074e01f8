"""Drifted segments for the review queue: the recent events of the versions that declare
segments, judged group by group when the drift detector reports their window.

The detector judges a window as a whole; a shift confined to one group (one region, one age
band) can stay under its thresholds. For a version that declares segments and has a reference,
the review queue's consumer keeps its newest events (at most
``VIGIL_FEEDBACK_REVIEW_SEGMENT_ROWS`` per version) with the groups each falls in. When a
``WindowReport`` of that version comes, every group of every segment is judged on the window's
events against the reference exactly as ``GET …/drift/segments`` judges it
(``vigil.drift.segments``: the detector's statistics, thresholds and minimum events), once the
consumer has read that version's predictions past the window's end (or after
``VIGIL_FEEDBACK_REVIEW_SEGMENT_SETTLE_SECONDS``). Each group that drifted becomes a drifted
window of that group (``feedback.review.DriftWindow``): its predictions are offered for the
``drifted`` reason.

The events are held in memory only: after a restart or a rebalance, a window open at that
moment is judged on the events read since (a group with too few is not judged).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from feedback.review import DriftWindow, micros
from vigil.drift.segments import SegmentRows, drifted, segment_drift, segment_names
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.segments import effective_segments, value_groups

__all__ = ["Pending", "SegmentWatch", "judge_window", "watched"]

Key = tuple[str, str]  # (model_id, version)


@dataclass(frozen=True)
class _Row:
    timestamp: int  # microseconds
    features: dict[str, Any]
    tags: dict[str, str]
    prediction: Any
    score: float | None


@dataclass(frozen=True)
class Pending:
    """A reported window of a version to judge by segment, and when it was reported
    (monotonic seconds)."""

    key: Key
    start: int
    end: int
    reported: float


def watched(version: ModelVersion | None) -> bool:
    """Whether a version's segments are watched: it declares some and has a reference."""
    return (
        version is not None
        and version.status != "retired"
        and version.reference is not None
        and bool(segment_names(version))
    )


def judge_window(
    version: ModelVersion, rows: SegmentRows, start: int, end: int
) -> list[DriftWindow]:
    """The groups of every segment of ``version`` that drifted on ``rows`` (a window's events)."""
    found = []
    for segment in segment_names(version):
        for answer in segment_drift(version, segment, rows):
            what = drifted(answer)
            if what:
                found.append(
                    DriftWindow(
                        version.model_id,
                        version.version,
                        start,
                        end,
                        segment,
                        answer["group"],
                        tuple(what),
                    )
                )
    return found


@dataclass
class SegmentWatch:
    """The newest events of each watched version, and the windows waiting to be judged."""

    max_rows: int
    settle_seconds: float
    rows: dict[Key, deque[_Row]] = field(default_factory=dict)
    newest: dict[Key, int] = field(default_factory=dict)  # the latest event time read
    pending: list[Pending] = field(default_factory=list)

    def add(self, version: ModelVersion, event: PredictionEvent) -> dict[str, str]:
        """Keep an event of a watched version; the group it falls in, per segment (none for a
        version not watched)."""
        if not watched(version):
            return {}
        segments = effective_segments(version.segments, version.sensitive_attributes)
        groups = dict(value_groups(segments, version.segment_cross, event.features, event.tags))
        key = (event.model_id, event.model_version)
        at = micros(event.timestamp)
        held = self.rows.get(key)
        if held is None:
            held = self.rows[key] = deque(maxlen=self.max_rows)
        held.append(_Row(at, dict(event.features), dict(event.tags), event.prediction, event.score))
        self.newest[key] = max(self.newest.get(key, at), at)
        return groups

    def reported(self, key: Key, start: int, end: int, now: float) -> None:
        """A window of a version was reported: judge it once its events are read."""
        self.pending.append(Pending(key, start, end, now))

    def due(self, now: float) -> list[tuple[Pending, SegmentRows]]:
        """The windows ready to judge (their version read past their end, or settled), each
        with its events; taken off the pending list. Events older than a judged window are
        dropped (the detector closes a version's windows in order)."""
        ready: list[Pending] = []
        waiting: list[Pending] = []
        for p in self.pending:
            settled = now - p.reported >= self.settle_seconds
            (ready if self.newest.get(p.key, 0) >= p.end or settled else waiting).append(p)
        self.pending = waiting
        found = []
        for p in ready:
            held = self.rows.get(p.key, deque())
            rows = SegmentRows()
            for r in held:
                if p.start <= r.timestamp < p.end:
                    rows.features.append(r.features)
                    rows.tags.append(r.tags)
                    rows.predictions.append(r.prediction)
                    rows.scores.append(r.score)
            while held and held[0].timestamp < p.start:
                held.popleft()
            found.append((p, rows))
        return found

    def forget(self) -> None:
        """Drop every event and pending window (read again from the committed offsets)."""
        self.rows.clear()
        self.newest.clear()
        self.pending.clear()
