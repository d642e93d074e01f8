"""Profiles: mergeable, fixed-size summaries of features over a set of events.

A reference profile fixes the bins (numeric: edges at the reference's deciles; categorical:
its most frequent categories plus "other"). A window profile counts events into the same bins,
so any drift statistic is a function of two count vectors and memory is O(features x bins).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.schemas import FeatureProfile, FeatureSpec, ReferenceProfile, ReferenceSource

__all__ = ["NUMERIC_BINS", "TOP_CATEGORIES", "WindowProfile", "build_reference"]

NUMERIC_BINS = 10
TOP_CATEGORIES = 20
BOOLEAN_CATEGORIES = ["false", "true"]


def _category(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _numeric_profile(name: str, values: Sequence[Any], count: int) -> FeatureProfile:
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return FeatureProfile(name=name, type="numeric", count=count, missing=count)
    quantiles = np.quantile(x, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])
    edges = np.unique(quantiles)
    bins = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
    return FeatureProfile(
        name=name,
        type="numeric",
        count=count,
        missing=count - int(x.size),
        bin_edges=edges.tolist(),
        bin_counts=bins.tolist(),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(x.min()),
        max=float(x.max()),
    )


def _categorical_profile(spec: FeatureSpec, values: Sequence[Any], count: int) -> FeatureProfile:
    present = [_category(v) for v in values if v is not None]
    counts = Counter(present)
    if spec.type == "boolean":
        categories = BOOLEAN_CATEGORIES
    else:
        categories = [c for c, _ in counts.most_common(TOP_CATEGORIES)]
    top = [counts[c] for c in categories]
    return FeatureProfile(
        name=spec.name,
        type=spec.type,
        count=count,
        missing=count - len(present),
        categories=categories,
        category_counts=[*top, len(present) - sum(top)],
    )


def build_reference(
    spec: Sequence[FeatureSpec],
    rows: Sequence[Mapping[str, Any]],
    source: ReferenceSource,
    created_at: datetime,
) -> ReferenceProfile:
    """The reference profile of ``rows`` (feature name -> value) for the given feature spec."""
    features = []
    for feature in spec:
        values = [row.get(feature.name) for row in rows]
        if feature.type == "numeric":
            features.append(_numeric_profile(feature.name, values, len(rows)))
        else:
            features.append(_categorical_profile(feature, values, len(rows)))
    return ReferenceProfile(
        source=source, row_count=len(rows), created_at=created_at, features=features
    )


class _FeatureCounts:
    """Counts of one feature in the reference's bins, plus data-quality counts."""

    def __init__(self, reference: FeatureProfile, spec: FeatureSpec | None) -> None:
        self.reference = reference
        self.edges = np.asarray(reference.bin_edges, dtype=np.float64)
        self.index = {c: i for i, c in enumerate(reference.categories)}
        size = self.edges.size + 1 if reference.type == "numeric" else len(self.index) + 1
        self.bins: npt.NDArray[np.int64] = np.zeros(size, dtype=np.int64)
        self.count = 0
        self.missing = 0
        self.out_of_range = 0
        self.unseen = 0
        low = [v for v in (reference.min, spec.min if spec else None) if v is not None]
        high = [v for v in (reference.max, spec.max if spec else None) if v is not None]
        # In range means inside the reference's range or the spec's, whichever is wider.
        self.low = min(low) if low else -np.inf
        self.high = max(high) if high else np.inf

    def add(self, values: Sequence[Any]) -> None:
        self.count += len(values)
        present = [v for v in values if v is not None]
        self.missing += len(values) - len(present)
        if not present:
            return
        if self.reference.type == "numeric":
            x = np.asarray(
                [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)],
                dtype=np.float64,
            )
            self.bins += np.bincount(
                np.searchsorted(self.edges, x, side="right"), minlength=self.bins.size
            )
            self.out_of_range += int(np.count_nonzero((x < self.low) | (x > self.high)))
        else:
            other = self.bins.size - 1
            idx = [self.index.get(_category(v), other) for v in present]
            self.bins += np.bincount(np.asarray(idx, dtype=np.int64), minlength=self.bins.size)
            self.unseen += idx.count(other)


class WindowProfile:
    """Counts of a window's events in a reference profile's bins, feature by feature."""

    def __init__(self, reference: ReferenceProfile, spec: Iterable[FeatureSpec]) -> None:
        specs = {s.name: s for s in spec}
        self.source = reference.source
        self.features = {f.name: _FeatureCounts(f, specs.get(f.name)) for f in reference.features}
        self.event_count = 0

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Count a micro-batch of events' features."""
        self.event_count += len(rows)
        for name, counts in self.features.items():
            counts.add([row.get(name) for row in rows])
