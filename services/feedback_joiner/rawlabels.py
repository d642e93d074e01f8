"""A label and a fresh entry read in place, and the entry of the label joined to it written
as bytes: the join's hot path, without fastavro or pydantic.

A *fresh* entry is one in the exact form the index writes (``entries.entry_prefix`` +
``entries.avro_bytes``): a prediction written with this tree's schema, no label, no flags
waiting, no orphan mark, no feedback ids seen. A label read here is a FeedbackEvent written
with this tree's schema, with an ``actual``, every field in Avro's shortest form (so that
decoding it and encoding it again gives the same bytes) and every value one the codec reads
(UTF-8 text, a timestamp a ``datetime`` holds, a known enum symbol). Anything else is left to
the codec (``None``): the join then takes its general path.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from feedback_joiner.entries import ENTRIES, FEEDBACK, PREDICTIONS

__all__ = ["FreshEntry", "RawLabel", "fresh_entry", "joined_entry", "read_label"]

# Timestamps a datetime can hold (fastavro turns the micros into one; others fail there).
MIN_MICROS = -62_135_596_800_000_000
MAX_MICROS = 253_402_300_799_999_999

_FEEDBACK_HEADER = FEEDBACK.header
_PREDICTION_HEADER = PREDICTIONS.header
_ENTRY_HEADER = ENTRIES.header
# A fresh entry up to first_seen: no prediction, label, label_joined, seen ids or flags.
_FRESH_HEAD = _ENTRY_HEADER + b"\x00\x00\x00\x00\x00"
# A joined entry's fields around the label: no prediction, then the label (union branch 1);
# label_joined true and one feedback id seen; then no flags waiting.
_LABELLED = _ENTRY_HEADER + b"\x00\x02"
_JOINED_ONE_SEEN = b"\x01\x02"
_END_SEEN_NO_WAITING = b"\x00\x00"
# A fresh entry up to its prediction's length: first_seen a varint of at most 8 bytes in its
# shortest form (any such is a time a datetime holds), no orphan mark, a prediction.
_FRESH = re.compile(
    re.escape(_FRESH_HEAD) + rb"(?:[\x80-\xff]{0,7}[\x01-\x7f]|\x00)\x00\x02", re.DOTALL
)
_DOUBLE = struct.Struct("<d").unpack_from
_FLAGS = frozenset((0, 2, 4, 6))  # the FeedbackFlag symbols' indexes, zig-zag encoded
_SOURCES = frozenset((0, 2, 4))  # FeedbackSource's


class NotShortest(ValueError):
    """Bytes the codec may read, but not in the form it writes."""


class RawLabel(NamedTuple):
    """What the join needs of a label read in place."""

    value: bytes  # the FeedbackEvent as consumed
    prediction_id: str
    encoded_id: bytes  # prediction_id as written: length, then UTF-8
    feedback_id: bytes  # feedback_id as written
    actual: bool | int | float | str
    micros: int  # timestamp, microseconds since the epoch


class FreshEntry(NamedTuple):
    """A fresh entry's bytes and where its prediction (single-object encoded) starts."""

    raw: bytes
    prediction: int


def _long(value: bytes, pos: int) -> tuple[int, int]:
    """The Avro long at ``pos`` (a zig-zag varint in its shortest form, at most 10 bytes) and
    the position after it; NotShortest or IndexError otherwise."""
    b = value[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = value[pos]
        n |= (b & 0x7F) << shift
        if b < 0x80:
            if b == 0 or n >> 64:  # a padded varint, or one past 64 bits
                raise NotShortest("not a shortest 64-bit varint")
            return (n >> 1) ^ -(n & 1), pos + 1
        shift += 7
        if shift > 63:
            raise NotShortest("a varint of more than 10 bytes")


def _text(value: bytes, pos: int) -> tuple[str, int]:
    """The Avro string at ``pos`` and the position after it (UnicodeDecodeError if not UTF-8)."""
    length = value[pos]
    if length < 0x80:  # the usual: a length under 64 in one byte
        if length & 1:
            raise NotShortest("a negative length")
        length >>= 1
        pos += 1
    else:
        length, pos = _long(value, pos)
    end = pos + length
    if length < 0 or end > len(value):
        raise NotShortest("a string past the end")
    return value[pos:end].decode(), end


def _optional_text(value: bytes, pos: int) -> int:
    """The position after an Avro ["null", "string"] at ``pos``."""
    branch = value[pos]
    if branch == 0:
        return pos + 1
    if branch != 2:
        raise NotShortest("not a branch of [null, string]")
    return _text(value, pos + 1)[1]


def read_label(value: bytes | None) -> RawLabel | None:
    """A label (a FeedbackEvent with an ``actual``) read in place; None for anything else (a
    flag, another encoding or schema, bytes the codec would read differently or not at all)."""
    if value is None or value[:10] != _FEEDBACK_HEADER:
        return None
    try:
        pos = _text(value, 10)[1]
        feedback_id = value[10:pos]
        prediction_id, end = _text(value, pos)
        encoded_id = value[pos:end]
        pos = _optional_text(value, end)  # model_id
        branch = value[pos]  # actual: null, boolean, long, double, string
        actual: bool | int | float | str
        if branch == 2:
            if value[pos + 1] > 1:
                return None
            actual, pos = value[pos + 1] == 1, pos + 2
        elif branch == 4:
            actual, pos = _long(value, pos + 1)
        elif branch == 6:
            (actual,) = _DOUBLE(value, pos + 1)
            if actual != actual:  # NaN: left to the codec
                return None
            pos += 9
        elif branch == 8:
            actual, pos = _text(value, pos + 1)
        else:  # a flag, or no union branch
            return None
        if value[pos] == 2 and value[pos + 1] in _FLAGS:
            pos += 2
        elif value[pos] == 0:
            pos += 1
        else:
            return None
        pos = _optional_text(value, pos)  # comment
        pos = _optional_text(value, pos)  # reviewer
        if value[pos] not in _SOURCES:
            return None
        micros, pos = _long(value, pos + 1)
    except (IndexError, ValueError, struct.error):  # UnicodeDecodeError is a ValueError
        return None
    if pos != len(value) or not MIN_MICROS <= micros <= MAX_MICROS:
        return None
    return RawLabel(value, prediction_id, encoded_id, feedback_id, actual, micros)


def fresh_entry(raw: bytes | None, encoded_id: bytes) -> FreshEntry | None:
    """The entry if it is fresh and its prediction has the id ``encoded_id`` (as written),
    else None."""
    if raw is None:
        return None
    head = _FRESH.match(raw)  # up to the prediction's length
    if head is None:
        return None
    try:
        length, start = _long(raw, head.end())
    except (IndexError, ValueError):
        return None
    if start + length != len(raw) or raw[start : start + 10] != _PREDICTION_HEADER:
        return None
    if raw[start + 10 : start + 10 + len(encoded_id)] != encoded_id:
        return None
    return FreshEntry(raw, start)


def joined_entry(entry: FreshEntry, label: RawLabel) -> bytes:
    """The entry once ``label`` is joined to its prediction: the label (newest, joined), its
    feedback id seen, the rest as it was; byte for byte ``ENTRIES.encode`` of the same
    ``JoinEntry``."""
    return b"".join(
        (
            _LABELLED,
            label.value[10:],
            _JOINED_ONE_SEEN,
            label.feedback_id,
            _END_SEEN_NO_WAITING,
            entry.raw[15:],  # first_seen, no orphan mark, the prediction
        )
    )
