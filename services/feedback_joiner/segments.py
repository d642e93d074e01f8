"""The reporter's side of segments: a window's group accumulators merged from the joiners'
partials, kept in its changelog state, and put in its report (``vigil.performance.segments``
computes the figures)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from vigil.performance import WindowPerformance
from vigil.performance.segments import crossed, fairness_reports, segment_performance
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import ModelVersion
from vigil.wire.segment_reports import SegmentState
from vigil.wire.segments import effective_segments

__all__ = ["groups_of", "merge_segments", "segment_states", "with_segments"]

Groups = MutableMapping[tuple[str, str], WindowPerformance]


def merge_segments(into: Groups, states: Iterable[SegmentState]) -> None:
    """Add a partial's group accumulators to a window's (CorruptState or ValueError if one is
    unreadable or of another task; the ones before it are merged)."""
    for s in states:
        window = WindowPerformance.from_bytes(s.state)
        found = into.get((s.segment, s.group))
        if found is None:
            into[(s.segment, s.group)] = window
        else:
            found.merge(window)


def segment_states(groups: Groups) -> list[SegmentState]:
    """A window's group accumulators, for its changelog state."""
    return [
        SegmentState(segment=segment, group=group, state=window.to_bytes())
        for (segment, group), window in sorted(groups.items())
    ]


def with_segments(
    report: PerformanceReport,
    groups: Groups,
    version: ModelVersion | None,
    reference: Groups | None = None,
) -> PerformanceReport:
    """The report with its segments' performance and, for a binary model, its fairness over
    each sensitive segment, and the same fairness on the ``reference`` window's groups; as it
    was for a version the registry does not know."""
    if version is None or not groups:
        return report
    config = version.fairness
    update: dict[str, object] = {"segments": segment_performance(groups, config.min_group_size)}
    if report.task == "binary":
        segments = effective_segments(version.segments, version.sensitive_attributes)
        sensitive = [s.name for s in segments if s.sensitive]
        if version.segment_cross and all(c in sensitive for c in version.segment_cross):
            sensitive.append(crossed(version.segment_cross))  # intersectional groups
        update["fairness"] = fairness_reports(groups, sensitive, config)
        if reference:
            update["reference_fairness"] = fairness_reports(reference, sensitive, config)
    return report.model_copy(update=update)


def groups_of(states: Iterable[SegmentState]) -> Groups | None:
    """A window's group accumulators from its state (None if one is unreadable)."""
    found: Groups = {}
    try:
        merge_segments(found, states)
    except ValueError:  # CorruptState is one
        return None
    return found
