"""Columnar batches of prediction events: what the drift detector profiles, one array per field.

The drift detector never builds a Python object per event on its hot path: a batch of Kafka
messages is decoded straight into these arrays (``vigil.wire.batchdecode``), and profiles count them
with numpy. ``batch_from_rows`` builds the same shape from plain dicts (references, slow path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BOOLEAN",
    "DOUBLE",
    "LONG",
    "MISSING",
    "STRING",
    "Batch",
    "Column",
    "batch_from_rows",
    "column_from_values",
    "concat_batches",
]

# Kind of each value, as the Avro union branch it was written with (null or absent: MISSING).
MISSING, BOOLEAN, LONG, DOUBLE, STRING = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Column:
    """One field's values over a batch.

    ``numbers`` holds booleans as 0/1 and longs and doubles as floats, NaN where the value is
    missing or a string; ``codes`` index ``vocab`` where the value is a string, else -1.
    """

    kinds: npt.NDArray[np.int8]
    numbers: npt.NDArray[np.float64]
    codes: npt.NDArray[np.int32]
    vocab: Sequence[str]

    def __len__(self) -> int:
        return int(self.kinds.size)

    def take(self, index: npt.NDArray[np.intp]) -> Column:
        """The rows at ``index`` (same vocabulary)."""
        return Column(self.kinds[index], self.numbers[index], self.codes[index], self.vocab)


@dataclass(frozen=True)
class Batch:
    """Many prediction events of one model version, column by column.

    ``rows`` are the events' positions in the decoded input (e.g. to find their partitions).
    """

    model_id: str
    model_version: str
    rows: npt.NDArray[np.intp]
    timestamps: npt.NDArray[np.int64]  # event time, microseconds since the epoch
    features: Mapping[str, Column]
    prediction: Column
    score: npt.NDArray[np.float64]  # NaN where null

    def __len__(self) -> int:
        return int(self.timestamps.size)

    def take(self, index: npt.NDArray[np.intp]) -> Batch:
        """The events at ``index``."""
        return Batch(
            self.model_id,
            self.model_version,
            self.rows[index],
            self.timestamps[index],
            {name: column.take(index) for name, column in self.features.items()},
            self.prediction.take(index),
            self.score[index],
        )


def column_from_values(values: Sequence[Any]) -> Column:
    """A column from Python values (None, bool, int, float or str)."""
    n = len(values)
    kinds = np.zeros(n, dtype=np.int8)
    numbers = np.full(n, np.nan)
    codes = np.full(n, -1, dtype=np.int32)
    vocab: dict[str, int] = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool):
            kinds[i], numbers[i] = BOOLEAN, float(v)
        elif isinstance(v, int):
            kinds[i], numbers[i] = LONG, float(v)
        elif isinstance(v, float):
            kinds[i], numbers[i] = DOUBLE, v
        elif isinstance(v, str):
            kinds[i], codes[i] = STRING, vocab.setdefault(v, len(vocab))
    return Column(kinds, numbers, codes, list(vocab))


def batch_from_rows(
    model_id: str,
    model_version: str,
    features: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    timestamps: Sequence[int] | None = None,
    predictions: Sequence[Any] | None = None,
    scores: Sequence[float | None] | None = None,
) -> Batch:
    """A batch from feature dicts (only the ``names`` features are kept)."""
    n = len(features)
    return Batch(
        model_id,
        model_version,
        np.arange(n, dtype=np.intp),
        np.asarray(timestamps if timestamps is not None else np.zeros(n), dtype=np.int64),
        {name: column_from_values([row.get(name) for row in features]) for name in names},
        column_from_values(list(predictions) if predictions is not None else [None] * n),
        np.asarray(
            [np.nan if s is None else s for s in scores]
            if scores is not None
            else np.full(n, np.nan),
            dtype=np.float64,
        ),
    )


def _concat_columns(columns: Sequence[Column]) -> Column:
    vocab: dict[str, int] = {}
    codes = []
    for column in columns:
        remap = np.asarray([vocab.setdefault(v, len(vocab)) for v in column.vocab], dtype=np.int32)
        codes.append(
            np.where(column.codes >= 0, remap[np.maximum(column.codes, 0)], -1)
            if remap.size
            else column.codes
        )
    return Column(
        np.concatenate([c.kinds for c in columns]),
        np.concatenate([c.numbers for c in columns]),
        np.concatenate(codes).astype(np.int32),
        list(vocab),
    )


def _absent(n: int) -> Column:
    return Column(
        np.zeros(n, dtype=np.int8), np.full(n, np.nan), np.full(n, -1, dtype=np.int32), []
    )


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """One batch of all the events of ``batches`` (same model version), in order.

    A feature missing from some batches is MISSING for their events; ``rows`` are renumbered.
    """
    names = list(dict.fromkeys(name for b in batches for name in b.features))
    total = sum(len(b) for b in batches)
    return Batch(
        batches[0].model_id,
        batches[0].model_version,
        np.arange(total, dtype=np.intp),
        np.concatenate([b.timestamps for b in batches]),
        {
            name: _concat_columns(
                [b.features[name] if name in b.features else _absent(len(b)) for b in batches]
            )
            for name in names
        },
        _concat_columns([b.prediction for b in batches]),
        np.concatenate([b.score for b in batches]),
    )
