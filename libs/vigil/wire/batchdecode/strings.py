"""Strings compared and hashed as 8-byte words: only the distinct ones become Python strings;
UTF-8 checks."""

from __future__ import annotations

import numpy as np

from vigil.wire.batchdecode.fields import Fields
from vigil.wire.batchdecode.words import HIGH_BITS, MASKS, WIDE, Ints, Mask, Words, factorize

__all__ = ["Strings"]

_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(31)


class Strings(Fields):
    """Finds the distinct strings among many (start, length) slices of the buffer."""

    def _words(self, raw: bytes) -> list[tuple[int, np.uint64, np.uint64]] | None:
        """``raw`` as (offset, word, mask) to compare strings with; None when too long."""
        if raw in self._word_cache:
            return self._word_cache[raw]
        words: list[tuple[int, np.uint64, np.uint64]] | None = None
        if len(raw) <= WIDE:
            words = []
            for offset in range(0, len(raw), 8):
                chunk = raw[offset : offset + 8]
                mask = np.uint64((1 << (8 * len(chunk))) - 1)
                words.append((offset, np.uint64(int.from_bytes(chunk, "little")), mask))
        self._word_cache[raw] = words
        return words

    def _same_as(self, start: Ints, length: Ints, raw: bytes) -> Mask:
        """Which strings are ``raw``."""
        words = self._words(raw)
        if words is None:
            return np.zeros(start.size, dtype=np.bool_)
        same: Mask = length == len(raw)
        for offset, word, mask in words:
            same &= (self.u64[start + offset] & mask) == word
        return same

    def _distinct(self, start: Ints, length: Ints) -> tuple[Ints, list[bytes]]:
        """Distinct strings: (index into the table of each, the table); one compare usually."""
        s0 = int(start[0])
        raw = self.data[s0 : s0 + int(length[0])]
        same = self._same_as(start, length, raw)
        ids = np.zeros(start.size, dtype=np.int64)
        if same.all():
            return ids, [raw]
        other = np.flatnonzero(~same)
        others, table = self._identify(start[other], length[other], None)
        ids[other] = others + 1
        return ids, [raw, *(t[1] for t in table)]

    def _hash(self, start: Ints, length: Ints, tag: Ints | None) -> tuple[Words, list[Words]]:
        """A 64-bit hash of each (tag, string) up to WIDE bytes, and its words (0 past the end).

        The same bytes hash alike whatever the other strings are.
        """
        h = length.astype(np.uint64) * _MIX1
        if tag is not None:
            h ^= tag.astype(np.uint64) * _MIX2
        words = []
        shortest = int(length.min())
        for offset in range(0, int(length.max()), 8):
            word = self.u64[start + offset]
            if shortest < offset + 8:
                word &= MASKS[np.clip(length - offset, 0, 8)]
            words.append(word)
            mixed = (h ^ word) * _MIX2
            mixed ^= mixed >> _SHIFT
            h = mixed if shortest > offset else np.where(length > offset, mixed, h)
        return h, words

    def _identify(
        self, start: Ints, length: Ints, tag: Ints | None
    ) -> tuple[Ints, list[tuple[int, bytes]]]:
        """Distinct (tag, bytes) among strings: (index into the table of each, the table)."""
        ids = np.zeros(start.size, dtype=np.int64)
        table: list[tuple[int, bytes]] = []
        wide = length > WIDE
        if wide.any():
            table = self._identify_wide(np.flatnonzero(wide), start, length, tag, ids)
        narrow = np.flatnonzero(~wide)
        if narrow.size:
            self._identify_narrow(narrow, start, length, tag, ids, table)
        return ids, table

    def _entry(self, i: int, start: Ints, length: Ints, tag: Ints | None) -> tuple[int, bytes]:
        s, n = int(start[i]), int(length[i])
        return (0 if tag is None else int(tag[i]), self.data[s : s + n])

    def _identify_wide(
        self, wide: Ints, start: Ints, length: Ints, tag: Ints | None, ids: Ints
    ) -> list[tuple[int, bytes]]:
        """Strings longer than WIDE bytes (rare), one by one: ids into ``ids``; the table."""
        seen: dict[tuple[int, bytes], int] = {}
        for i in wide.tolist():
            ids[i] = seen.setdefault(self._entry(i, start, length, tag), len(seen))
        return list(seen)

    def _identify_narrow(
        self,
        narrow: Ints,
        start: Ints,
        length: Ints,
        tag: Ints | None,
        ids: Ints,
        table: list[tuple[int, bytes]],
    ) -> None:
        """Strings of up to WIDE bytes, by hash: ids into ``ids``, new strings onto ``table``."""
        start, length = start[narrow], length[narrow]
        tag = None if tag is None else tag[narrow]
        h, words = self._hash(start, length, tag)
        codes, _ = factorize(h.view(np.int64))
        rep = np.empty(int(codes.max()) + 1, dtype=np.int64)
        rep[codes] = np.arange(codes.size)
        mine = rep[codes]  # the first string with the same hash
        same = length == length[mine]
        if tag is not None:
            same &= tag == tag[mine]
        for word in words:
            same &= word == word[mine]
        ids[narrow] = codes + len(table)
        table.extend(self._entry(r, start, length, tag) for r in rep.tolist())
        for i in np.flatnonzero(~same).tolist():  # a hash collision: never seen, but exact
            ids[narrow[i]] = len(table)
            table.append(self._entry(i, start, length, tag))

    def _check_utf8(self) -> None:
        """Marks messages with strings that are not UTF-8 (fastavro rejects them)."""
        if not self.checks:
            return
        idx = np.concatenate([c[0] for c in self.checks])
        start = np.concatenate([c[1] for c in self.checks])
        length = np.concatenate([c[2] for c in self.checks])
        live = np.flatnonzero((length > 0) & ~self.bad[idx])
        idx, start, length = idx[live], start[live], length[live]
        suspect = np.flatnonzero(length > WIDE).tolist()
        for offset in range(0, WIDE, 8):
            sel = np.flatnonzero((length > offset) & (length <= WIDE))
            if not sel.size:
                break
            word = self.u64[start[sel] + offset] & MASKS[np.minimum(length[sel] - offset, 8)]
            suspect += sel[(word & HIGH_BITS) != 0].tolist()
        data = self.data
        for i in suspect:
            s = int(start[i])
            try:
                data[s : s + int(length[i])].decode()
            except UnicodeDecodeError:
                self.bad[idx[i]] = True

    def _finish_strings(self) -> None:
        """UTF-8 checks and the distinct feature / label strings (``self.distinct``)."""
        self._check_utf8()
        if not self.values_read:
            return
        slots = np.concatenate(
            [np.full(r[1].size, r[0]) if isinstance(r[0], int) else r[0] for r in self.values_read]
        ).astype(np.int64)
        idx = np.concatenate([r[1] for r in self.values_read])
        start = np.concatenate([r[2] for r in self.values_read])
        length = np.concatenate([r[3] for r in self.values_read])
        live = np.flatnonzero(~self.bad[idx])
        if not live.size:
            return
        slots, idx, start, length = slots[live], idx[live], start[live], length[live]
        ids, table = self._identify(start, length, slots)
        for d, (_, raw) in enumerate(table):
            try:
                self.distinct.append(raw.decode())
            except UnicodeDecodeError:
                self.distinct.append(None)
                self.bad[idx[ids == d]] = True
        self.string_rows = (slots, idx, ids)
        self.string_table = table
