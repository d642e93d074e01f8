"""The joiner's records as bytes: the codecs, a new entry written from a template, the first
fields of an event read without decoding it, and an ``Outcome`` spliced from the events as
they were consumed (the index's and the join's hot paths, without pydantic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vigil.wire.base import as_utc
from vigil.wire.codec import Codec
from vigil.wire.fastencode import _long
from vigil.wire.joins import JoinEntry
from vigil.wire.records import FeedbackEvent, Outcome, PredictionEvent

__all__ = [
    "ENTRIES",
    "FEEDBACK",
    "OUTCOMES",
    "PREDICTIONS",
    "Produced",
    "avro_bytes",
    "entry_prefix",
    "is_current_prediction",
    "model_of",
    "outcome_tail",
    "outcome_value",
    "prediction_id",
    "prediction_of",
]

ENTRIES = Codec(JoinEntry)
PREDICTIONS = Codec(PredictionEvent)
FEEDBACK = Codec(FeedbackEvent)
OUTCOMES = Codec(Outcome)


@dataclass(frozen=True)
class Produced:
    """A record this stage made (an ``Outcome``), as the dead-letter topic takes it: the
    partition is its prediction's, the offset -1 (it was never consumed)."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    offset: int = -1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEADER = PREDICTIONS.header  # a prediction written with this tree's schema
_ENTRY_HEADER = ENTRIES.header
_FEEDBACK_HEADER = FEEDBACK.header


def _varint(value: bytes, pos: int) -> tuple[int, int]:
    """An Avro long (zig-zag varint) at ``pos``, and the position after it."""
    shift = n = 0
    while True:
        b = value[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _strings(value: bytes, count: int) -> list[str]:
    """The first ``count`` string fields of a record written with this tree's schema."""
    found: list[str] = []
    pos = 10
    for _ in range(count):
        length, pos = _varint(value, pos)
        found.append(value[pos : pos + length].decode())
        pos += length
    return found


def is_current_prediction(value: bytes | None) -> bool:
    """Whether a prediction was written with this tree's schema (its fields can be read in
    place)."""
    return value is not None and value[:10] == _HEADER


def prediction_id(value: bytes) -> str:
    length = value[10]
    if length < 0x80 and not length & 1:  # the usual: an id under 64 bytes
        return value[11 : 11 + (length >> 1)].decode()
    return _strings(value, 1)[0]


def entry_prefix(now: datetime) -> bytes:
    """A new entry's encoding up to its prediction: no prediction, label, flags or orphan
    mark, first seen ``now`` (the fields of ``JoinEntry`` in order)."""
    micros = (as_utc(now) - _EPOCH) // timedelta(microseconds=1)
    return _ENTRY_HEADER + b"\x00\x00\x00\x00\x00" + _zigzag(micros) + b"\x00"


def avro_bytes(value: bytes) -> bytes:
    """``prediction_event``: the union's bytes branch, then length and value."""
    return b"".join((b"\x02", _long(len(value)), value))


def prediction_of(entry: JoinEntry) -> PredictionEvent | None:
    if entry.prediction is not None or entry.prediction_event is None:
        return entry.prediction
    return PREDICTIONS.decode(entry.prediction_event)


def model_of(entry: JoinEntry) -> tuple[str, str]:
    """The model id and version of an entry's prediction (which it must have)."""
    event = entry.prediction_event
    if entry.prediction is None and event is not None and event[:10] == _HEADER:
        _, model_id, version = _strings(event, 3)
        return model_id, version
    prediction = prediction_of(entry)
    assert prediction is not None
    return prediction.model_id, prediction.model_version


def outcome_value(
    prediction: PredictionEvent,
    feedback: FeedbackEvent,
    replaces: FeedbackEvent | None,
    now: datetime,
    prediction_raw: bytes | None,
    feedback_raw: bytes | None,
) -> bytes:
    """The encoded ``Outcome``: the events' bytes as consumed when this tree's schemas wrote
    them (an Outcome's body is its fields' bodies one after the other), else encoded again."""
    if prediction_raw is None or prediction_raw[:10] != _HEADER:
        prediction_raw = PREDICTIONS.encode(prediction)
    if feedback_raw is None or feedback_raw[:10] != _FEEDBACK_HEADER:
        feedback_raw = FEEDBACK.encode(feedback)
    if replaces is None:
        return b"".join(
            (OUTCOMES.header, prediction_raw[10:], feedback_raw[10:], outcome_tail(now))
        )
    micros = (as_utc(now) - _EPOCH) // timedelta(microseconds=1)
    replaced = b"\x02" + FEEDBACK.encode(replaces)[10:]
    return b"".join(
        (OUTCOMES.header, prediction_raw[10:], feedback_raw[10:], _zigzag(micros), replaced)
    )


def outcome_tail(now: datetime) -> bytes:
    """How the encoding of an Outcome joined at ``now`` that replaces no label ends."""
    micros = (as_utc(now) - _EPOCH) // timedelta(microseconds=1)
    return _zigzag(micros) + b"\x00"
