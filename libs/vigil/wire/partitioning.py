"""Kafka's default partitioner (murmur2 of the key), vectorised over many keys with numpy.

A producer that builds record batches itself must pick partitions exactly as Kafka's clients
do, so that predictions and feedback with the same prediction_id land in the same partition.
Per key in pure Python murmur2 costs ~8 us; over a batch of keys this is ~0.3 us.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["partitions_for_keys"]

_SEED = np.uint32(0x9747B28C)
_M = np.uint32(0x5BD1E995)


def _murmur2(keys: Sequence[bytes], length: int) -> npt.NDArray[np.uint32]:
    """murmur2 of keys that all have ``length`` bytes."""
    data = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    h = np.full(len(keys), _SEED ^ np.uint32(length), dtype=np.uint32)
    words = length // 4
    if words:
        blocks = np.ascontiguousarray(data[:, : words * 4]).view("<u4")
        for i in range(words):
            k = blocks[:, i] * _M
            k ^= k >> np.uint32(24)
            k *= _M
            h *= _M
            h ^= k
    tail = data[:, words * 4 :].astype(np.uint32)
    extra = length % 4
    if extra >= 3:
        h ^= tail[:, 2] << np.uint32(16)
    if extra >= 2:
        h ^= tail[:, 1] << np.uint32(8)
    if extra >= 1:
        h ^= tail[:, 0]
        h *= _M
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h


def partitions_for_keys(keys: Sequence[bytes], partitions: int) -> list[int]:
    """The partition Kafka's default partitioner gives each key, for a topic of that size."""
    lengths = set(map(len, keys))
    if len(lengths) == 1:  # the usual case, generated ids: nothing to group
        with np.errstate(over="ignore"):
            hashes = _murmur2(keys, lengths.pop())
        chosen: list[int] = ((hashes & np.uint32(0x7FFFFFFF)) % partitions).tolist()
        return chosen
    result = np.empty(len(keys), dtype=np.int64)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    with np.errstate(over="ignore"):
        for length, indexes in by_length.items():
            hashes = _murmur2([keys[i] for i in indexes], length)
            result[indexes] = (hashes & np.uint32(0x7FFFFFFF)) % partitions
    return result.tolist()
