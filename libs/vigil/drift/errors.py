"""The multivariate check's accumulator: count, sum and sum of squares of a window's PCA
reconstruction errors."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vigil.drift.accumulators import Accumulator, Layout, State
from vigil.drift.bins import ResidualBasis, derived
from vigil.drift.multivariate import reconstruction_errors, standardise
from vigil.drift.values import Floats, Ints, Mask, numeric_values
from vigil.wire.columns import Batch
from vigil.wire.records import MultivariateReference

__all__ = ["ErrorCounts", "ErrorSummary"]


@dataclass(frozen=True)
class ErrorSummary:
    """What the multivariate check is judged on: how many errors, their mean and std."""

    count: int
    mean: float | None
    std: float | None


class ErrorCounts(Accumulator):
    """Count, sum and sum of squares of the window's PCA reconstruction errors."""

    def __init__(self, reference: MultivariateReference, layout: Layout | None = None) -> None:
        super().__init__(layout)
        self.reference = reference
        bases = derived("multivariate", reference, ResidualBasis)
        self.center = bases.center
        self.inverse_scale = bases.inverse_scale
        self.basis = bases.basis
        self._ints_at = self._layout.take("ints", 1)
        self._floats_at = self._layout.take("floats", 2)
        self._ready()

    def bind(self, state: State) -> None:
        super().bind(state)
        self._count: Ints = self._view.ints
        self._moments: Floats = self._view.floats

    def _crc(self, crc: int) -> int:
        crc = zlib.crc32(self.center.tobytes(), crc)
        return zlib.crc32(self.basis.tobytes(), crc)

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

    def add(self, batch: Batch) -> None:
        """Add the errors of a batch's events."""
        masks: dict[str, Mask | None] = {}
        for name in self.reference.features:
            column = batch.features.get(name)
            if column is not None:
                masks[name] = numeric_values(column.numbers, column.kinds)[1]
        self.add_errors(batch, masks)

    def add_errors(self, batch: Batch, masks: Mapping[str, Mask | None]) -> None:
        """Add the errors of a batch's events, given the usable-value mask of each feature
        (unusable values are imputed with the center)."""
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

    def profile(self) -> ErrorSummary:
        return ErrorSummary(self.count, self.mean, self.std)
