"""Avro primitives read at many positions at once: varints, strings, optional doubles and
unions, with bounds checks; messages that fail one are set aside."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vigil.wire.batchdecode.state import ReaderState
from vigil.wire.batchdecode.words import ONE, Cursor, Ints, Mask, Slots, Words, both_ok, zigzag
from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, MISSING, STRING

__all__ = ["Fields"]


class Fields(ReaderState):
    """Reads fields at every cursor position in lock-step."""

    def _drop(self, cur: Cursor, ok: Mask | None) -> Mask | None:
        """Send the messages that are not ``ok`` one by one; the kept ones' mask, if any left."""
        if ok is None or ok.all():
            return None
        self.bad[cur.idx[~ok]] = True
        cur.keep(ok)
        return ok

    def _advance(self, cur: Cursor, after: Ints, ok: Mask | None) -> None:
        ok = both_ok(ok, after <= cur.end)
        if (keep := self._drop(cur, ok)) is not None:
            after = after[keep]
        cur.pos = after

    def _varint(self, pos: Ints) -> tuple[Words, Ints, Mask | None]:
        """Unsigned varints at ``pos``: (value, position after, ok).

        Not ok: more than 10 bytes or more than 64 bits (fastavro reads those in its own way).
        """
        u8 = self.u8
        b = u8[pos]
        value = b.astype(np.uint64)
        more = np.flatnonzero(b & 0x80)
        if not more.size:
            return value, pos + 1, None
        value &= np.uint64(0x7F)
        after = pos + 1
        ok = np.ones(pos.size, dtype=np.bool_)
        for k in range(1, 10):
            bk = u8[pos[more] + k]
            value[more] |= (bk & 0x7F).astype(np.uint64) << np.uint64(7 * k)
            after[more] += 1
            if k == 9:
                ok[more[bk > 1]] = False
            more = more[(bk & 0x80) != 0]
            if not more.size:
                break
        return value, after, ok

    def _string(self, pos: Ints, end: Ints) -> tuple[Ints, Ints, Mask | None]:
        """Strings at ``pos``: (start, length, ok); not ok ones get length 0 at ``end``."""
        b = self.u8[pos]
        if not (b & 0x81).any():  # lengths under 64 in one byte: the usual case
            length = (b >> 1).astype(np.int64)
            start = pos + 1
            ok: Mask | None = None
        else:
            z, start, ok = self._varint(pos)
            length = (z >> ONE).astype(np.int64)
            ok = both_ok(ok, (z & ONE) == 0)
        inside = length <= end - start
        if not inside.all():
            ok = both_ok(ok, inside)
        if ok is not None and not ok.all():
            start = np.where(ok, start, end)
            length = np.where(ok, length, 0)
        return start, length, ok

    def _field_string(self, cur: Cursor) -> tuple[Ints, Ints]:
        start, length, ok = self._string(cur.pos, cur.end)
        if (keep := self._drop(cur, ok)) is not None:
            start, length = start[keep], length[keep]
        cur.pos = start + length
        return start, length

    def _optional_double(self, cur: Cursor, out: npt.NDArray[np.float64] | None) -> None:
        """A ["null", "double"] union, into ``out`` (NaN where null)."""
        u = self.u8[cur.pos]
        ok = (u == 0) | (u == 2)
        if (keep := self._drop(cur, None if ok.all() else ok)) is not None:
            u = u[keep]
        present = u == 2
        if out is not None:
            out[cur.idx] = np.where(present, self.f64[cur.pos + 1], np.nan)
        self._advance(cur, cur.pos + 1 + 8 * present, None)

    def _union(
        self, slot: Slots, idx: Ints, pos: Ints, end: Ints, first: int
    ) -> tuple[Ints, Mask | None]:
        """A value of a union whose branches from ``first`` on are null (0), boolean, long,
        double, string, stored in ``slot``: (position after, ok)."""
        u = self.u8[pos]
        q = pos + 1
        u0 = int(u[0])
        if not u0 & 1 and u0 >> 1 <= STRING - first and not (u != u0).any():
            return self._values(slot, idx, q, end, (u0 >> 1) + first)
        kind = (u >> 1).astype(np.int64) + first
        valid = ((u & 1) == 0) & (kind <= STRING)
        after = q.copy()
        ok: Mask | None = valid
        for k in range(first, STRING + 1):
            sel = np.flatnonzero(valid & (kind == k))
            if sel.size:
                s = slot if isinstance(slot, int) else slot[sel]
                after[sel], sub = self._values(s, idx[sel], q[sel], end[sel], k)
                if sub is not None:
                    ok[sel] &= sub  # type: ignore[index]
        return after, ok

    def _values(
        self, slot: Slots, idx: Ints, q: Ints, end: Ints, kind: int
    ) -> tuple[Ints, Mask | None]:
        """Values of one union branch at ``q``, stored in ``slot``: (position after, ok)."""
        store = self.store
        if isinstance(slot, int):
            store.kinds[slot][idx] = kind
            numbers = store.numbers[slot]
        else:
            store.kinds[slot, idx] = kind
            numbers = store.numbers  # indexed by (slot, idx) below
        where = idx if isinstance(slot, int) else (slot, idx)
        if kind == MISSING:
            return q, None
        if kind == BOOLEAN:
            numbers[where] = self.u8[q] != 0
            return q + 1, None
        if kind == LONG:
            z, after, ok = self._varint(q)
            numbers[where] = zigzag(z)
            return after, ok
        if kind == DOUBLE:
            numbers[where] = self.f64[q]
            return q + 8, None
        start, length, ok = self._string(q, end)
        self.values_read.append((slot, idx, start, length))
        return start + length, ok
