"""Window profiles: a window's events counted in a reference profile's bins, feature by feature,
mergeable across workers and serialised as a ``vigil.WindowProfileState`` Avro record.

A window profile counts columnar batches (``vigil.wire.columns.Batch``) with a handful of numpy
calls per feature: one branch-free search of the fine edges and two ``bincount`` per numeric
feature, one ``bincount`` per categorical one, one small matrix product for the multivariate
check. Its state lives in four flat arrays (integer counts, float sums, minima, maxima), which
makes merging and serialising cheap, and memory O(features x bins).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from vigil.drift.accumulators import Accumulator, FeatureCounts, State
from vigil.drift.counts import CategoricalCounts, NumericCounts
from vigil.drift.errors import ErrorCounts, ErrorSummary
from vigil.drift.values import Mask, Mode
from vigil.wire.codec import Codec
from vigil.wire.columns import Batch, batch_from_rows
from vigil.wire.drift_state import WindowProfileState
from vigil.wire.records import FeatureProfile, FeatureSpec, ReferenceProfile, ReferenceSource

__all__ = ["STATE_FORMAT", "CorruptProfile", "WindowProfile"]

STATE_FORMAT = 1  # WindowProfileState.format this code writes and reads
_COMPRESSION = "zlib"  # level 1: a quarter of the size, at about 1 ms per 20-feature profile


class CorruptProfile(ValueError):
    """Bytes that are no window profile at all (as opposed to a profile of other bins)."""


@cache
def _codec() -> Codec[WindowProfileState]:
    return Codec(WindowProfileState)


class WindowProfile(Accumulator):
    """Counts of a window's events in a reference profile's bins, feature by feature.

    ``features`` maps each reference feature to its counts; ``prediction`` and ``score`` count
    the model's outputs when the reference profiled them; ``multivariate`` the PCA
    reconstruction errors when the reference has a PCA. Windows of the same reference (and
    spec) merge, and serialise with :meth:`to_bytes`.
    """

    def __init__(self, reference: ReferenceProfile, spec: Sequence[FeatureSpec]) -> None:
        super().__init__(None)
        specs = {s.name: s for s in spec}
        self.reference = reference
        self.source: ReferenceSource = reference.source
        layout = self._layout
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
                self.prediction = NumericCounts(reference.prediction, None, layout, "prediction")
            else:
                self.prediction = CategoricalCounts(
                    reference.prediction, layout, "label", "prediction"
                )
        self.score = (
            NumericCounts(reference.score, None, layout, "score") if reference.score else None
        )
        mv = reference.multivariate
        self.multivariate = ErrorCounts(mv, layout) if mv is not None else None
        self._ints_at = slice(0, layout.ints)
        self._floats_at = slice(0, layout.floats)
        self._extremes_at = slice(0, layout.extremes)
        self._numeric = [
            (name, c) for name, c in self.features.items() if isinstance(c, NumericCounts)
        ]
        self._categorical = [
            (name, c) for name, c in self.features.items() if isinstance(c, CategoricalCounts)
        ]
        self._ready()

    def bind(self, state: State) -> None:
        super().bind(state)
        self._state = state
        for counts in self._accumulators():
            counts.bind(state)

    def _accumulators(self) -> list[FeatureCounts | ErrorCounts]:
        found: list[FeatureCounts | ErrorCounts] = list(self.features.values())
        found += [c for c in (self.prediction, self.score, self.multivariate) if c is not None]
        return found

    def _crc(self, crc: int) -> int:
        for counts in self._accumulators():
            crc = counts._crc(crc)
        return crc

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
                masks[name] = numeric.add_values(column.numbers, column.kinds)
        for name, categorical in self._categorical:
            column = batch.features.get(name)
            if column is None:
                categorical.add_missing(n)
            else:
                categorical.add_column(column)
        if self.prediction is not None:
            self.prediction.add(batch)
        if self.score is not None:
            self.score.add(batch)
        if self.multivariate is not None:
            self.multivariate.add_errors(batch, masks)

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

    def profile(self) -> list[FeatureProfile | ErrorSummary]:
        """Every feature's, output's and the multivariate check's statistics inputs."""
        return [counts.profile() for counts in self._accumulators()]

    def to_bytes(self) -> bytes:
        """The counts as a ``vigil.WindowProfileState`` in Avro single-object encoding."""
        s = self._state
        ints, floats, mins, maxs = (zlib.compress(a.tobytes(), 1) for a in s.arrays())
        state = WindowProfileState(
            format=STATE_FORMAT,
            fingerprint=self.fingerprint,
            reference_version=self.reference.version,
            event_count=self.event_count,
            ints_size=s.ints.size,
            floats_size=s.floats.size,
            extremes_size=s.mins.size,
            compression=_COMPRESSION,
            ints=ints,
            floats=floats,
            mins=mins,
            maxs=maxs,
        )
        return _codec().encode(state)

    @classmethod
    def from_bytes(
        cls, data: bytes, reference: ReferenceProfile, spec: Sequence[FeatureSpec]
    ) -> WindowProfile:
        """A profile from :meth:`to_bytes` output; CorruptProfile if malformed, ValueError if
        of other bins."""
        try:
            state = _codec().decode(data)
        except ValueError as e:
            raise CorruptProfile(f"corrupt window profile: {e}") from e
        if state.format != STATE_FORMAT or state.compression not in ("zlib", "none"):
            raise CorruptProfile(
                f"unknown window profile format {state.format} ({state.compression!r})"
            )
        profile = cls(reference, spec)
        sizes = (state.ints_size, state.floats_size, state.extremes_size)
        if sizes != profile._state.sizes or state.fingerprint != profile.fingerprint:
            raise ValueError("window profiles of different references (or specs) do not mix")
        arrays = (state.ints, state.floats, state.mins, state.maxs)
        for target, packed in zip(profile._state.arrays(), arrays, strict=True):
            target[:] = _unpack(packed, state.compression, target)
        return profile


def _unpack(packed: bytes, compression: str, like: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A little-endian array of ``like``'s size and type from its (compressed) bytes."""
    if compression == "zlib":
        try:
            packed = zlib.decompress(packed)
        except zlib.error as e:
            raise CorruptProfile(f"corrupt window profile: {e}") from e
    if len(packed) != like.nbytes:
        raise CorruptProfile(
            f"corrupt window profile: {len(packed)} bytes where {like.nbytes} were expected"
        )
    return np.frombuffer(packed, dtype=like.dtype)
