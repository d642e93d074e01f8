"""The accumulator contract: every window summary adds batches, merges, saves and restores its
state, and profiles itself; its numbers live in slices of four flat arrays (a ``State``).

The per-feature accumulators are in ``vigil.drift.counts``; ``vigil.drift.window`` holds the
window profile, which is itself an accumulator over all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Literal, Self

import numpy as np

from vigil.drift.reference import EXTREMES
from vigil.drift.values import Floats, Ints
from vigil.wire.columns import Batch, Column
from vigil.wire.records import FeatureProfile

__all__ = [
    "COUNT",
    "MISSING",
    "OUT_OF_RANGE",
    "QUALITY",
    "UNSEEN",
    "VIOLATIONS",
    "Accumulator",
    "FeatureCounts",
    "Layout",
    "Source",
    "State",
]

# Where a feature accumulator reads its values in a batch: a feature column (by its reference's
# name), the model's prediction, or its score.
Source = Literal["feature", "prediction", "score"]


class Layout:
    """Hands out slices of the flat state arrays while accumulators are set up."""

    def __init__(self) -> None:
        self.ints = 0
        self.floats = 0
        self.extremes = 0

    def take(self, kind: Literal["ints", "floats", "extremes"], size: int) -> slice:
        start: int = getattr(self, kind)
        setattr(self, kind, start + size)
        return slice(start, start + size)


class State:
    """Integer counts, float sums, and blocks of EXTREMES smallest (``mins``, ascending) and
    largest (``maxs``, descending) values: all an accumulator's numbers."""

    __slots__ = ("floats", "ints", "maxs", "mins")

    def __init__(self, ints: Ints, floats: Floats, mins: Floats, maxs: Floats) -> None:
        self.ints = ints
        self.floats = floats
        self.mins = mins
        self.maxs = maxs

    @classmethod
    def empty(cls, layout: Layout) -> State:
        """Zero counts and sums, no extremes yet (+-inf)."""
        return cls(
            np.zeros(layout.ints, dtype="<i8"),
            np.zeros(layout.floats, dtype="<f8"),
            np.full(layout.extremes, np.inf, dtype="<f8"),
            np.full(layout.extremes, -np.inf, dtype="<f8"),
        )

    @property
    def sizes(self) -> tuple[int, int, int]:
        return self.ints.size, self.floats.size, self.mins.size

    def arrays(self) -> tuple[Ints, Floats, Floats, Floats]:
        return self.ints, self.floats, self.mins, self.maxs

    def view(self, ints: slice, floats: slice, extremes: slice) -> State:
        """A State whose arrays are views of these slices of this one's."""
        return State(self.ints[ints], self.floats[floats], self.mins[extremes], self.maxs[extremes])

    def copy(self) -> State:
        return State(self.ints.copy(), self.floats.copy(), self.mins.copy(), self.maxs.copy())

    def load(self, other: State) -> None:
        """Overwrite these numbers with ``other``'s; ValueError if the sizes differ."""
        if other.sizes != self.sizes or other.maxs.size != self.maxs.size:
            raise ValueError(f"state of sizes {other.sizes} where {self.sizes} was expected")
        for mine, theirs in zip(self.arrays(), other.arrays(), strict=True):
            mine[:] = theirs

    def add(self, other: State) -> None:
        """Add ``other``'s numbers: counts and sums add up, extremes keep the most extreme."""
        self.ints += other.ints
        self.floats += other.floats
        if self.mins.size:
            both = np.concatenate(
                [self.mins.reshape(-1, EXTREMES), other.mins.reshape(-1, EXTREMES)], 1
            )
            self.mins[:] = np.sort(both, axis=1)[:, :EXTREMES].ravel()
            both = np.concatenate(
                [self.maxs.reshape(-1, EXTREMES), other.maxs.reshape(-1, EXTREMES)], 1
            )
            self.maxs[:] = -np.sort(-both, axis=1)[:, :EXTREMES].ravel()


