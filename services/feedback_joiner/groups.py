"""Which segment groups predictions fall in (``vigil.wire.segments``), one event at a time or a
column batch at a time, and which predicted labels are the positive class, by the batch."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.performance.labels import is_positive
from vigil.performance.segments import crossed
from vigil.wire.columns import BOOLEAN, LONG, MISSING, STRING, Batch, Column
from vigil.wire.records import ModelVersion, PredictionEvent
from vigil.wire.segments import (
    CROSS,
    SegmentSpec,
    effective_segments,
    group_of,
    value_groups,
)

__all__ = ["batchable", "column_groups", "declares_segments", "event_groups", "positive_flags"]

Codes = npt.NDArray[np.int64]


Specs = tuple[tuple[SegmentSpec, ...], tuple[str, ...]]
_SPECS: dict[tuple[object, ...], Specs] = {}  # by what declares them
# By the version object itself (the catalog hands out the same one until the version changes):
# its id -> the object (kept, so that the id is not reused), its declaring fields, its specs.
_BY_VERSION: dict[int, tuple[ModelVersion, tuple[object, ...], Specs]] = {}


def _segments(version: ModelVersion) -> Specs:
    fields = (version.segments, version.sensitive_attributes, version.segment_cross)
    known = _BY_VERSION.get(id(version))
    if known is not None and known[0] is version and all(map(operator.is_, known[1], fields)):
        return known[2]
    declared = tuple((s.name, tuple(s.bins or ()), s.tag, s.sensitive) for s in version.segments)
    key = (declared, tuple(version.sensitive_attributes), tuple(version.segment_cross))
    found = _SPECS.get(key)
    if found is None:
        if len(_SPECS) >= 4096:
            _SPECS.clear()
        segments = tuple(effective_segments(version.segments, version.sensitive_attributes))
        found = _SPECS[key] = (segments, tuple(version.segment_cross))
    if len(_BY_VERSION) >= 4096:
        _BY_VERSION.clear()
    _BY_VERSION[id(version)] = (version, fields, found)
    return found


def declares_segments(version: ModelVersion) -> bool:
    """Whether the version's events fall in segment groups (its outcomes are counted in
    them too)."""
    return bool(_segments(version)[0])


def batchable(version: ModelVersion) -> bool:
    """Whether a batch of the version's events has every value its segments need (a tag is
    not in the batch's columns)."""
    return not any(s.tag for s in _segments(version)[0])


def event_groups(version: ModelVersion, event: PredictionEvent) -> list[tuple[str, str]]:
    """The (segment, group) pairs of one event: one per segment, and the crossed pair."""
    segments, cross = _segments(version)
    return value_groups(segments, cross, event.features, event.tags)


def _values(column: Column) -> tuple[list[Any], Codes]:
    """The distinct values of a column (None for a missing one) and each row's index in them."""
    numbers = np.where(np.isnan(column.numbers), 0.0, column.numbers)
    rows = np.stack([column.kinds.astype(np.float64), numbers, column.codes.astype(np.float64)])
    distinct, inverse = np.unique(rows, axis=1, return_inverse=True)
    values = [
        _value(int(kind), number, int(code), column.vocab)
        for kind, number, code in distinct.T.tolist()
    ]
    return values, inverse.reshape(-1).astype(np.int64)


def _value(kind: int, number: float, code: int, vocab: Sequence[str]) -> Any:
    if kind == MISSING:
        return None
    if kind == STRING:
        return vocab[code]
    if kind == BOOLEAN:
        return bool(number)
    if kind == LONG:
        return int(number)
    return number


def _named(groups: Sequence[str], codes: Codes) -> tuple[list[str], Codes]:
    """Group names without repeats, and each row's index in them."""
    names = sorted(set(groups))
    index = np.array([names.index(g) for g in groups], dtype=np.int64)
    return names, index[codes]


def column_groups(version: ModelVersion, batch: Batch) -> dict[str, tuple[list[str], Codes]]:
    """Per segment (and the crossed pair): the group names and each row's index in them."""
    segments, cross = _segments(version)
    found: dict[str, tuple[list[str], Codes]] = {}
    for s in segments:
        column = batch.features.get(s.name)
        if column is None:
            found[s.name] = (["_missing"], np.zeros(len(batch), dtype=np.int64))
            continue
        values, codes = _values(column)
        found[s.name] = _named([group_of(s, v) for v in values], codes)
    if cross:
        (first, a), (second, b) = found[cross[0]], found[cross[1]]
        pairs = a * len(second) + b
        labels = [CROSS.join((x, y)) for x in first for y in second]
        used, codes = np.unique(pairs, return_inverse=True)
        found[crossed(cross)] = ([labels[u] for u in used.tolist()], codes.reshape(-1))
    return found


def positive_flags(column: Column, positive_label: str | None) -> npt.NDArray[np.bool_]:
    """Whether each predicted label of a column is the positive class (``is_positive``),
    judged once per distinct value."""
    values, codes = _values(column)
    flags = np.array([is_positive(v, positive_label) for v in values], dtype=np.bool_)
    return flags[codes]
