"""Kafka message values -> columnar batches of prediction events, a whole batch at a time.

fastavro reads one PredictionEvent with 25 features in ~28 µs; the drift detector must profile
100k events/s in one process. This decoder reads the Avro single-object messages of a batch
together with numpy: the payloads are joined into one byte buffer and every message's read
position advances field by field in lock-step, map entries included (a message with fewer
entries drops out of the step). Strings are compared and hashed as 8-byte words, and only the
distinct ones become Python strings: a map key is first compared with the key the first message
has at that entry (one producer writes its keys in one order), else looked up by hash among the
keys seen before. Every read is bounds-checked against its own message.

Anything the lock-step reader does not handle -- JSON, Confluent framing, older writer schemas,
duplicate map keys, varints longer than 10 bytes, a failed bounds or UTF-8 check -- is decoded
one message at a time by ``Codec.decode``, which also names the reason for messages that are not
valid events. Both paths give the same columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from vigil.wire.codec import SINGLE_OBJECT_MARKER, Codec, DecodeError
from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, MISSING, STRING, Batch, Column
from vigil.wire.records import PredictionEvent

__all__ = ["Decoded", "decode_predictions"]

Ints: TypeAlias = npt.NDArray[np.int64]
Words: TypeAlias = npt.NDArray[np.uint64]
Mask: TypeAlias = npt.NDArray[np.bool_]
Slots: TypeAlias = "int | Ints"
# Reads one map entry at each position: (position after it, ok or None when all are ok).
Entry: TypeAlias = Callable[[Ints, Ints, Ints], "tuple[Ints, Mask | None]"]

# The PredictionEvent layout the lock-step reader is written for (Parsing Canonical Form). When
# the schema changes, every message takes the per-message path until this reader follows.
SUPPORTED_SCHEMA = (
    '{"name":"vigil.PredictionEvent","type":"record","fields":['
    '{"name":"prediction_id","type":"string"},'
    '{"name":"model_id","type":"string"},'
    '{"name":"model_version","type":"string"},'
    '{"name":"timestamp","type":"long"},'
    '{"name":"features","type":{"type":"map","values":'
    '["null","boolean","long","double","string"]}},'
    '{"name":"prediction","type":["boolean","long","double","string"]},'
    '{"name":"score","type":["null","double"]},'
    '{"name":"tags","type":{"type":"map","values":"string"}},'
    '{"name":"sample_rate","type":["null","double"]}]}'
)

WIDE = 64  # strings up to this many bytes are read as words; longer ones one by one in Python
_PAD = bytes(256)  # after the last message, so that reads a little past a message stay in memory
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
_HIGH = np.uint64(0x8080808080808080)
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(31)
_ONE = np.uint64(1)
# Timestamps datetime can hold (fastavro turns the micros into one; others fail there).
_MIN_MICROS = -62_135_596_800_000_000
_MAX_MICROS = 253_402_300_799_999_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
PREDICTION_SLOT, JUNK_SLOT = 0, 1  # store rows; feature keys follow
_GIVE_UP_STEPS = 256  # map entries after which a handful of stragglers go one by one


@dataclass
class Decoded:
    """Decoded messages, one batch per model version, and the messages that are not events."""

    batches: list[Batch]  # one per (model_id, model_version), rows = indices into the input
    failures: list[tuple[int, str]]  # (input index, reason) for undecodable messages


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
    return _BatchReader(values, codec or _default_codec()).run()


def _micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MICRO


def _zigzag(z: Words) -> Ints:
    return (z >> _ONE).astype(np.int64) ^ -(z & _ONE).astype(np.int64)


def _and(a: Mask | None, b: Mask | None) -> Mask | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _factorize(keys: Ints) -> tuple[Ints, Ints]:
    """(code of each key, distinct keys in order of first appearance)."""
    first = keys[0]
    if not (keys != first).any():
        return np.zeros(keys.size, np.int64), keys[:1]
    encoded = pa.array(keys).dictionary_encode()
    codes = encoded.indices.to_numpy().astype(np.int64)
    return codes, np.asarray(encoded.dictionary.to_numpy(), dtype=np.int64)


class _Store:
    """Every column of the input, one row per slot: the prediction, a junk row, the features.

    ``kinds`` is -1 where a message has no such key (so that keys that appear with null values
    still count as present); ``codes`` index ``vocabs[slot]``.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.kinds = np.full((16, n), -1, dtype=np.int8)
        self.numbers = np.full((16, n), np.nan)
        self.codes = np.full((16, n), -1, dtype=np.int32)
        self.names: list[str] = ["<prediction>", "<junk>"]
        self.vocabs: list[dict[str, int]] = [{}, {}]
        self._by_name: dict[str, int] = {}
        self.by_raw: dict[bytes, int] = {}  # raw key bytes -> slot, JUNK_SLOT if not UTF-8

    def slot_for_name(self, name: str) -> int:
        slot = self._by_name.get(name)
        if slot is None:
            slot = self._by_name[name] = len(self.names)
            self.names.append(name)
            self.vocabs.append({})
            if slot >= self.kinds.shape[0]:
                grow = self.kinds.shape[0]
                self.kinds = np.vstack([self.kinds, np.full((grow, self.n), -1, np.int8)])
                self.numbers = np.vstack([self.numbers, np.full((grow, self.n), np.nan)])
                self.codes = np.vstack([self.codes, np.full((grow, self.n), -1, np.int32)])
        return slot

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


