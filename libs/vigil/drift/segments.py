"""Drift per segment: a version's events put in the groups of one of its segments (a category,
a binned number, a tag, or the crossed pair; ``vigil.wire.segments``), each group judged against
the version's reference exactly as the detector judges a window (the same bins, statistics,
thresholds and minimum events). The segment's own features, one value within a group, are left
out of the reference, and so is a PCA over any of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from vigil.drift.verdicts import judge, min_events
from vigil.drift.window import WindowProfile
from vigil.wire.records import ModelVersion, ReferenceProfile
from vigil.wire.segments import CROSS, effective_segments, value_groups

__all__ = ["SegmentRows", "drifted", "segment_drift", "segment_names"]


@dataclass
class SegmentRows:
    """A version's events, column by column, as the drift profile reads them."""

    features: list[dict[str, Any]] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    truncated: bool = False


def segment_names(version: ModelVersion) -> list[str]:
    """The segments drift can be asked by: the declared ones and the crossed pair."""
    names = [s.name for s in effective_segments(version.segments, version.sensitive_attributes)]
    return names + ([CROSS.join(version.segment_cross)] if len(version.segment_cross) == 2 else [])


def _groups(version: ModelVersion, segment: str, rows: SegmentRows) -> list[str]:
    cross = version.segment_cross
    needed = set(cross) if segment == CROSS.join(cross) else {segment}
    specs = [
        s
        for s in effective_segments(version.segments, version.sensitive_attributes)
        if s.name in needed
    ]
    return [
        dict(value_groups(specs, cross, features, tags))[segment]
        for features, tags in zip(rows.features, rows.tags, strict=True)
    ]


def _without(version: ModelVersion, segment: str) -> ReferenceProfile:
    """The version's reference without the segment's own features: within a group they are
    one value (or one bin) by construction, not drift (a PCA over any of them is left out)."""
    reference = version.reference
    assert reference is not None
    own = set(version.segment_cross) if segment == CROSS.join(version.segment_cross) else {segment}
    pca = reference.multivariate
    return reference.model_copy(
        update={
            "features": [f for f in reference.features if f.name not in own],
            "multivariate": None if pca is not None and own & set(pca.features) else pca,
        }
    )


def segment_drift(version: ModelVersion, segment: str, rows: SegmentRows) -> list[dict[str, Any]]:
    """Each group's events judged against the version's reference (which it must have),
    largest group first."""
    reference = _without(version, segment)
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(_groups(version, segment, rows)):
        members[group].append(i)
    needed = min_events(version)
    answers = []
    for group, at in sorted(members.items(), key=lambda g: (-len(g[1]), g[0])):
        window = WindowProfile(reference, version.features)
        window.add_rows(
            [rows.features[i] for i in at],
            predictions=[rows.predictions[i] for i in at],
            scores=[rows.scores[i] for i in at],
        )
        verdict = judge(version, reference, window)
        answers.append(
            {
                "group": group,
                "events": len(at),
                "judged": len(at) >= needed,
                "dataset_drift": verdict.dataset_drift,
                "drift_share": verdict.drift_share,
                "drifted_features": verdict.drifted_features,
                "features": [f.model_dump(mode="json") for f in verdict.features],
                "outputs": [f.model_dump(mode="json") for f in verdict.outputs],
            }
        )
    return answers


def drifted(answer: dict[str, Any]) -> list[str]:
    """What drifted in one group's answer of ``segment_drift`` (features, then the outputs
    that drifted), empty when nothing did or the group is too small to be judged."""
    if not answer["judged"]:
        return []
    outputs = [o["feature"] for o in answer["outputs"] if o.get("drifted")]
    named = [*answer["drifted_features"], *outputs]
    return named or (["dataset"] if answer["dataset_drift"] else [])
