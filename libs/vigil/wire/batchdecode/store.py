"""Where the batch decoder puts what it reads: a column store by slot (the prediction, then
each feature), and the table of the map keys seen so far.

Every slot is a full-length column (13 bytes a message), so the number of slots is limited
(``NameLimit``): past ``cap`` names outside ``known`` the store raises ``TooManyNames``, or, once
the caller has chosen the names to keep (``only_known``), gives the others the junk slot, so that
the messages carrying them are decoded one by one and fail with ``Store.overflow_reason``.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.wire.batchdecode.words import JUNK_SLOT, WIDE, Ints, Words
from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, MISSING, STRING, Column

__all__ = ["KeyTable", "NameLimit", "Store", "TooManyNames"]


class TooManyNames(Exception):
    """More distinct feature names in a batch than its ``NameLimit`` allows."""


@dataclass(frozen=True)
class NameLimit:
    """Which feature names get a column: ``known`` ones, and up to ``cap`` others unless
    ``only_known``."""

    cap: int
    known: Set[str] = frozenset()
    only_known: bool = False

    @property
    def most_slots(self) -> int:
        """Slots the store may ever hold: prediction, junk and the features."""
        return JUNK_SLOT + 1 + len(self.known) + (0 if self.only_known else self.cap)


class Store:
    """Every column of the input, one row per slot: the prediction, a junk row, the features.

    ``kinds`` is -1 where a message has no such key (so that keys that appear with null values
    still count as present); ``codes`` index ``vocabs[slot]``.
    """

    def __init__(self, n: int, limit: NameLimit) -> None:
        self.n = n
        self.limit = limit
        self.unknown = 0  # slots taken by names outside ``limit.known``
        # Only the names to keep are known: room for all of them at once, no copies.
        rows = limit.most_slots if limit.only_known else min(16, limit.most_slots)
        self.kinds = np.full((rows, n), -1, dtype=np.int8)
        self.numbers = np.full((rows, n), np.nan)
        self.codes = np.full((rows, n), -1, dtype=np.int32)
        self.names: list[str] = ["<prediction>", "<junk>"]
        self.vocabs: list[dict[str, int]] = [{}, {}]
        self._by_name: dict[str, int] = {}
        self.by_raw: dict[bytes, int] = {}  # raw key bytes -> slot, JUNK_SLOT if not UTF-8

    def slot_for_name(self, name: str) -> int:
        """The slot of feature ``name``; JUNK_SLOT for a name the limit leaves out."""
        slot = self._by_name.get(name)
        if slot is None:
            limit = self.limit
            if name not in limit.known:
                if limit.only_known:
                    return JUNK_SLOT
                if self.unknown >= limit.cap:
                    raise TooManyNames(name)
                self.unknown += 1
            slot = self._by_name[name] = len(self.names)
            self.names.append(name)
            self.vocabs.append({})
            if slot >= self.kinds.shape[0]:
                self._grow()
        return slot

    def _grow(self) -> None:
        """Room for more slots: doubles, but never past the most the cap allows."""
        rows = self.kinds.shape[0]
        grow, n = max(1, min(rows, self.limit.most_slots - rows)), self.n
        self.kinds = np.vstack([self.kinds, np.full((grow, n), -1, np.int8)])
        self.numbers = np.vstack([self.numbers, np.full((grow, n), np.nan)])
        self.codes = np.vstack([self.codes, np.full((grow, n), -1, np.int32)])

    def overflow_reason(self, name: str) -> str:
        """Why a message with feature ``name`` (which got no slot) is not decoded."""
        return (
            f"features: more than {self.limit.cap} distinct feature names outside the models'"
            f" specs in one batch; {name[:64]!r} is one of the least used, not decoded"
        )

    def slot_for_raw(self, raw: bytes) -> int:
        slot = self.by_raw.get(raw)
        if slot is None:
            try:
                slot = self.slot_for_name(raw.decode())
            except UnicodeDecodeError:
                slot = JUNK_SLOT
            self.by_raw[raw] = slot
        return slot

    def put(self, slot: int, row: int, value: Any) -> None:
        """One Python value (as per-message decoding gives it)."""
        if value is None:
            self.kinds[slot, row] = MISSING
        elif isinstance(value, bool):
            self.kinds[slot, row], self.numbers[slot, row] = BOOLEAN, float(value)
        elif isinstance(value, int):
            self.kinds[slot, row], self.numbers[slot, row] = LONG, float(value)
        elif isinstance(value, float):
            self.kinds[slot, row], self.numbers[slot, row] = DOUBLE, value
        else:
            vocab = self.vocabs[slot]
            self.kinds[slot, row] = STRING
            self.codes[slot, row] = vocab.setdefault(str(value), len(vocab))

    def column(self, slot: int, rows: slice | Ints, compact: bool) -> Column:
        """The column of ``slot`` at ``rows``; ``compact``: only the strings used there."""
        kinds = np.maximum(self.kinds[slot, rows], 0)
        codes = self.codes[slot, rows]
        vocab = list(self.vocabs[slot])
        if compact and vocab:
            strings = codes[codes >= 0]
            used = np.bincount(strings, minlength=len(vocab)) > 0
            if not used.all():
                renumber = (np.cumsum(used) - 1).astype(np.int32)
                codes = np.where(codes >= 0, renumber[codes], -1).astype(np.int32)
                vocab = [s for s, u in zip(vocab, used.tolist(), strict=True) if u]
        return Column(kinds, self.numbers[slot, rows], codes, vocab)


class KeyTable:
    """Map keys seen so far in a batch: hashes, lengths, words and slots, found by hash.

    ``buckets`` is a perfect hash of the (few) known hashes: bits ``shift`` on of a hash index
    it, -1 where no known key falls.
    """

    def __init__(self) -> None:
        self.hashes: Words = np.zeros(0, dtype=np.uint64)
        self.lengths: Ints = np.zeros(0, dtype=np.int64)
        self.words: list[Words] = [np.zeros(0, dtype=np.uint64) for _ in range(WIDE // 8)]
        self.slots: Ints = np.zeros(0, dtype=np.int64)
        self.buckets: Ints = np.full(1, -1, dtype=np.int64)
        self.shift = np.uint64(0)

    def learn(self, hashes: Words, lengths: Ints, words: list[Words], slots: Ints) -> None:
        zeros = np.zeros(hashes.size, dtype=np.uint64)
        words = words + [zeros] * (len(self.words) - len(words))
        self.hashes = np.concatenate([self.hashes, hashes])
        self.lengths = np.concatenate([self.lengths, lengths])
        self.words = [np.concatenate(pair) for pair in zip(self.words, words, strict=True)]
        self.slots = np.concatenate([self.slots, slots])
        distinct, first = np.unique(self.hashes, return_index=True)  # collisions: not indexed
        self.buckets, self.shift = np.full(1, -1, dtype=np.int64), np.uint64(0)
        smallest = max(2, (2 * distinct.size - 1).bit_length())
        for bits in range(smallest, smallest + 3):
            for shift in range(0, 65 - bits):
                buckets = (distinct >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
                if np.unique(buckets).size == distinct.size:
                    self.buckets = np.full(1 << bits, -1, dtype=np.int64)
                    self.buckets[buckets.astype(np.int64)] = first
                    self.shift = np.uint64(shift)
                    return
        # No perfect hash found (never with well-mixed hashes): no key is found by hash.

    def find(self, h: Words) -> Ints:
        """Index of each hash in the table (-1: unknown; the caller compares the bytes)."""
        return self.buckets[((h >> self.shift) & np.uint64(self.buckets.size - 1)).astype(np.intp)]
