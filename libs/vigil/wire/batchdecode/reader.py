"""The batch reader: checks each message's header, then reads every field of the messages in
lock-step; the ones it cannot read go one by one through the codec."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vigil.wire.batchdecode.results import Decoded, Results
from vigil.wire.batchdecode.words import (
    MAX_MICROS,
    MIN_MICROS,
    PREDICTION_SLOT,
    Cursor,
    Ints,
    both_ok,
    zigzag,
)
from vigil.wire.codec import SINGLE_OBJECT_MARKER
from vigil.wire.records import PredictionEvent

__all__ = ["SUPPORTED_SCHEMA", "BatchReader"]

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


class BatchReader(Results):
    """Reads the Avro single-object messages of a batch together with numpy.

    fastavro reads one PredictionEvent with 25 features in ~28 µs; the drift detector must
    profile 100k events/s in one process. The payloads are joined into one byte buffer and every
    message's read position advances field by field in lock-step, map entries included (a
    message with fewer entries drops out of the step). Strings are compared and hashed as 8-byte
    words, and only the distinct ones become Python strings: a map key is first compared with
    the key the first message has at that entry (one producer writes its keys in one order),
    else looked up by hash among the keys seen before. Every read is bounds-checked against its
    own message.

    Anything the lock-step reader does not handle -- JSON, Confluent framing, older writer
    schemas, duplicate map keys, varints longer than 10 bytes, a failed bounds or UTF-8 check --
    is decoded one message at a time by ``Codec.decode``, which also names the reason for
    messages that are not valid events. Both paths give the same columns.
    """

    def run(self) -> Decoded:
        fast = self._single_object()
        if fast.size:
            cur = Cursor(fast, self.starts[fast] + 10, self.ends[fast])
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

    def _read_records(self, cur: Cursor) -> None:
        steps: list[Callable[[Cursor], None]] = [
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

    def _read_ids(self, cur: Cursor) -> None:
        for field in ("prediction_id", "model_id", "model_version"):
            start, length = self._field_string(cur)
            read = (cur.idx, start, length)
            if field == "prediction_id":
                self.checks.append(read)
            elif field == "model_id":
                self.model_ids = read
            else:
                self.versions = read

    def _read_end(self, cur: Cursor) -> None:
        self._drop(cur, cur.pos == cur.end)  # no trailing bytes

    def _read_timestamp(self, cur: Cursor) -> None:
        z, after, ok = self._varint(cur.pos)
        ts = zigzag(z)
        ok = both_ok(ok, (ts >= MIN_MICROS) & (ts <= MAX_MICROS) & (after <= cur.end))
        if (keep := self._drop(cur, ok)) is not None:
            ts, after = ts[keep], after[keep]
        self.timestamps[cur.idx] = ts
        cur.pos = after
