"""Profiles: mergeable, fixed-size summaries of features over a set of events.

A reference profile fixes the bins. Numeric features: coarse bins at the reference's deciles
(for PSI and JS) and up to ``FINE_BINS`` fine edges at finer reference quantiles, with a count
and a sum per fine slot (for KS and Wasserstein); categorical and boolean features: the most
frequent categories plus "other". A window profile counts events into the same bins, so every
drift statistic is a function of two fixed-size summaries, memory is O(features x bins) and two
window profiles merge by adding them up.

A window profile counts columnar batches (``vigil.wire.columns.Batch``) with a handful of numpy
calls per feature: one branch-free search of the fine edges and two ``bincount`` per numeric
feature, one ``bincount`` per categorical one, one small matrix product for the multivariate
check. Its
state lives in four flat arrays (integer counts, float sums, minima, maxima), which makes
merging and serialising cheap.
"""

from __future__ import annotations

import struct
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

from vigil.wire.columns import (
    BOOLEAN,
    DOUBLE,
    LONG,
    MISSING,
    STRING,
    Batch,
    Column,
    batch_from_rows,
)
from vigil.wire.records import (
    FeatureProfile,
    FeatureSpec,
    FeatureType,
    MultivariateReference,
    ReferenceProfile,
    ReferenceSource,
)

__all__ = [
    "BOOLEAN_CATEGORIES",
    "EXTREMES",
    "FINE_BINS",
    "MAX_CATEGORIES",
    "MULTIVARIATE_CLIP",
    "MULTIVARIATE_VARIANCE",
    "NUMERIC_BINS",
    "TOP_CATEGORIES",
    "CategoricalCounts",
    "ErrorCounts",
    "FeatureCounts",
    "NumericCounts",
    "WindowProfile",
    "build_reference",
    "build_reference_from_batch",
    "reconstruction_errors",
    "standardise",
]

