"""Reference profiles: the bins a model's reference sample fixes, built from columns or rows.

Numeric features: coarse bins at the reference's deciles (for PSI and JS) and up to
``FINE_BINS`` fine edges at finer reference quantiles, with a count and a sum per fine slot (for
KS and Wasserstein); categorical and boolean features: the most frequent categories plus
"other". Window profiles (``vigil.drift.window``) count events into the same bins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.drift.multivariate import multivariate_reference
from vigil.drift.values import BOOLEAN_CATEGORIES, Floats, Mode, numeric_values, tally
from vigil.wire.columns import MISSING, Batch, Column, batch_from_rows
from vigil.wire.records import (
    FeatureProfile,
    FeatureSpec,
    FeatureType,
    ReferenceProfile,
    ReferenceSource,
)

__all__ = [
    "EXTREMES",
    "FINE_BINS",
    "MAX_CATEGORIES",
    "NUMERIC_BINS",
    "TOP_CATEGORIES",
    "build_reference",
    "build_reference_from_batch",
]

# Each numeric feature of a window keeps its EXTREMES smallest and largest values: in the
# long gaps of heavy tails they place the few window values exactly (Wasserstein), and the
# reference's as many extreme values are fine edges.
EXTREMES = 32
FINE_BINS = 200 + 2 * EXTREMES  # at most this many fine edges per numeric feature
NUMERIC_BINS = 10  # coarse bins (deciles) per numeric feature
TOP_CATEGORIES = 20  # categories counted by name; the rest share the "other" slot
MAX_CATEGORIES = 10_000  # distinct reference categories kept to tell unseen values


# Fine edges: reference quantiles at 121 evenly spaced levels (at most 1/120 of the reference
# between two edges, which bounds the KS error) plus 34 levels on each side spaced
# geometrically from 1/n to 1/120, so that the long gaps of heavy tails are split (the
# Wasserstein estimate is exact where F_ref - F_win keeps its sign within a gap, and tails are
# where it flips). With the 9 deciles: at most 198 distinct edges, under FINE_BINS.
_UNIFORM_LEVELS = np.linspace(0.0, 1.0, 121)
_TAIL_LEVELS = 34


def _fine_levels(n: int) -> Floats:
    top = 1.0 / (_UNIFORM_LEVELS.size - 1)
    tail = np.geomspace(min(1.0 / n, top), top, _TAIL_LEVELS + 1)[:-1]
    return np.concatenate([_UNIFORM_LEVELS, tail, 1.0 - tail])


def _fine_slots(edges: Floats, x: Floats) -> npt.NDArray[np.intp]:
    """Fine slot of each value: 2i for e[i-1] < x < e[i], 2i+1 for x == e[i]."""
    i = np.searchsorted(edges, x, side="left")
    padded = np.append(edges, np.inf)
    tie = padded[i] == x
    i <<= 1
    i += tie
    return i


def _numeric_profile(
    name: str, type_: FeatureType, x: Floats, count: int, missing: int, violations: int
) -> FeatureProfile:
    if x.size == 0:
        return FeatureProfile(
            name=name, type=type_, count=count, missing=missing, type_violations=violations
        )
    coarse = np.unique(np.quantile(x, np.arange(1, NUMERIC_BINS) / NUMERIC_BINS))
    # The coarse edges, min and max are always fine edges: coarse counts are sums of fine
    # slots and the reference has no values in the two open tails.
    ordered = np.sort(x)
    ends = np.concatenate([ordered[:EXTREMES], ordered[-EXTREMES:]])
    fine = np.unique(np.concatenate([np.quantile(x, _fine_levels(x.size)), coarse, ends]))
    if fine.size > FINE_BINS:  # not with the levels above; kept as a guard
        fine = np.unique(np.concatenate([np.quantile(x, _UNIFORM_LEVELS), coarse, ends]))
    slots = _fine_slots(fine, x)
    size = 2 * fine.size + 1
    return FeatureProfile(
        name=name,
        type=type_,
        count=count,
        missing=missing,
        type_violations=violations,
        bin_edges=coarse.tolist(),
        bin_counts=np.bincount(
            np.searchsorted(coarse, x, side="right"), minlength=coarse.size + 1
        ).tolist(),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(x.min()),
        max=float(x.max()),
        fine_edges=fine.tolist(),
        fine_counts=np.bincount(slots, minlength=size).tolist(),
        fine_sums=np.bincount(slots, weights=x, minlength=size).tolist(),
    )


def _categorical_profile(
    name: str, type_: FeatureType, column: Column, mode: Mode
) -> FeatureProfile:
    labels, counts, missing, violations = tally(column, mode)
    totals: dict[str, int] = {}
    for label, c in zip(labels, counts.tolist(), strict=True):
        totals[label] = totals.get(label, 0) + c
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    if mode == "boolean":
        categories = list(BOOLEAN_CATEGORIES)
        known = list(BOOLEAN_CATEGORIES)
    else:
        categories = [c for c, _ in ranked[:TOP_CATEGORIES]]
        known = [c for c, _ in ranked[:MAX_CATEGORIES]]
    top = [totals.get(c, 0) for c in categories]
    present = int(counts.sum())
    return FeatureProfile(
        name=name,
        type=type_,
        count=len(column),
        missing=missing,
        type_violations=violations,
        categories=categories,
        category_counts=[*top, present - sum(top)],
        all_categories=known,
    )


def _column_profile(name: str, type_: FeatureType, column: Column, mode: Mode) -> FeatureProfile:
    if type_ == "numeric":
        x, _, missing, violations = numeric_values(column.numbers, column.kinds)
        return _numeric_profile(name, type_, x, len(column), missing, violations)
    return _categorical_profile(name, type_, column, mode)


def _missing_column(n: int) -> Column:
    return Column(
        np.zeros(n, dtype=np.int8),
        np.full(n, np.nan),
        np.full(n, -1, dtype=np.int32),
        [],
    )


def build_reference_from_batch(
    spec: Sequence[FeatureSpec],
    batch: Batch,
    source: ReferenceSource,
    created_at: datetime,
    *,
    task: str = "binary",
    version: int = 1,
) -> ReferenceProfile:
    """The reference profile of a columnar batch for the given feature spec.

    Features absent from the batch count as missing. The prediction is profiled as a numeric
    feature for ``task == "regression"`` and as a categorical one (the labels) otherwise; the
    prediction and score profiles are None when the batch has no such values at all. The
    multivariate (PCA) reference is built when at least two numeric features have values.
    """
    n = len(batch)
    features: list[FeatureProfile] = []
    numeric_names: list[str] = []
    numeric_columns: list[Column] = []
    for feature in spec:
        column = batch.features.get(feature.name)
        if column is None:
            column = _missing_column(n)
        mode: Mode = "boolean" if feature.type == "boolean" else "categorical"
        features.append(_column_profile(feature.name, feature.type, column, mode))
        if feature.type == "numeric":
            numeric_names.append(feature.name)
            numeric_columns.append(column)
    prediction: FeatureProfile | None = None
    if np.any(batch.prediction.kinds != MISSING):
        if task == "regression":
            prediction = _column_profile("prediction", "numeric", batch.prediction, "label")
        else:
            prediction = _column_profile("prediction", "categorical", batch.prediction, "label")
    score: FeatureProfile | None = None
    if np.any(~np.isnan(batch.score)):
        x, _, missing, violations = numeric_values(batch.score, None)
        score = _numeric_profile("score", "numeric", x, n, missing, violations)
    return ReferenceProfile(
        source=source,
        row_count=n,
        created_at=created_at,
        features=features,
        version=version,
        prediction=prediction,
        score=score,
        multivariate=multivariate_reference(numeric_names, numeric_columns, n),
    )


def build_reference(
    spec: Sequence[FeatureSpec],
    rows: Sequence[Mapping[str, Any]],
    source: ReferenceSource,
    created_at: datetime,
    *,
    predictions: Sequence[Any] | None = None,
    scores: Sequence[float | None] | None = None,
    task: str = "binary",
    version: int = 1,
) -> ReferenceProfile:
    """The reference profile of ``rows`` (feature name -> value) for the given feature spec.

    Same result as :func:`build_reference_from_batch` on ``batch_from_rows(rows)``.
    """
    batch = batch_from_rows(
        "", "", rows, [f.name for f in spec], predictions=predictions, scores=scores
    )
    return build_reference_from_batch(spec, batch, source, created_at, task=task, version=version)
