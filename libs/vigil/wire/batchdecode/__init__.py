"""Kafka message values -> columnar batches of prediction events, a whole batch at a time
(see ``reader.BatchReader`` for how)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from vigil.wire.batchdecode.reader import BatchReader
from vigil.wire.batchdecode.results import Decoded
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

__all__ = ["Decoded", "decode_predictions"]


@cache
def _default_codec() -> Codec[PredictionEvent]:
    return Codec(PredictionEvent)


def decode_predictions(
    values: Sequence[bytes], codec: Codec[PredictionEvent] | None = None
) -> Decoded:
    """Columns of the PredictionEvents in ``values`` (Kafka message values), by model version.

    Never raises for bad input: each message is either a row of exactly one batch or a failure.
    """
    if not len(values):
        return Decoded([], [])
    return BatchReader(values, codec or _default_codec()).run()
