"""Word-level primitives of the batch decoder: array types, constants, zig-zag, factorising
and the cursor over the messages being read."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "GIVE_UP_STEPS",
    "HIGH_BITS",
    "JUNK_SLOT",
    "MASKS",
    "MAX_MICROS",
    "MIN_MICROS",
    "ONE",
    "PAD",
    "PREDICTION_SLOT",
    "WIDE",
    "Cursor",
    "Entry",
    "Ints",
    "Mask",
    "Slots",
    "Words",
    "both_ok",
    "factorize",
    "zigzag",
]

Ints: TypeAlias = npt.NDArray[np.int64]
Words: TypeAlias = npt.NDArray[np.uint64]
Mask: TypeAlias = npt.NDArray[np.bool_]
Slots: TypeAlias = "int | Ints"
# Reads one map entry at each position: (position after it, ok or None when all are ok).
Entry: TypeAlias = Callable[[Ints, Ints, Ints], "tuple[Ints, Mask | None]"]

WIDE = 64  # strings up to this many bytes are read as words; longer ones one by one in Python
PAD = bytes(256)  # after the last message, so that reads a little past a message stay in memory
MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
HIGH_BITS = np.uint64(0x8080808080808080)
ONE = np.uint64(1)
# Timestamps datetime can hold (fastavro turns the micros into one; others fail there).
MIN_MICROS = -62_135_596_800_000_000
MAX_MICROS = 253_402_300_799_999_999
PREDICTION_SLOT, JUNK_SLOT = 0, 1  # store rows; feature keys follow
GIVE_UP_STEPS = 256  # map entries after which a handful of stragglers go one by one


def zigzag(z: Words) -> Ints:
    return (z >> ONE).astype(np.int64) ^ -(z & ONE).astype(np.int64)


def both_ok(a: Mask | None, b: Mask | None) -> Mask | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def factorize(keys: Ints) -> tuple[Ints, Ints]:
    """(code of each key, distinct keys in order of first appearance)."""
    first = keys[0]
    if not (keys != first).any():
        return np.zeros(keys.size, np.int64), keys[:1]
    encoded = pa.array(keys).dictionary_encode()
    codes = encoded.indices.to_numpy().astype(np.int64)
    return codes, np.asarray(encoded.dictionary.to_numpy(), dtype=np.int64)


class Cursor:
    """Messages being read: their indices, read positions and body ends."""

    __slots__ = ("end", "idx", "pos")

    def __init__(self, idx: Ints, pos: Ints, end: Ints) -> None:
        self.idx, self.pos, self.end = idx, pos, end

    def keep(self, keep: Mask) -> None:
        self.idx, self.pos, self.end = self.idx[keep], self.pos[keep], self.end[keep]
