"""Avro maps read in lock-step, one entry of every message a step; map keys found by comparing
with the first message's key, else by hash among the keys seen before."""

from __future__ import annotations

import numpy as np

from vigil.wire.batchdecode.strings import Strings
from vigil.wire.batchdecode.words import (
    GIVE_UP_STEPS,
    JUNK_SLOT,
    WIDE,
    Cursor,
    Entry,
    Ints,
    Mask,
    Slots,
    both_ok,
    zigzag,
)

__all__ = ["Maps"]


class _Walk(Cursor):
    """Messages in the middle of a map: also the step at which each one's next block starts."""

    __slots__ = ("block_end",)

    def __init__(self, idx: Ints, pos: Ints, end: Ints) -> None:
        super().__init__(idx, pos, end)
        self.block_end = np.zeros(idx.size, dtype=np.int64)

    def keep(self, keep: Mask) -> None:
        super().keep(keep)
        self.block_end = self.block_end[keep]


class Maps(Strings):
    """Reads the features and tags maps."""

    def _map(self, cur: Cursor, entry: Entry, count_entries: bool) -> None:
        """Reads a map at each cursor position in lock-step, one entry of every message a step.

        A block of ``count`` entries starts with the count (negative: its byte size follows);
        a block of 0 entries ends the map.
        """
        walk = _Walk(cur.idx, cur.pos.copy(), cur.end)
        finished = np.empty(self.n, dtype=np.int64)  # position after the map, by message
        step = next_block = 0
        while walk.idx.size:
            if step == next_block:
                self._block_heads(walk, step, count_entries, finished)
                if not walk.idx.size:
                    break
                next_block = int(walk.block_end.min())  # > step: every count left is positive
            if step >= GIVE_UP_STEPS and walk.idx.size <= 8:
                self.bad[walk.idx] = True  # a few huge maps: cheaper one by one
                break
            walk.pos, ok = entry(walk.idx, walk.pos, walk.end)
            step += 1
            if ok is not None and not ok.all():
                self.bad[walk.idx[~ok]] = True
                walk.keep(ok)
                if walk.idx.size:
                    next_block = int(walk.block_end.min())
        cur.keep(~self.bad[cur.idx])
        cur.pos = finished[cur.idx]

    def _block_heads(self, walk: _Walk, step: int, count_entries: bool, finished: Ints) -> None:
        """Reads the block headers due at ``step``; maps that end there (or fail) leave ``walk``,
        their end position in ``finished``."""
        head = np.flatnonzero(walk.block_end == step)
        count, after, ok = self._block(walk.pos[head], walk.end[head])
        walk.pos[head], walk.block_end[head] = after, step + count
        if count_entries:
            self.entries[walk.idx[head]] += count
        done = count == 0
        if ok is not None:
            self.bad[walk.idx[head[~ok]]] = True
            done |= ~ok
        if done.any():
            finished[walk.idx[head[done]]] = after[done]
            keep = np.ones(walk.idx.size, dtype=np.bool_)
            keep[head[done]] = False
            walk.keep(keep)

    def _block(self, pos: Ints, end: Ints) -> tuple[Ints, Ints, Mask | None]:
        """Block headers at ``pos``: (entry count, position after, ok)."""
        z, after, ok = self._varint(pos)
        count = zigzag(z)
        if (negative := np.flatnonzero(count < 0)).size:
            _, after[negative], ok_size = self._varint(after[negative])  # byte size: skipped
            count[negative] = -count[negative]
            if ok_size is not None:
                ok = np.ones(pos.size, dtype=np.bool_) if ok is None else ok
                ok[negative] &= ok_size
        # Each entry takes 2 bytes at least; -(-2**63) stays negative.
        sane = (count >= 0) & (count <= end - after)
        if not sane.all():
            ok = both_ok(ok, sane)
        return np.where(sane, count, 0), after, ok

    def _feature_entry(self, idx: Ints, pos: Ints, end: Ints) -> tuple[Ints, Mask | None]:
        start, length, ok = self._string(pos, end)
        slot = self._key_slots(start, length)
        if not isinstance(slot, int):
            junk = slot == JUNK_SLOT
            if junk.any():
                ok = both_ok(ok, ~junk)
        elif slot == JUNK_SLOT:
            ok = np.zeros(idx.size, dtype=np.bool_)
        after, ok_value = self._union(slot, idx, start + length, end, 0)
        ok = both_ok(ok, ok_value)
        inside = after <= end
        if not inside.all():
            ok = both_ok(ok, inside)
        return after, ok

    def _tag_entry(self, idx: Ints, pos: Ints, end: Ints) -> tuple[Ints, Mask | None]:
        key, key_length, ok = self._string(pos, end)
        value, value_length, ok_value = self._string(key + key_length, end)
        self.checks.append((idx, key, key_length))
        self.checks.append((idx, value, value_length))
        return value + value_length, both_ok(ok, ok_value)

    def _key_slots(self, start: Ints, length: Ints) -> Slots:
        """The store slot of each map key (JUNK_SLOT for keys that are not UTF-8)."""
        s0 = int(start[0])
        raw = self.data[s0 : s0 + int(length[0])]
        same = self._same_as(start, length, raw)
        slot = self.store.slot_for_raw(raw)
        if same.all():  # every message has the same key here: the usual case
            return slot
        slots = np.full(start.size, slot, dtype=np.int64)
        other = np.flatnonzero(~same)
        slots[other] = self._known_keys(start[other], length[other])
        return slots

    def _known_keys(self, start: Ints, length: Ints) -> Ints:
        """Slots of keys by their hash in the table of keys seen before (new ones learnt)."""
        keys = self._keys
        if (length > WIDE).any():
            ids, table = self._identify(start, length, None)
            found = [self.store.slot_for_raw(raw) for _, raw in table]
            return np.array(found, dtype=np.int64)[ids]
        h, words = self._hash(start, length, None)
        if keys.hashes.size:
            at = keys.find(h)
            hit = (at >= 0) & (keys.hashes[at] == h) & (keys.lengths[at] == length)
            for w, word in enumerate(words):
                hit &= keys.words[w][at] == word
            slots = keys.slots[at]
            if hit.all():
                return slots
            miss = np.flatnonzero(~hit)
        else:
            slots = np.full(start.size, JUNK_SLOT, dtype=np.int64)
            miss = np.arange(start.size)
        ids, table = self._identify(start[miss], length[miss], None)
        lookup = np.array([self.store.slot_for_raw(raw) for _, raw in table], dtype=np.int64)
        slots[miss] = lookup[ids]
        rep = np.empty(len(table), dtype=np.int64)
        rep[ids] = miss
        # Keys without a column (not UTF-8, or beyond the cap) fail their messages: not learnt,
        # so that a flood of them cannot slow every later lookup.
        useful = np.flatnonzero(lookup != JUNK_SLOT)
        if useful.size:
            rep = rep[useful]
            keys.learn(h[rep], length[rep], [word[rep] for word in words], lookup[useful])
        return slots
