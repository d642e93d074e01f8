"""Segments of a model version's traffic (pydantic mirrors of the ``SegmentSpec`` and
``FairnessConfig`` records of ``schemas/vigil.ModelVersion.avsc``), and how an event falls in
one: no I/O.

A segment is a feature (or, with ``tag``, a tag of the events): a categorical one as it is, a
numeric one cut by increasing ``bins`` (``[25, 40, 60]``: ``<25``, ``25..40``, ``40..60``,
``>=60``). A ``sensitive`` segment is also judged for fairness. A model's
``sensitive_attributes`` are sensitive segments too, taken as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from pydantic import Field

from vigil.wire.base import Record
from vigil.wire.shapes import Name

__all__ = [
    "CROSS",
    "MISSING_GROUP",
    "FairnessConfig",
    "SegmentSpec",
    "bin_labels",
    "effective_segments",
    "group_of",
    "value_groups",
]

MISSING_GROUP = "_missing"  # the group of an event without the segment's value
CROSS = " x "  # between the names of two crossed segments, and of their groups


class SegmentSpec(Record):
    name: Name
    bins: list[float] | None = None  # numeric cut points, increasing
    tag: bool = False  # a tag of the events rather than a feature
    sensitive: bool = False  # judged for fairness


class FairnessConfig(Record):
    """When a group is judged and what is unfair (defaults: the four-fifths rule, 0.1)."""

    min_group_size: int = Field(default=100, ge=1)  # labelled outcomes of a judged group
    disparate_impact: float = Field(default=0.8, gt=0, le=1, allow_inf_nan=False)
    max_difference: float = Field(default=0.1, gt=0, le=1, allow_inf_nan=False)


def effective_segments(
    segments: Sequence[SegmentSpec], sensitive_attributes: Sequence[str]
) -> list[SegmentSpec]:
    """The declared segments and, as sensitive segments, the sensitive attributes not among
    them."""
    named = {s.name for s in segments}
    extra = [SegmentSpec(name=a, sensitive=True) for a in sensitive_attributes if a not in named]
    return [*segments, *extra]


def bin_labels(bins: Sequence[float]) -> list[str]:
    """The group names of a numeric segment's bins, lowest first."""
    edges = [_number(b) for b in bins]
    inner = [f"{lo}..{hi}" for lo, hi in pairwise(edges)]
    return [f"<{edges[0]}", *inner, f">={edges[-1]}"]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def group_of(spec: SegmentSpec, value: Any) -> str:
    """The group of one event's value of the segment."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_GROUP
    if spec.bins is None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING_GROUP  # not a number: it cannot be placed
    labels = bin_labels(spec.bins)
    for i, edge in enumerate(spec.bins):
        if value < edge:
            return labels[i]
    return labels[-1]


def value_groups(
    segments: Sequence[SegmentSpec],
    cross: Sequence[str],
    features: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """The (segment, group) pairs of one event's values: one per segment (a tag segment reads
    ``tags``), and the crossed pair when both of its segments are among ``segments``."""
    found = {
        s.name: group_of(s, ((tags or {}) if s.tag else features).get(s.name)) for s in segments
    }
    pairs = list(found.items())
    if len(cross) == 2 and all(c in found for c in cross):
        pairs.append((CROSS.join(cross), CROSS.join(found[c] for c in cross)))
    return pairs
