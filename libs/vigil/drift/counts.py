"""The accumulators of one feature or output of a window: numeric fine-slot counts and
categorical counts."""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from vigil.drift.accumulators import (
    COUNT,
    MISSING,
    OUT_OF_RANGE,
    UNSEEN,
    VIOLATIONS,
    FeatureCounts,
    Layout,
    Source,
    State,
)
from vigil.drift.bins import CategoricalBins, NumericBins, derived
from vigil.drift.reference import EXTREMES
from vigil.drift.values import Floats, Ints, Mask, Mode, numeric_values, tally
from vigil.wire.columns import Batch, Column
from vigil.wire.records import FeatureProfile, FeatureSpec

__all__ = ["CategoricalCounts", "NumericCounts"]


def _smallest(values: Floats) -> Floats:
    """The EXTREMES smallest of ``values`` (at least EXTREMES of them), ascending."""
    if values.size > 4 * EXTREMES:
        values = np.partition(values, EXTREMES - 1)[:EXTREMES]
    return np.sort(values)[:EXTREMES]


class NumericCounts(FeatureCounts):
    """Fine-slot counts and sums of a numeric feature, plus moments and extremes."""

    def __init__(
        self,
        reference: FeatureProfile,
        spec: FeatureSpec | None = None,
        layout: Layout | None = None,
        source: Source = "feature",
    ) -> None:
        bins = derived("numeric", reference, NumericBins)
        self.derived = bins
        self.has_fine = bins.has_fine
        self.edges = bins.edges
        self._locator = bins.locator
        self._padded = bins.locator.padded
        self.coarse_of_slot = bins.coarse_of_slot
        self.coarse_size = bins.coarse_size
        slots = bins.slots
        super().__init__(reference, layout, slots, source)
        self._floats_at = self._layout.take("floats", 2 + slots)
        self._extremes_at = self._layout.take("extremes", EXTREMES)
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
        self._ready()

    def bind(self, state: State) -> None:
        super().bind(state)
        floats = self._view.floats
        self._moments: Floats = floats[:2]
        self._sums: Floats = floats[2:]

    def _crc(self, crc: int) -> int:
        crc = zlib.crc32(self.reference.name.encode(), crc)
        return zlib.crc32(self.edges.tobytes(), crc)

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
        value = float(self._view.mins[0])
        return value if np.isfinite(value) else None

    @property
    def max(self) -> float | None:
        value = float(self._view.maxs[0])
        return value if np.isfinite(value) else None

    def add(self, batch: Batch) -> None:
        """Count a batch's values of this feature (or prediction, or score)."""
        if self.source == "score":
            self.add_values(batch.score, None)
            return
        column = self.column(batch)
        if column is None:
            self.add_missing(len(batch))
        else:
            self.add_values(column.numbers, column.kinds)

    def add_values(self, numbers: Floats, kinds: npt.NDArray[np.int8] | None) -> Mask | None:
        """Count a column's values; returns the mask of usable values (None: all usable)."""
        x, valid, missing, violations = numeric_values(numbers, kinds)
        quality = self._quality
        quality[COUNT] += numbers.size
        if valid is not None:
            quality[MISSING] += missing
            quality[VIOLATIONS] += violations
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
            quality[OUT_OF_RANGE] += counts[0] + counts[-1]
        else:
            quality[OUT_OF_RANGE] += np.count_nonzero((x < self.low) | (x > self.high))
        d = x - self.shift
        self._moments[0] += d.sum()
        self._moments[1] += d @ d
        lows, highs = self._view.mins, self._view.maxs
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
        return self._view.mins

    @property
    def highs(self) -> Floats:
        """The window's EXTREMES largest values, descending (-inf where fewer)."""
        return self._view.maxs

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

    def profile(self) -> FeatureProfile:
        return self._profile(
            bin_edges=list(self.reference.bin_edges),
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

    def __init__(
        self,
        reference: FeatureProfile,
        layout: Layout | None = None,
        mode: Mode = "categorical",
        source: Source = "feature",
    ) -> None:
        super().__init__(reference, layout, len(reference.categories) + 1, source)
        self.mode: Mode = mode
        self.other = len(reference.categories)
        bins = derived("categorical", reference, CategoricalBins)
        self.derived = bins
        self.index = bins.index
        self.known = bins.known
        self._ready()

    def _crc(self, crc: int) -> int:
        crc = zlib.crc32(self.reference.name.encode(), crc)
        return zlib.crc32("\x00".join(self.reference.categories).encode(), crc)

    @property
    def bins(self) -> Ints:
        return self._counts

    def add(self, batch: Batch) -> None:
        """Count a batch's values of this feature (or prediction)."""
        column = self.column(batch)
        if column is None:
            self.add_missing(len(batch))
        else:
            self.add_column(column)

    def add_column(self, column: Column) -> None:
        """Count a column's values."""
        labels, counts, missing, violations = tally(column, self.mode)
        quality = self._quality
        quality[COUNT] += len(column)
        quality[MISSING] += missing
        quality[VIOLATIONS] += violations
        if not labels:
            return
        index, other, known = self.index, self.other, self.known
        slots = np.fromiter((index.get(v, other) for v in labels), np.intp, len(labels))
        np.add.at(self._counts, slots, counts)
        unseen = np.fromiter((v not in known for v in labels), np.bool_, len(labels))
        quality[UNSEEN] += counts[unseen].sum()

    def profile(self) -> FeatureProfile:
        return self._profile(
            categories=list(self.reference.categories),
            category_counts=self._counts.tolist(),
        )