class _KeyTable:
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


class _Cursor:
    """Messages being read: their indices, read positions and body ends."""

    __slots__ = ("end", "idx", "pos")

    def __init__(self, idx: Ints, pos: Ints, end: Ints) -> None:
        self.idx, self.pos, self.end = idx, pos, end

    def keep(self, keep: Mask) -> None:
        self.idx, self.pos, self.end = self.idx[keep], self.pos[keep], self.end[keep]


class _BatchReader:
    def __init__(self, values: Sequence[bytes], codec: Codec[PredictionEvent]) -> None:
        self.values = values
        self.codec = codec
        n = self.n = len(values)
        data, lengths = self._join(values)
        self.data = data
        size = len(data) - 7
        self.u8 = np.frombuffer(data, dtype=np.uint8)
        self.u64: Words = np.ndarray((size,), dtype="<u8", buffer=data, strides=(1,))
        self.f64: npt.NDArray[np.float64] = np.ndarray(
            (size,), dtype="<f8", buffer=data, strides=(1,)
        )
        self.ends = np.cumsum(lengths)
        self.starts = self.ends - lengths
        self.bad = np.zeros(n, dtype=np.bool_)  # not (fully) read by the lock-step reader
        self.store = _Store(n)
        self.timestamps = np.zeros(n, dtype=np.int64)
        self.scores = np.full(n, np.nan)
        self.groups = np.full(n, -1, dtype=np.int64)  # index into group_keys; -1: failed
        self.group_keys: list[tuple[str, str]] = []
        self._group_of: dict[tuple[str, str], int] = {}
        self.entries = np.zeros(n, dtype=np.int64)  # feature map entries per message
        # Strings to look at once the structure is read: (message, start, length[, slot]).
        self.checks: list[tuple[Ints, Ints, Ints]] = []  # only checked to be UTF-8
        self.values_read: list[tuple[Slots, Ints, Ints, Ints]] = []  # feature / label strings
        self.model_ids: tuple[Ints, Ints, Ints] | None = None
        self.versions: tuple[Ints, Ints, Ints] | None = None
        self._keys = _KeyTable()
        self._word_cache: dict[bytes, list[tuple[int, np.uint64, np.uint64]] | None] = {}
        self.distinct: list[str | None] = []  # feature / label strings, by id
        self.string_table: list[tuple[int, bytes]] = []  # (slot, bytes) by id
        self.string_rows: tuple[Ints, Ints, Ints] | None = None  # slot, message, id

    @staticmethod
    def _join(values: Sequence[bytes]) -> tuple[bytes, Ints]:
        try:
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
            data = b"".join([*values, _PAD])
            if len(data) == int(lengths.sum()) + len(_PAD):
                return data, lengths
        except TypeError:
            pass
        # None (a tombstone) or other odd values: they fail the header check and go one by one.
        clean = [v if isinstance(v, bytes) else b"" for v in values]
        lengths = np.fromiter(map(len, clean), dtype=np.int64, count=len(clean))
        return b"".join([*clean, _PAD]), lengths

    # -- the whole batch -------------------------------------------------------------------

    def run(self) -> Decoded:
        fast = self._single_object()
        if fast.size:
            cur = _Cursor(fast, self.starts[fast] + 10, self.ends[fast])
            self._read_records(cur)
            self._finish_strings()
            self._check_duplicates(fast)
            self._assign_groups(fast)
            self._assign_codes()
            self._forget(np.flatnonzero(self.bad))
        slow = np.ones(self.n, dtype=np.bool_)
        slow[fast] = False
        slow |= self.bad
        failures = [f for i in np.flatnonzero(slow).tolist() if (f := self._one(i)) is not None]
        return Decoded(self._batches(), failures)

    def _single_object(self) -> Ints:
        """Messages in single-object encoding with the current writer schema."""
        schema = self.codec.schema
        if self.codec.model is not PredictionEvent or schema.canonical != SUPPORTED_SCHEMA:
            return np.zeros(0, dtype=np.int64)
        starts = self.starts
        marker = int.from_bytes(SINGLE_OBJECT_MARKER, "little")
        fingerprint = np.uint64(int.from_bytes(schema.fingerprint, "little"))
        head = self.u8[starts].astype(np.int64) | (self.u8[starts + 1].astype(np.int64) << 8)
        ok = (self.ends - starts >= 10) & (head == marker) & (self.u64[starts + 2] == fingerprint)
        return np.flatnonzero(ok).astype(np.int64)

    def _read_records(self, cur: _Cursor) -> None:
        steps: list[Callable[[_Cursor], None]] = [
            self._read_ids,
            self._read_timestamp,
            lambda c: self._map(c, self._feature_entry, True),
            # prediction: ["boolean", "long", "double", "string"]
            lambda c: self._advance(c, *self._union(PREDICTION_SLOT, c.idx, c.pos, c.end, 1)),
            lambda c: self._optional_double(c, self.scores),
            lambda c: self._map(c, self._tag_entry, False),
            lambda c: self._optional_double(c, None),  # sample_rate
            self._read_end,
        ]
        for step in steps:
            if not cur.idx.size:
                return
            step(cur)

    def _read_ids(self, cur: _Cursor) -> None:
        for field in ("prediction_id", "model_id", "model_version"):
            start, length = self._field_string(cur)
            read = (cur.idx, start, length)
            if field == "prediction_id":
                self.checks.append(read)
            elif field == "model_id":
                self.model_ids = read
            else:
                self.versions = read

    def _read_end(self, cur: _Cursor) -> None:
        self._drop(cur, cur.pos == cur.end)  # no trailing bytes

    def _read_timestamp(self, cur: _Cursor) -> None:
        z, after, ok = self._varint(cur.pos)
        ts = _zigzag(z)
        ok = _and(ok, (ts >= _MIN_MICROS) & (ts <= _MAX_MICROS) & (after <= cur.end))
        if (keep := self._drop(cur, ok)) is not None:
            ts, after = ts[keep], after[keep]
        self.timestamps[cur.idx] = ts
        cur.pos = after

    # -- primitives over arrays of positions -----------------------------------------------

    def _drop(self, cur: _Cursor, ok: Mask | None) -> Mask | None:
        """Send the messages that are not ``ok`` one by one; the kept ones' mask, if any left."""
        if ok is None or ok.all():
            return None
        self.bad[cur.idx[~ok]] = True
        cur.keep(ok)
        return ok

    def _advance(self, cur: _Cursor, after: Ints, ok: Mask | None) -> None:
        ok = _and(ok, after <= cur.end)
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
            length = (z >> _ONE).astype(np.int64)
            ok = _and(ok, (z & _ONE) == 0)
        inside = length <= end - start
        if not inside.all():
            ok = _and(ok, inside)
        if ok is not None and not ok.all():
            start = np.where(ok, start, end)
            length = np.where(ok, length, 0)
        return start, length, ok

    def _field_string(self, cur: _Cursor) -> tuple[Ints, Ints]:
        start, length, ok = self._string(cur.pos, cur.end)
        if (keep := self._drop(cur, ok)) is not None:
            start, length = start[keep], length[keep]
        cur.pos = start + length
        return start, length

    def _optional_double(self, cur: _Cursor, out: npt.NDArray[np.float64] | None) -> None:
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
            numbers[where] = _zigzag(z)
            return after, ok
        if kind == DOUBLE:
            numbers[where] = self.f64[q]
            return q + 8, None
        start, length, ok = self._string(q, end)
        self.values_read.append((slot, idx, start, length))
        return start + length, ok

    # -- maps ------------------------------------------------------------------------------

    def _map(self, cur: _Cursor, entry: Entry, count_entries: bool) -> None:
        """Reads a map at each cursor position in lock-step, one entry of every message a step.

        A block of ``count`` entries starts with the count (negative: its byte size follows);
        a block of 0 entries ends the map.
        """
        idx, pos, end = cur.idx, cur.pos.copy(), cur.end
        block_end = np.zeros(idx.size, dtype=np.int64)  # the step at which a block is read
        finished = np.empty(self.n, dtype=np.int64)  # position after the map, by message
        step = next_block = 0
        while idx.size:
            if step == next_block:
                head = np.flatnonzero(block_end == step)
                count, after, ok = self._block(pos[head], end[head])
                pos[head], block_end[head] = after, step + count
                if count_entries:
                    self.entries[idx[head]] += count
                done = count == 0
                if ok is not None:
                    self.bad[idx[head[~ok]]] = True
                    done |= ~ok
                if done.any():
                    finished[idx[head[done]]] = after[done]
                    keep = np.ones(idx.size, dtype=np.bool_)
                    keep[head[done]] = False
                    idx, pos, end = idx[keep], pos[keep], end[keep]
                    block_end = block_end[keep]
                    if not idx.size:
                        break
                next_block = int(block_end.min())  # > step: every count left is positive
            if step >= _GIVE_UP_STEPS and idx.size <= 8:
                self.bad[idx] = True  # a few huge maps: cheaper one by one
                break
            pos, ok = entry(idx, pos, end)
            step += 1
            if ok is not None and not ok.all():
                self.bad[idx[~ok]] = True
                idx, pos, end, block_end = idx[ok], pos[ok], end[ok], block_end[ok]
                if idx.size:
                    next_block = int(block_end.min())
        cur.keep(~self.bad[cur.idx])
        cur.pos = finished[cur.idx]

    def _block(self, pos: Ints, end: Ints) -> tuple[Ints, Ints, Mask | None]:
        """Block headers at ``pos``: (entry count, position after, ok)."""
        z, after, ok = self._varint(pos)
        count = _zigzag(z)
        if (negative := np.flatnonzero(count < 0)).size:
            _, after[negative], ok_size = self._varint(after[negative])  # byte size: skipped
            count[negative] = -count[negative]
            if ok_size is not None:
                ok = np.ones(pos.size, dtype=np.bool_) if ok is None else ok
                ok[negative] &= ok_size
        # Each entry takes 2 bytes at least; -(-2**63) stays negative.
        sane = (count >= 0) & (count <= end - after)
        if not sane.all():
            ok = _and(ok, sane)
        return np.where(sane, count, 0), after, ok

    def _feature_entry(self, idx: Ints, pos: Ints, end: Ints) -> tuple[Ints, Mask | None]:
        start, length, ok = self._string(pos, end)
        slot = self._key_slots(start, length)
        if not isinstance(slot, int):
            junk = slot == JUNK_SLOT
            if junk.any():
                ok = _and(ok, ~junk)
        elif slot == JUNK_SLOT:
            ok = np.zeros(idx.size, dtype=np.bool_)
        after, ok_value = self._union(slot, idx, start + length, end, 0)
        ok = _and(ok, ok_value)
        inside = after <= end
        if not inside.all():
            ok = _and(ok, inside)
        return after, ok

    def _tag_entry(self, idx: Ints, pos: Ints, end: Ints) -> tuple[Ints, Mask | None]:
        key, key_length, ok = self._string(pos, end)
        value, value_length, ok_value = self._string(key + key_length, end)
        self.checks.append((idx, key, key_length))
        self.checks.append((idx, value, value_length))
        return value + value_length, _and(ok, ok_value)

    # -- strings ---------------------------------------------------------------------------

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
        keys.learn(h[rep], length[rep], [word[rep] for word in words], lookup)
        return slots

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
                word &= _MASKS[np.clip(length - offset, 0, 8)]
            words.append(word)
            mixed = (h ^ word) * _MIX2
            mixed ^= mixed >> _SHIFT
            h = mixed if shortest > offset else np.where(length > offset, mixed, h)
        return h, words

    def _identify(
        self, start: Ints, length: Ints, tag: Ints | None
    ) -> tuple[Ints, list[tuple[int, bytes]]]:
        """Distinct (tag, bytes) among strings: (index into the table of each, the table)."""
        m = start.size
        ids = np.zeros(m, dtype=np.int64)
        table: list[tuple[int, bytes]] = []
        data = self.data
        wide = length > WIDE
        if wide.any():
            seen: dict[tuple[int, bytes], int] = {}
            for i in np.flatnonzero(wide).tolist():
                s, n = int(start[i]), int(length[i])
                key = (0 if tag is None else int(tag[i]), data[s : s + n])
                ids[i] = seen.setdefault(key, len(seen))
            table = list(seen)
        narrow = np.flatnonzero(~wide)
        if not narrow.size:
            return ids, table
        start, length = start[narrow], length[narrow]
        tag = None if tag is None else tag[narrow]
        h, words = self._hash(start, length, tag)
        codes, _ = _factorize(h.view(np.int64))
        rep = np.empty(int(codes.max()) + 1, dtype=np.int64)
        rep[codes] = np.arange(codes.size)
        mine = rep[codes]
        same = length == length[mine]
        if tag is not None:
            same &= tag == tag[mine]
        for word in words:
            same &= word == word[mine]
        base = len(table)
        for r in rep.tolist():
            s, n = int(start[r]), int(length[r])
            table.append((0 if tag is None else int(tag[r]), data[s : s + n]))
        ids[narrow] = codes + base
        for i in np.flatnonzero(~same).tolist():  # a hash collision: never seen, but exact
            s, n = int(start[i]), int(length[i])
            ids[narrow[i]] = len(table)
            table.append((0 if tag is None else int(tag[i]), data[s : s + n]))
        return ids, table

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
            word = self.u64[start[sel] + offset] & _MASKS[np.minimum(length[sel] - offset, 8)]
            suspect += sel[(word & _HIGH) != 0].tolist()
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

    def _check_duplicates(self, fast: Ints) -> None:
        """A key twice in one map: the last value wins; the per-message path knows how."""
        kinds = self.store.kinds[JUNK_SLOT + 1 : len(self.store.names)]
        present = (kinds[:, fast] >= 0).sum(axis=0)
        self.bad[fast[present != self.entries[fast]]] = True

    def _assign_groups(self, fast: Ints) -> None:
        """Group (model version) of every message read in lock-step."""
        if self.model_ids is None or self.versions is None:
            return
        codes = []
        for field in (self.model_ids, self.versions):
            idx, start, length = field
            live = ~self.bad[idx]
            idx, start, length = idx[live], start[live], length[live]
            if not idx.size:
                return
            ids, table = self._distinct(start, length)
            names: list[str] = []
            for d, raw in enumerate(table):
                try:
                    names.append(raw.decode())
                except UnicodeDecodeError:
                    names.append("")
                    self.bad[idx[ids == d]] = True
            column = np.full(self.n, -1, dtype=np.int64)
            column[idx] = ids
            codes.append((column, names))
        (model_codes, models), (version_codes, versions) = codes
        read = fast[~self.bad[fast]]
        if not read.size:
            return
        pairs = model_codes[read] * (len(versions) + 1) + version_codes[read]
        pair_codes, distinct = _factorize(pairs)
        group = np.array(
            [
                self._group(models[p // (len(versions) + 1)], versions[p % (len(versions) + 1)])
                for p in distinct.tolist()
            ],
            dtype=np.int64,
        )
        self.groups[read] = group[pair_codes]

    def _group(self, model_id: str, model_version: str) -> int:
        key = (model_id, model_version)
        group = self._group_of.get(key)
        if group is None:
            group = self._group_of[key] = len(self.group_keys)
            self.group_keys.append(key)
        return group

    def _assign_codes(self) -> None:
        """Vocabulary codes of the strings of messages that were read in lock-step."""
        if self.string_rows is None:
            return
        slots, idx, ids = self.string_rows
        live = ~self.bad[idx]
        slots, idx, ids = slots[live], idx[live], ids[live]
        if not ids.size:
            return
        used = np.zeros(len(self.distinct), dtype=np.bool_)
        used[ids] = True
        code = np.full(len(self.distinct), -1, dtype=np.int32)
        vocabs = self.store.vocabs
        for d in np.flatnonzero(used).tolist():
            vocab = vocabs[self.string_table[d][0]]
            text = self.distinct[d]
            assert text is not None
            code[d] = vocab.setdefault(text, len(vocab))
        self.store.codes[slots, idx] = code[ids]

    def _forget(self, rows: Ints) -> None:
        """Clears what the lock-step reader wrote for messages it gave up on."""
        if rows.size:
            store = self.store
            store.kinds[:, rows] = -1
            store.numbers[:, rows] = np.nan
            store.codes[:, rows] = -1
            self.groups[rows] = -1

    # -- one message at a time -------------------------------------------------------------

    def _one(self, i: int) -> tuple[int, str] | None:
        """Decodes message ``i`` with the codec: a failure, or None once its row is stored."""
        try:
            event = self.codec.decode(self.values[i])
        except DecodeError as exc:
            return (i, exc.reason)
        except Exception as exc:  # never raise for bad input
            return (i, f"undecodable: {type(exc).__name__}: {exc}")
        store = self.store
        self.groups[i] = self._group(event.model_id, event.model_version)
        self.timestamps[i] = _micros(event.timestamp)
        self.scores[i] = np.nan if event.score is None else event.score
        store.put(PREDICTION_SLOT, i, event.prediction)
        for name, value in event.features.items():
            store.put(store.slot_for_name(name), i, value)
        return None

    # -- batches ---------------------------------------------------------------------------

    def _batches(self) -> list[Batch]:
        groups = self.groups
        count = len(self.group_keys)
        if not count:
            return []
        store = self.store
        features = np.arange(JUNK_SLOT + 1, len(store.names))
        if count == 1 and not (groups < 0).any():
            parts: list[Ints | slice] = [slice(None)]
        else:
            order = np.argsort(groups, kind="stable")
            sizes = np.bincount(groups[groups >= 0], minlength=count)
            bounds = np.cumsum(sizes)
            skip = int((groups < 0).sum())
            parts = [
                order[skip + b - s : skip + b]
                for s, b in zip(sizes.tolist(), bounds.tolist(), strict=True)
            ]
        compact = len(parts) > 1
        batches = []
        for g, rows in enumerate(parts):
            model_id, model_version = self.group_keys[g]
            present = features[(store.kinds[features][:, rows] >= 0).any(axis=1)]
            index = np.arange(self.n) if isinstance(rows, slice) else rows
            batches.append(
                Batch(
                    model_id,
                    model_version,
                    index.astype(np.intp),
                    self.timestamps[rows],
                    {store.names[s]: store.column(s, rows, compact) for s in present.tolist()},
                    store.column(PREDICTION_SLOT, rows, compact),
                    self.scores[rows],
                )
            )
        first = [int(b.rows[0]) for b in batches]
        return [b for _, b in sorted(zip(first, batches, strict=True), key=lambda p: p[0])]