# Each numeric feature of a window keeps its EXTREMES smallest and largest values: in the
# long gaps of heavy tails they place the few window values exactly (Wasserstein), and the
# reference's as many extreme values are fine edges.
EXTREMES = 32
FINE_BINS = 200 + 2 * EXTREMES  # at most this many fine edges per numeric feature
NUMERIC_BINS = 10  # coarse bins (deciles) per numeric feature
TOP_CATEGORIES = 20  # categories counted by name; the rest share the "other" slot
MAX_CATEGORIES = 10_000  # distinct reference categories kept to tell unseen values
MULTIVARIATE_VARIANCE = 0.9  # share of the standardised variance the PCA components keep
MULTIVARIATE_CLIP = 5.0  # standardised values are clipped to +-this for the PCA
BOOLEAN_CATEGORIES = ["false", "true"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
# How a categorical accumulator reads values: "categorical" takes strings, longs (as decimal
# text) and booleans ("true"/"false"); "boolean" only booleans; "label" (predictions of a
# classifier) also takes doubles, integral ones written like longs.
Mode = Literal["categorical", "boolean", "label"]


# -- reading columns ---------------------------------------------------------------------------


def _kind_counts(kinds: npt.NDArray[np.int8]) -> Ints:
    return np.bincount(kinds.view(np.uint8), minlength=STRING + 1).astype(np.int64)


def _numeric_values(
    numbers: Floats, kinds: npt.NDArray[np.int8] | None
) -> tuple[Floats, Mask | None, int, int]:
    """The usable values of a numeric column, their mask, and the missing and bad counts.

    Longs and finite doubles are values; null, absent and NaN are missing; booleans, strings
    and infinite doubles are type violations. The mask is None when every value is usable.
    ``kinds`` None means a plain float array (NaN: missing), e.g. scores.
    """
    n = numbers.size
    finite = np.isfinite(numbers)
    n_finite = int(np.count_nonzero(finite))
    n_boolean = 0 if kinds is None else int(np.count_nonzero(kinds == BOOLEAN))
    if n_finite == n and n_boolean == 0:
        return numbers, None, 0, 0
    nan = int(np.count_nonzero(np.isnan(numbers)))
    if kinds is None:
        valid = finite
        missing = nan
    else:
        valid = finite & (kinds != BOOLEAN) if n_boolean else finite
        # NaN numbers are the missing values, the strings and the NaN doubles.
        missing = nan - int(np.count_nonzero(kinds == STRING))
    n_valid = int(np.count_nonzero(valid))
    return numbers[valid], valid, missing, n - n_valid - missing


def _label(value: float) -> str:
    """A double as a category: integral values like longs ("1"), others as Python writes them."""
    return str(int(value)) if value.is_integer() else repr(value)


def _tally(column: Column, mode: Mode) -> tuple[list[str], Ints, int, int]:
    """The category values of a column with their counts, plus missing and bad counts.

    Labels may repeat (e.g. the string "7" and the long 7); counts are per label occurrence.
    """
    kinds = column.kinds
    n = kinds.size
    per_kind = _kind_counts(kinds)
    labels: list[str] = []
    counts: list[npt.NDArray[np.int64]] = []
    accepted = 0
    if per_kind[STRING] and mode != "boolean":
        codes = column.codes if per_kind[STRING] == n else column.codes[kinds == STRING]
        by_code = np.bincount(codes, minlength=len(column.vocab))
        used = np.flatnonzero(by_code)
        labels.extend(column.vocab[i] for i in used.tolist())
        counts.append(by_code[used].astype(np.int64))
        accepted += int(per_kind[STRING])
    numeric_kinds = {"categorical": (LONG,), "boolean": (), "label": (LONG, DOUBLE)}[mode]
    for kind in numeric_kinds:
        if not per_kind[kind]:
            continue
        values, how_many = np.unique(column.numbers[kinds == kind], return_counts=True)
        finite = np.isfinite(values)
        labels.extend(_label(float(v)) for v in values[finite].tolist())
        counts.append(how_many[finite].astype(np.int64))
        accepted += int(how_many[finite].sum())
    if per_kind[BOOLEAN]:
        true = int(np.count_nonzero(column.numbers[kinds == BOOLEAN]))
        labels.extend(BOOLEAN_CATEGORIES)
        counts.append(np.array([per_kind[BOOLEAN] - true, true], dtype=np.int64))
        accepted += int(per_kind[BOOLEAN])
    missing = int(per_kind[MISSING])
    merged = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    return labels, merged, missing, n - missing - accepted


# -- reference profiles -------------------------------------------------------------------------

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
    labels, counts, missing, violations = _tally(column, mode)
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
        x, _, missing, violations = _numeric_values(column.numbers, column.kinds)
        return _numeric_profile(name, type_, x, len(column), missing, violations)
    return _categorical_profile(name, type_, column, mode)


def _missing_column(n: int) -> Column:
    return Column(
        np.zeros(n, dtype=np.int8),
        np.full(n, np.nan),
        np.full(n, -1, dtype=np.int32),
        [],
    )


def reconstruction_errors(
    reference: MultivariateReference, basis: Floats, standardised: Floats
) -> Floats:
    """Per-event PCA reconstruction error: ``|z - C^T C z|^2 / F`` for each column ``z``.

    ``standardised`` is F x n (one row per feature, already centred and scaled); ``basis`` the
    orthonormal complement of the kept components (rows), so the residual's squared norm is
    ``|basis z|^2``.
    """
    residual = basis @ standardised
    errors: Floats = np.einsum("ij,ij->j", residual, residual)
    return errors / len(reference.features)


_IQR_OF_NORMAL = 1.3489795003921634  # interquartile range of the standard normal


def standardise(values: Floats, center: Floats, inverse_scale: Floats) -> Floats:
    """Standardised values for the multivariate check, in place: F x n, one row per feature.

    ``(x - center) / scale`` with the reference's median as center and its interquartile range
    / 1.349 as scale (its std where that is 0), clipped to +-``MULTIVARIATE_CLIP``: heavy-tailed
    features (a Student-t with 2 degrees of freedom has no variance) would otherwise make the
    mean reconstruction error of a window hinge on its few most extreme events. Missing values
    are imputed with the center (0 after standardising).
    """
    values -= center[:, None]
    values *= inverse_scale[:, None]
    np.clip(values, -MULTIVARIATE_CLIP, MULTIVARIATE_CLIP, out=values)
    return values


def _residual_basis(components: Floats, size: int) -> Floats:
    """Orthonormal rows spanning what the components leave out."""
    projector = np.eye(size) - components.T @ components
    values, vectors = np.linalg.eigh(projector)
    return np.ascontiguousarray(vectors[:, values > 0.5].T)


def _multivariate(
    names: Sequence[str], columns: Sequence[Column], n: int
) -> MultivariateReference | None:
    """PCA on the robustly standardised numeric features; see :func:`standardise`."""
    kept: list[str] = []
    rows: list[Floats] = []
    centers: list[float] = []
    scales: list[float] = []
    for name, column in zip(names, columns, strict=True):
        x, valid, _, _ = _numeric_values(column.numbers, column.kinds)
        if x.size == 0:
            continue
        q1, center, q3 = (float(q) for q in np.quantile(x, [0.25, 0.5, 0.75]))
        scale = (q3 - q1) / _IQR_OF_NORMAL
        if not scale > 0:
            scale = float(x.std()) or 1.0
        rows.append(column.numbers if valid is None else np.where(valid, column.numbers, center))
        kept.append(name)
        centers.append(center)
        scales.append(scale)
    size = len(kept)
    if size < 2 or n < 2:
        return None
    z = standardise(np.vstack(rows), np.asarray(centers), 1.0 / np.asarray(scales))
    values, vectors = np.linalg.eigh(z @ z.T / n)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    total = values.sum()
    share = np.cumsum(values) / total if total > 0 else np.ones(size)
    k = int(np.searchsorted(share, MULTIVARIATE_VARIANCE - 1e-12) + 1)
    # At most F - 1 components, so that a change of correlation always leaves a residual.
    k = max(1, min(k, size - 1))
    components = np.ascontiguousarray(vectors[:, :k].T)
    reference = MultivariateReference(
        features=kept,
        center=centers,
        scale=scales,
        components=components.tolist(),
        error_mean=0.0,
        error_std=0.0,
    )
    errors = reconstruction_errors(reference, _residual_basis(components, size), z)
    reference.error_mean = float(errors.mean())
    reference.error_std = float(errors.std())
    return reference


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
        x, _, missing, violations = _numeric_values(batch.score, None)
        score = _numeric_profile("score", "numeric", x, n, missing, violations)
    return ReferenceProfile(
        source=source,
        row_count=n,
        created_at=created_at,
        features=features,
        version=version,
        prediction=prediction,
        score=score,
        multivariate=_multivariate(numeric_names, numeric_columns, n),
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


# -- window profiles ----------------------------------------------------------------------------

T = TypeVar("T")
K = TypeVar("K")

# What window profiles derive from a reference (search tables, PCA complement, category index)
# is computed once per reference object: the drift detector builds a profile per window and
# per partial it merges, always from the same few references.
_DERIVED: OrderedDict[tuple[str, int], tuple[object, object]] = OrderedDict()
_DERIVED_SIZE = 512


def _derived(kind: str, source: K, build: Callable[[K], T]) -> T:
    """``build(source)``, remembered for the same source object (the last 512)."""
    key = (kind, id(source))
    hit = _DERIVED.get(key)
    if hit is not None and hit[0] is source:
        _DERIVED.move_to_end(key)
        return cast(T, hit[1])
    value = build(source)
    _DERIVED[key] = (source, value)
    if len(_DERIVED) > _DERIVED_SIZE:
        _DERIVED.popitem(last=False)
    return value


class _Locator:
    """``np.searchsorted(edges, x, side="left")`` for many x, without branch mispredictions.

    A value's cell on a uniform grid over [edges[0], edges[-1]] (clipped at both ends) is a
    monotone function of the value, so every edge in an earlier cell is below it and every edge
    in a later cell above: only the edges of its own cell are left to compare, with a few
    vectorised (branch-free) binary-search steps. The grid is the coarsest of 16 to 16,384
    cells that leaves at most one edge per cell, else the one with the fewest steps. On random
    input numpy's searchsorted mispredicts a branch at nearly every level of its binary search
    (about 40 ns per value for 200 edges); this costs about 6 ns per value with one step.
    """

    def __init__(self, edges: Floats) -> None:
        self.low = float(edges[0]) if edges.size else 0.0
        width = float(edges[-1]) - self.low if edges.size else 0.0
        # One cell (plain branch-free binary search) when there is no usable grid.
        best: tuple[int, int, float, Ints] = (
            edges.size.bit_length(),
            1,
            0.0,
            np.array([edges.size], dtype=np.int64),
        )
        for power in range(4, 15):
            cells = 1 << power
            scale = cells / width if width > 0 else 0.0
            if not 0.0 < scale < np.inf:
                break
            per_cell = np.bincount(self._cells(edges, cells, scale), minlength=cells)
            steps = int(per_cell.max(initial=0)).bit_length()
            if steps < best[0]:
                best = (steps, cells, scale, per_cell)
            if steps <= 1:
                break
        steps, self.cells, self.scale, per_cell = best
        self.first = np.concatenate([[0], np.cumsum(per_cell)[:-1]]).astype(np.int32)
        self.steps = [1 << s for s in range(steps - 1, -1, -1)]
        # +inf after the edges: a step may look up to 2**steps - 1 places past the last one.
        self.padded: Floats = np.concatenate([edges, np.full(1 << steps, np.inf)])

    def _cells(self, x: Floats, cells: int, scale: float) -> npt.NDArray[np.intp]:
        if cells == 1:
            return np.zeros(x.size, dtype=np.intp)
        with np.errstate(over="ignore"):  # far values become +-inf, then clipped
            c = x - self.low
            c *= scale
        np.floor(c, out=c)
        np.clip(c, 0, cells - 1, out=c)
        return c.astype(np.intp)

    def left(self, x: Floats) -> npt.NDArray[np.int32]:
        """How many edges are below each value (finite values only)."""
        i = self.first[self._cells(x, self.cells, self.scale)]
        padded = self.padded
        for step in self.steps:
            i += step * (padded[i + (step - 1)] < x)
        return i


class _NumericBins:
    """The bins a window counts a numeric feature in, derived from its reference profile."""

    def __init__(self, reference: FeatureProfile) -> None:
        coarse = np.asarray(reference.bin_edges, dtype=np.float64)
        fine = np.asarray(reference.fine_edges, dtype=np.float64)
        # A reference without fine slots (or whose coarse edges are not among them) is counted
        # on its coarse edges: PSI and JS still work, KS and Wasserstein are not available.
        self.has_fine = len(reference.fine_counts) == 2 * fine.size + 1 and bool(
            np.isin(coarse, fine).all()
        )
        self.edges: Floats = fine if self.has_fine else coarse
        self.locator = _Locator(self.edges)
        self.slots = 2 * self.edges.size + 1
        # Coarse bin of every fine slot (edges[i-1] <= x < edges[i], searchsorted "right").
        ties = np.searchsorted(coarse, self.edges, side="right")
        self.coarse_of_slot = np.zeros(self.slots, dtype=np.intp)
        self.coarse_of_slot[1::2] = ties
        self.coarse_of_slot[2::2] = ties
        self.coarse_size = coarse.size + 1
        # The reference's own counts as arrays, for the statistics.
        self.reference_bins = np.asarray(reference.bin_counts, dtype=np.float64)
        self.reference_counts = np.asarray(reference.fine_counts, dtype=np.float64)
        self.reference_sums = np.asarray(reference.fine_sums, dtype=np.float64)


class _CategoricalBins:
    def __init__(self, reference: FeatureProfile) -> None:
        self.index = {c: i for i, c in enumerate(reference.categories)}
        self.known = frozenset(reference.all_categories or reference.categories)
        self.reference_bins = np.asarray(reference.category_counts, dtype=np.float64)


class _ResidualBasis:
    def __init__(self, reference: MultivariateReference) -> None:
        self.center = np.asarray(reference.center, dtype=np.float64)
        self.inverse_scale = 1.0 / np.asarray(reference.scale, dtype=np.float64)
        components = np.asarray(reference.components, dtype=np.float64)
        self.basis = _residual_basis(components, len(reference.features))


def _smallest(values: Floats) -> Floats:
    """The EXTREMES smallest of ``values`` (at least EXTREMES of them), ascending."""
    if values.size > 4 * EXTREMES:
        values = np.partition(values, EXTREMES - 1)[:EXTREMES]
    return np.sort(values)[:EXTREMES]


class _Layout:
    """Hands out slices of the flat state arrays while accumulators are set up."""

    def __init__(self) -> None:
        self.ints = 0
        self.floats = 0
        self.extremes = 0

    def take(self, kind: Literal["ints", "floats", "extremes"], size: int) -> slice:
        start = getattr(self, kind)
        setattr(self, kind, start + size)
        return slice(start, start + size)


class _State:
    """The flat arrays every accumulator of one window profile keeps its numbers in."""

    def __init__(self, layout: _Layout) -> None:
        self.ints: Ints = np.zeros(layout.ints, dtype="<i8")
        self.floats: Floats = np.zeros(layout.floats, dtype="<f8")
        self.mins: Floats = np.full(layout.extremes, np.inf, dtype="<f8")
        self.maxs: Floats = np.full(layout.extremes, -np.inf, dtype="<f8")


# Quality counters at the start of every feature's integer slice.
_COUNT, _MISSING, _VIOLATIONS, _OUT_OF_RANGE, _UNSEEN = range(5)
_QUALITY = 5


class FeatureCounts(ABC):
    """A window's counts of one feature (or output) in its reference profile's bins."""

    reference: FeatureProfile

    def __init__(self, reference: FeatureProfile, layout: _Layout, bins: int) -> None:
        self.reference = reference
        self._ints_at = layout.take("ints", _QUALITY + bins)
        self._quality: Ints = np.zeros(_QUALITY, dtype=np.int64)

    def _bind(self, state: _State) -> None:
        ints = state.ints[self._ints_at]
        self._quality = ints[:_QUALITY]
        self._counts: Ints = ints[_QUALITY:]

    @property
    def count(self) -> int:
        """Events seen, missing values included."""
        return int(self._quality[_COUNT])

    @property
    def missing(self) -> int:
        return int(self._quality[_MISSING])

    @property
    def type_violations(self) -> int:
        return int(self._quality[_VIOLATIONS])

    @property
    def out_of_range(self) -> int:
        return int(self._quality[_OUT_OF_RANGE])

    @property
    def unseen(self) -> int:
        return int(self._quality[_UNSEEN])

    @property
    def valid(self) -> int:
        """Values counted in the bins: neither missing nor of the wrong type."""
        return self.count - self.missing - self.type_violations

    @property
    @abstractmethod
    def bins(self) -> Ints:
        """Counts in the reference's coarse bins (numeric) or categories + other."""

    def add_missing(self, n: int) -> None:
        """Count ``n`` events without this value."""
        self._quality[_COUNT] += n
        self._quality[_MISSING] += n

    @abstractmethod
    def profile(self) -> FeatureProfile:
        """The window's counts as a FeatureProfile (same bins as the reference)."""


class NumericCounts(FeatureCounts):
    """Fine-slot counts and sums of a numeric feature, plus moments and extremes."""

    def __init__(
        self, reference: FeatureProfile, spec: FeatureSpec | None, layout: _Layout
    ) -> None:
        bins = _derived("numeric", reference, _NumericBins)
        self.derived = bins
        self.has_fine = bins.has_fine
        self.edges = bins.edges
        self._locator = bins.locator
        self._padded = bins.locator.padded
        self.coarse_of_slot = bins.coarse_of_slot
        self.coarse_size = bins.coarse_size
        slots = bins.slots
        super().__init__(reference, layout, slots)
        self._floats_at = layout.take("floats", 2 + slots)
        self._extreme = layout.take("extremes", EXTREMES).start
        lows = [v for v in (reference.min, spec.min if spec else None) if v is not None]
        highs = [v for v in (reference.max, spec.max if spec else None) if v is not None]
        # In range means inside the reference's range or the spec's, whichever is wider.
        self.low = min(lows) if lows else -np.inf
        self.high = max(highs) if highs else np.inf
        self._range_from_slots = (
            self.edges.size > 0 and self.low == self.edges[0] and self.high == self.edges[-1]
        )
        # Moments are kept about the reference mean, which keeps the variance accurate.
        self.shift = reference.mean if reference.mean is not None else 0.0

    def _bind(self, state: _State) -> None:
        super()._bind(state)
        floats = state.floats[self._floats_at]
        self._moments: Floats = floats[:2]
        self._sums: Floats = floats[2:]
        self._mins = state.mins
        self._maxs = state.maxs

    @property
    def fine_counts(self) -> Ints:
        return self._counts

    @property
    def fine_sums(self) -> Floats:
        return self._sums

    @property
    def bins(self) -> Ints:
        coarse = np.bincount(self.coarse_of_slot, weights=self._counts, minlength=self.coarse_size)
        return np.rint(coarse).astype(np.int64)

    @property
    def mean(self) -> float | None:
        n = self.valid
        return self.shift + float(self._moments[0]) / n if n else None

    @property
    def std(self) -> float | None:
        n = self.valid
        if not n:
            return None
        m = float(self._moments[0]) / n
        return float(np.sqrt(max(float(self._moments[1]) / n - m * m, 0.0)))

    @property
    def min(self) -> float | None:
        value = float(self._mins[self._extreme])
        return value if np.isfinite(value) else None

    @property
    def max(self) -> float | None:
        value = float(self._maxs[self._extreme])
        return value if np.isfinite(value) else None

    def add(self, numbers: Floats, kinds: npt.NDArray[np.int8] | None) -> Mask | None:
        """Count a column's values; returns the mask of usable values (None: all usable)."""
        x, valid, missing, violations = _numeric_values(numbers, kinds)
        quality = self._quality
        quality[_COUNT] += numbers.size
        if valid is not None:
            quality[_MISSING] += missing
            quality[_VIOLATIONS] += violations
        if x.size == 0:
            return valid
        slots = self._locator.left(x)
        tie = self._padded[slots] == x
        slots <<= 1
        slots += tie
        counts = np.bincount(slots, minlength=self._counts.size)
        self._counts += counts
        self._sums += np.bincount(slots, weights=x, minlength=self._counts.size)
        if self._range_from_slots:
            quality[_OUT_OF_RANGE] += counts[0] + counts[-1]
        else:
            quality[_OUT_OF_RANGE] += np.count_nonzero((x < self.low) | (x > self.high))
        d = x - self.shift
        self._moments[0] += d.sum()
        self._moments[1] += d @ d
        block = slice(self._extreme, self._extreme + EXTREMES)
        lows, highs = self._mins[block], self._maxs[block]
        below = x[x < lows[-1]]  # after the first batches, few values beat the kept ones
        if below.size:
            lows[:] = _smallest(np.concatenate([lows, below]))
        above = x[x > highs[-1]]
        if above.size:
            highs[:] = -_smallest(-np.concatenate([highs, above]))
        return valid

    @property
    def lows(self) -> Floats:
        """The window's EXTREMES smallest values, ascending (inf where fewer)."""
        return self._mins[self._extreme : self._extreme + EXTREMES]

    @property
    def known_extremes(self) -> Floats:
        """Window values known exactly, each once: the lows and highs, or (small windows) the
        lows alone when they hold every value; empty when the two may overlap."""
        n = self.valid
        if n <= EXTREMES:
            return self.lows[:n]
        if n <= 2 * EXTREMES:
            return np.empty(0)
        return np.concatenate([self.lows, self.highs])

    @property
    def highs(self) -> Floats:
        """The window's EXTREMES largest values, descending (-inf where fewer)."""
        return self._maxs[self._extreme : self._extreme + EXTREMES]

    def profile(self) -> FeatureProfile:
        ref = self.reference
        return FeatureProfile(
            name=ref.name,
            type=ref.type,
            count=self.count,
            missing=self.missing,
            type_violations=self.type_violations,
            bin_edges=list(ref.bin_edges),
            bin_counts=self.bins.tolist(),
            mean=self.mean,
            std=self.std,
            min=self.min,
            max=self.max,
            fine_edges=self.edges.tolist() if self.has_fine else [],
            fine_counts=self._counts.tolist() if self.has_fine else [],
            fine_sums=self._sums.tolist() if self.has_fine else [],
        )


class CategoricalCounts(FeatureCounts):
    """Counts per reference category plus "other", and the values the reference never had."""

    def __init__(self, reference: FeatureProfile, layout: _Layout, mode: Mode) -> None:
        super().__init__(reference, layout, len(reference.categories) + 1)
        self.mode: Mode = mode
        self.other = len(reference.categories)
        bins = _derived("categorical", reference, _CategoricalBins)
        self.derived = bins
        self.index = bins.index
        self.known = bins.known

    @property
    def bins(self) -> Ints:
        return self._counts

    def add(self, column: Column) -> None:
        """Count a column's values."""
        labels, counts, missing, violations = _tally(column, self.mode)
        quality = self._quality
        quality[_COUNT] += len(column)
        quality[_MISSING] += missing
        quality[_VIOLATIONS] += violations
        if not labels:
            return
        index, other, known = self.index, self.other, self.known
        slots = np.fromiter((index.get(v, other) for v in labels), np.intp, len(labels))
        np.add.at(self._counts, slots, counts)
        unseen = np.fromiter((v not in known for v in labels), np.bool_, len(labels))
        quality[_UNSEEN] += counts[unseen].sum()

    def profile(self) -> FeatureProfile:
        ref = self.reference
        return FeatureProfile(
            name=ref.name,
            type=ref.type,
            count=self.count,
            missing=self.missing,
            type_violations=self.type_violations,
            categories=list(ref.categories),
            category_counts=self._counts.tolist(),
        )


class ErrorCounts:
    """Count, sum and sum of squares of the window's PCA reconstruction errors."""

    def __init__(self, reference: MultivariateReference, layout: _Layout) -> None:
        self.reference = reference
        derived = _derived("multivariate", reference, _ResidualBasis)
        self.center = derived.center
        self.inverse_scale = derived.inverse_scale
        self.basis = derived.basis
        self._ints_at = layout.take("ints", 1)
        self._floats_at = layout.take("floats", 2)

    def _bind(self, state: _State) -> None:
        self._count: Ints = state.ints[self._ints_at]
        self._moments: Floats = state.floats[self._floats_at]

    @property
    def count(self) -> int:
        return int(self._count[0])

    @property
    def mean(self) -> float | None:
        return float(self._moments[0]) / self.count if self.count else None

    @property
    def std(self) -> float | None:
        n = self.count
        if not n:
            return None
        m = float(self._moments[0]) / n
        return float(np.sqrt(max(float(self._moments[1]) / n - m * m, 0.0)))

    def add(self, batch: Batch, masks: Mapping[str, Mask | None]) -> None:
        """Add the errors of a batch's events (unusable values imputed with the center)."""
        n = len(batch)
        z = np.empty((len(self.reference.features), n))
        for j, name in enumerate(self.reference.features):
            column = batch.features.get(name)
            if column is None:
                z[j] = self.center[j]
                continue
            z[j] = column.numbers
            mask = masks.get(name)
            if mask is not None:
                z[j][~mask] = self.center[j]
        standardise(z, self.center, self.inverse_scale)
        errors = reconstruction_errors(self.reference, self.basis, z)
        self._count[0] += n
        self._moments[0] += errors.sum()
        self._moments[1] += errors @ errors


_MAGIC = b"VGWP"
_HEADER = struct.Struct("<4sBxxxIIIIIq")
_FORMAT = 1


class WindowProfile:
    """Counts of a window's events in a reference profile's bins, feature by feature.

    ``features`` maps each reference feature to its counts; ``prediction`` and ``score`` count
    the model's outputs when the reference profiled them; ``multivariate`` the PCA
    reconstruction errors when the reference has a PCA. Windows of the same reference (and
    spec) merge, and serialise with :meth:`to_bytes`.
    """

    def __init__(self, reference: ReferenceProfile, spec: Sequence[FeatureSpec]) -> None:
        specs = {s.name: s for s in spec}
        self.reference = reference
        self.source: ReferenceSource = reference.source
        layout = _Layout()
        self._event_count_at = layout.take("ints", 1).start
        self.features: dict[str, FeatureCounts] = {}
        for f in reference.features:
            if f.type == "numeric":
                self.features[f.name] = NumericCounts(f, specs.get(f.name), layout)
            else:
                mode: Mode = "boolean" if f.type == "boolean" else "categorical"
                self.features[f.name] = CategoricalCounts(f, layout, mode)
        self.prediction: FeatureCounts | None = None
        if reference.prediction is not None:
            if reference.prediction.type == "numeric":
                self.prediction = NumericCounts(reference.prediction, None, layout)
            else:
                self.prediction = CategoricalCounts(reference.prediction, layout, "label")
        self.score = NumericCounts(reference.score, None, layout) if reference.score else None
        mv = reference.multivariate
        self.multivariate = ErrorCounts(mv, layout) if mv is not None else None
        self._state = _State(layout)
        for counts in self._accumulators():
            counts._bind(self._state)
        self._numeric = [
            (name, c) for name, c in self.features.items() if isinstance(c, NumericCounts)
        ]
        self._categorical = [
            (name, c) for name, c in self.features.items() if isinstance(c, CategoricalCounts)
        ]

    def _accumulators(self) -> list[FeatureCounts | ErrorCounts]:
        found: list[FeatureCounts | ErrorCounts] = list(self.features.values())
        found += [c for c in (self.prediction, self.score, self.multivariate) if c is not None]
        return found

    @property
    def event_count(self) -> int:
        return int(self._state.ints[self._event_count_at])

    def add(self, batch: Batch) -> None:
        """Count a batch of events: features, prediction, score, reconstruction errors."""
        n = len(batch)
        if n == 0:
            return
        self._state.ints[self._event_count_at] += n
        masks: dict[str, Mask | None] = {}
        for name, numeric in self._numeric:
            column = batch.features.get(name)
            if column is None:
                numeric.add_missing(n)
            else:
                masks[name] = numeric.add(column.numbers, column.kinds)
        for name, categorical in self._categorical:
            column = batch.features.get(name)
            if column is None:
                categorical.add_missing(n)
            else:
                categorical.add(column)
        if isinstance(self.prediction, NumericCounts):
            self.prediction.add(batch.prediction.numbers, batch.prediction.kinds)
        elif isinstance(self.prediction, CategoricalCounts):
            self.prediction.add(batch.prediction)
        if self.score is not None:
            self.score.add(batch.score, None)
        if self.multivariate is not None:
            self.multivariate.add(batch, masks)

    def add_rows(
        self,
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any] | None = None,
        scores: Sequence[float | None] | None = None,
    ) -> None:
        """Count events given as feature dicts (plus their predictions and scores)."""
        self.add(
            batch_from_rows(
                "", "", rows, list(self.features), predictions=predictions, scores=scores
            )
        )

    def feature_profile(self, name: str) -> FeatureProfile:
        """The window's counts of feature ``name`` (or "prediction", "score") as a profile."""
        counts = self.features.get(name)
        if counts is None and name == "prediction":
            counts = self.prediction
        if counts is None and name == "score":
            counts = self.score
        if counts is None:
            raise KeyError(name)
        return counts.profile()

    @cached_property
    def fingerprint(self) -> int:
        """CRC-32 of the bins this profile counts in: profiles merge only with equal ones."""
        crc = 0
        for counts in self._accumulators():
            if isinstance(counts, NumericCounts):
                crc = zlib.crc32(counts.reference.name.encode(), crc)
                crc = zlib.crc32(counts.edges.tobytes(), crc)
            elif isinstance(counts, CategoricalCounts):
                crc = zlib.crc32(counts.reference.name.encode(), crc)
                crc = zlib.crc32("\x00".join(counts.reference.categories).encode(), crc)
            elif isinstance(counts, ErrorCounts):
                crc = zlib.crc32(counts.center.tobytes(), crc)
                crc = zlib.crc32(counts.basis.tobytes(), crc)
        return crc

    def _check_compatible(self, sizes: tuple[int, int, int], fingerprint: int) -> None:
        state = self._state
        if sizes != (state.ints.size, state.floats.size, state.mins.size) or (
            fingerprint != self.fingerprint
        ):
            raise ValueError("window profiles of different references (or specs) do not mix")

    def merge(self, other: WindowProfile) -> None:
        """Add ``other``'s events to this profile (same reference and spec)."""
        a, b = self._state, other._state
        self._check_compatible((b.ints.size, b.floats.size, b.mins.size), other.fingerprint)
        a.ints += b.ints
        a.floats += b.floats
        if a.mins.size:
            both = np.concatenate([a.mins.reshape(-1, EXTREMES), b.mins.reshape(-1, EXTREMES)], 1)
            a.mins[:] = np.sort(both, axis=1)[:, :EXTREMES].ravel()
            both = np.concatenate([a.maxs.reshape(-1, EXTREMES), b.maxs.reshape(-1, EXTREMES)], 1)
            a.maxs[:] = -np.sort(-both, axis=1)[:, :EXTREMES].ravel()

    def to_bytes(self) -> bytes:
        """The counts, compact: a fixed header, then zlib-compressed little-endian arrays."""
        s = self._state
        header = _HEADER.pack(
            _MAGIC,
            _FORMAT,
            self.fingerprint,
            self.reference.version,
            s.ints.size,
            s.floats.size,
            s.mins.size,
            self.event_count,
        )
        body = b"".join(a.tobytes() for a in (s.ints, s.floats, s.mins, s.maxs))
        return header + zlib.compress(body, 1)

    @classmethod
    def from_bytes(
        cls, data: bytes, reference: ReferenceProfile, spec: Sequence[FeatureSpec]
    ) -> WindowProfile:
        """A profile from :meth:`to_bytes` output; ValueError if it counts other bins."""
        if len(data) < _HEADER.size:
            raise ValueError("not a window profile: too short")
        magic, fmt, fingerprint, _, n_ints, n_floats, n_extremes, _ = _HEADER.unpack_from(data)
        if magic != _MAGIC or fmt != _FORMAT:
            raise ValueError("not a window profile (or an unknown format)")
        profile = cls(reference, spec)
        profile._check_compatible((n_ints, n_floats, n_extremes), fingerprint)
        try:
            body = zlib.decompress(data[_HEADER.size :])
        except zlib.error as e:
            raise ValueError(f"corrupt window profile: {e}") from e
        s = profile._state
        if len(body) != 8 * (s.ints.size + s.floats.size + 2 * s.mins.size):
            raise ValueError("corrupt window profile: wrong length")
        at = 0
        for array in (s.ints, s.floats, s.mins, s.maxs):
            size = array.size * 8
            array[:] = np.frombuffer(body, dtype=array.dtype, count=array.size, offset=at)
            at += size
        return profile