class Accumulator(ABC):
    """A mergeable, fixed-size summary of events, river-style: the same few verbs for all.

    ``add`` counts a batch, ``merge`` adds another accumulator's events (same kind, same
    reference bins), ``to_state`` / ``load_state`` save and restore the numbers, ``profile``
    gives what the statistics are computed from. An accumulator built without a ``Layout``
    owns its numbers; one built with a layout keeps them in a shared State given to ``bind``.
    """

    _ints_at = slice(0, 0)
    _floats_at = slice(0, 0)
    _extremes_at = slice(0, 0)

    def __init__(self, layout: Layout | None) -> None:
        self._owns_state = layout is None
        self._layout = Layout() if layout is None else layout

    def _ready(self) -> None:
        """End of set-up: an accumulator without a shared layout gets its own State."""
        if self._owns_state:
            self.bind(State.empty(self._layout))

    def bind(self, state: State) -> None:
        """Keep the numbers in ``state`` (this accumulator's slices of it)."""
        self._view = state.view(self._ints_at, self._floats_at, self._extremes_at)

    @abstractmethod
    def add(self, batch: Batch) -> None:
        """Count a batch of events."""

    @abstractmethod
    def profile(self) -> object:
        """The statistics inputs (comparable with ==)."""

    def _crc(self, crc: int) -> int:
        """``crc`` updated with the bins this accumulator counts in."""
        return crc

    @cached_property
    def fingerprint(self) -> int:
        """CRC-32 of the bins counted in: accumulators merge only with equal ones."""
        return self._crc(0)

    def merge(self, other: Self) -> None:
        """Add ``other``'s events (same kind, same reference bins); ValueError otherwise."""
        if (
            type(other) is not type(self)
            or other._view.sizes != self._view.sizes
            or other.fingerprint != self.fingerprint
        ):
            raise ValueError(
                f"{type(self).__name__}s of different references (or specs) do not mix"
            )
        self._view.add(other._view)

    def to_state(self) -> State:
        """A copy of the numbers."""
        return self._view.copy()

    def load_state(self, state: State) -> None:
        """Replace the numbers with a :meth:`to_state` of an accumulator of the same bins."""
        self._view.load(state)


# Quality counters at the start of every feature's integer slice.
COUNT, MISSING, VIOLATIONS, OUT_OF_RANGE, UNSEEN = range(5)
QUALITY = 5


class FeatureCounts(Accumulator):
    """A window's counts of one feature (or output) in its reference profile's bins."""

    reference: FeatureProfile

    def __init__(
        self, reference: FeatureProfile, layout: Layout | None, bins: int, source: Source
    ) -> None:
        super().__init__(layout)
        self.reference = reference
        self.source: Source = source
        self._ints_at = self._layout.take("ints", QUALITY + bins)

    def bind(self, state: State) -> None:
        super().bind(state)
        ints = self._view.ints
        self._quality: Ints = ints[:QUALITY]
        self._counts: Ints = ints[QUALITY:]

    def column(self, batch: Batch) -> Column | None:
        """This feature's (or the prediction's) column of a batch; None if absent."""
        if self.source == "prediction":
            return batch.prediction
        return batch.features.get(self.reference.name)

    @property
    def count(self) -> int:
        """Events seen, missing values included."""
        return int(self._quality[COUNT])

    @property
    def missing(self) -> int:
        return int(self._quality[MISSING])

    @property
    def type_violations(self) -> int:
        return int(self._quality[VIOLATIONS])

    @property
    def out_of_range(self) -> int:
        return int(self._quality[OUT_OF_RANGE])

    @property
    def unseen(self) -> int:
        return int(self._quality[UNSEEN])

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
        self._quality[COUNT] += n
        self._quality[MISSING] += n

    @abstractmethod
    def profile(self) -> FeatureProfile:
        """The window's counts as a FeatureProfile (same bins as the reference)."""

    def _profile(self, **bins: object) -> FeatureProfile:
        """A FeatureProfile of this feature's quality counts and the given bins."""
        ref = self.reference
        return FeatureProfile.model_validate(
            {
                "name": ref.name,
                "type": ref.type,
                "count": self.count,
                "missing": self.missing,
                "type_violations": self.type_violations,
                **bins,
            }
        )
