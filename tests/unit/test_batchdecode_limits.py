"""Batch decoding memory is bounded by configuration, whatever feature names producers send.

Each distinct feature name is a column as long as the batch: a producer sending names that are
all distinct used to allocate (names x batch size) cells, 1.2 GB for 2,000 messages.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np

from vigil.wire.batchdecode import (
    COLUMN_BUDGET,
    MIN_FEATURES,
    Decoded,
    decode_predictions,
    feature_cap,
)
from vigil.wire.codec import Codec
from vigil.wire.columns import Column, column_from_values
from vigil.wire.records import PredictionEvent

CODEC = Codec(PredictionEvent)
SPEC = [f"spec_{k}" for k in range(5)]


def _message(i: int, features: dict[str, Any], model: str = "credit-risk") -> bytes:
    return CODEC.encode_dict(
        {
            "prediction_id": f"p-{i}",
            "model_id": model,
            "model_version": "1",
            "timestamp": 1_790_000_000_000_000 + i,
            "features": features,
            "prediction": i % 2 == 0,
            "score": 0.5,
            "tags": {},
        }
    )


def _hostile(n: int, names_each: int, offset: int = 0) -> list[bytes]:
    """``n`` messages whose feature names are all distinct."""
    return [
        _message(offset + i, {f"h{offset + i}_{k}": float(k) for k in range(names_each)}, "spam")
        for i in range(n)
    ]


def _normal(n: int, offset: int = 0) -> list[bytes]:
    values: list[Any] = [1.5, 7, "a", True, None]
    return [
        _message(offset + i, {name: values[k] for k, name in enumerate(SPEC)}) for i in range(n)
    ]


def _peak(values: list[bytes], **kwargs: Any) -> tuple[int, Decoded]:
    tracemalloc.start()
    try:
        decoded = decode_predictions(values, CODEC, **kwargs)
        return tracemalloc.get_traced_memory()[1], decoded
    finally:
        tracemalloc.stop()


def _cells(column: Column) -> list[tuple[int, int, str | None]]:
    bits = column.numbers.view(np.int64).tolist()
    return [
        (k, b, column.vocab[c] if c >= 0 else None)
        for k, b, c in zip(column.kinds.tolist(), bits, column.codes.tolist(), strict=True)
    ]


def _check_decoded_or_refused(values: list[bytes], decoded: Decoded) -> set[int]:
    """Every message is a correct row or a failure naming the cap; returns the failed ones."""
    failed = {i for i, _ in decoded.failures}
    for _, reason in decoded.failures:
        assert "distinct feature names outside the models' specs" in reason
    rows = [int(r) for b in decoded.batches for r in b.rows]
    assert sorted(rows + list(failed)) == list(range(len(values)))
    for batch in decoded.batches:
        events = [CODEC.decode(values[int(r)]) for r in batch.rows]
        assert {e.model_id for e in events} == {batch.model_id}
        assert set(batch.features) == {name for e in events for name in e.features}
        for name, column in batch.features.items():
            expected = column_from_values([e.features.get(name) for e in events])
            assert _cells(column) == _cells(expected)
    return failed


def test_memory_does_not_grow_with_the_number_of_distinct_names() -> None:
    n, cap = 1_000, 100
    small, _ = _peak(_hostile(n, 5), max_features=cap)  # 5,000 distinct names
    large, decoded = _peak(_hostile(n, 40), max_features=cap)  # 40,000 distinct names
    columns = 13 * n * (cap + 2)  # kinds (1 B), numbers (8 B) and codes (4 B) per cell
    assert large < 3 * columns + 8 * 2**20
    assert large < 2 * small
    _check_decoded_or_refused(_hostile(n, 40), decoded)


def test_the_default_cap_keeps_columns_within_the_budget() -> None:
    for n in (1, 100, 2_000, 20_000, 100_000):
        assert feature_cap(n) * n <= max(COLUMN_BUDGET, MIN_FEATURES * n)
        assert feature_cap(n) >= MIN_FEATURES


def test_messages_beyond_the_cap_are_failures_with_a_reason() -> None:
    values = _normal(50) + _hostile(200, 3, offset=50)
    decoded = decode_predictions(values, CODEC, max_features=20)
    failed = _check_decoded_or_refused(values, decoded)
    assert failed and failed <= set(range(50, 250))  # the 5 normal names came first
    assert sum(len(b) for b in decoded.batches if b.model_id == "credit-risk") == 50


def test_known_names_are_never_crowded_out() -> None:
    """Spam first, the spec's names only later: the spec's messages still decode."""
    values = _hostile(300, 4) + _normal(100, offset=300) + _hostile(100, 4, offset=400)
    decoded = decode_predictions(values, CODEC, max_features=16, known_features=set(SPEC))
    failed = _check_decoded_or_refused(values, decoded)
    assert not failed & set(range(300, 400))
    assert len(failed) >= 300
    (normal,) = [b for b in decoded.batches if b.model_id == "credit-risk"]
    assert normal.rows.tolist() == list(range(300, 400))


def test_a_key_beyond_the_cap_in_the_per_message_path_stores_nothing() -> None:
    """A JSON message takes the per-message path: refused whole, not half-stored."""
    json_message = b'{"prediction_id": "j", "model_id": "m", "model_version": "1", '
    json_message += b'"timestamp": "2026-01-01T00:00:00Z", "prediction": 1, '
    json_message += b'"features": {"spec_0": 1.0, "late": 2.0}}'
    values = [*_normal(3), json_message]
    decoded = decode_predictions(values, CODEC, max_features=5)
    assert [i for i, _ in decoded.failures] == [3]
    assert _check_decoded_or_refused(values, decoded) == {3}
    (batch,) = decoded.batches
    assert set(batch.features) == set(SPEC)
