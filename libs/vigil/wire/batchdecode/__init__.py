"""Kafka message values -> columnar batches of prediction events, a whole batch at a time
(see ``reader.BatchReader`` for how).

Memory is bounded by configuration, not by what producers send: every distinct feature name is
a column as long as the batch, so at most ``max_features`` names outside ``known_features`` get
one (by default as many as fit ``COLUMN_BUDGET`` cells, never fewer than ``MIN_FEATURES``).
A batch with more is read again keeping the names the most messages carry
(``names.most_used_names``); a message carrying any other name is a failure with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from functools import cache

from vigil.wire.batchdecode.names import most_used_names
from vigil.wire.batchdecode.reader import BatchReader
from vigil.wire.batchdecode.results import Decoded
from vigil.wire.batchdecode.store import NameLimit, TooManyNames
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

__all__ = ["COLUMN_BUDGET", "MIN_FEATURES", "Decoded", "decode_predictions", "feature_cap"]

# Cells (a message's value of one feature, 13 bytes each) of the columns of names outside
# ``known_features``: 2**24 cells are about 210 MB, 838 names at 20,000 messages a batch.
COLUMN_BUDGET = 2**24
MIN_FEATURES = 256


@cache
def _default_codec() -> Codec[PredictionEvent]:
    return Codec(PredictionEvent)


def feature_cap(n: int) -> int:
    """The default most distinct feature names outside the known ones in a batch of ``n``."""
    return max(MIN_FEATURES, COLUMN_BUDGET // max(n, 1))


def decode_predictions(
    values: Sequence[bytes],
    codec: Codec[PredictionEvent] | None = None,
    *,
    known_features: Set[str] = frozenset(),
    max_features: int | None = None,
) -> Decoded:
    """Columns of the PredictionEvents in ``values`` (Kafka message values), by model version.

    Never raises for bad input: each message is either a row of exactly one batch or a failure.
    ``known_features`` (the model specs' feature names) always get a column; at most
    ``max_features`` other names do (default ``feature_cap(len(values))``), and messages with
    any further name are failures.
    """
    if not len(values):
        return Decoded([], [])
    codec = codec or _default_codec()
    cap = feature_cap(len(values)) if max_features is None else max_features
    try:
        return BatchReader(values, codec, NameLimit(cap, known_features)).run()
    except TooManyNames:
        pass  # read again below, once the traceback has let go of the first reader's columns
    keep = most_used_names(values, codec, known_features, cap)
    return BatchReader(values, codec, NameLimit(cap, keep, only_known=True)).run()
