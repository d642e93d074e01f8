"""Hand-written Avro encoders for the feedback joiner's records, ``JoinEntry`` (one per
prediction id and label, on its changelog) and ``Outcome`` (one per joined label): fastavro
spends ~30 us on either, mostly on the nested events; these write the same bytes (tests
compare them with fastavro's) from the events' own encoders (``vigil.wire.fastencode``).

They take a record's fields as a mapping, nested records as mappings or as pydantic models
(``Codec.encode`` hands them ``record.__dict__``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vigil.wire.fastencode import (
    _long,
    _micros,
    _string,
    encode_feedback_body,
    encode_prediction_body,
)

__all__ = ["encode_entry_body", "encode_outcome_body"]


def _fields(record: Any) -> Mapping[str, Any]:
    return record if isinstance(record, Mapping) else record.__dict__


def _optional(record: Any, encode: Any) -> bytes:
    return b"\x00" if record is None else b"\x02" + encode(_fields(record))


def _array(items: Sequence[Any], encode: Any) -> bytes:
    if not items:
        return b"\x00"
    return _long(len(items)) + b"".join(encode(item) for item in items) + b"\x00"


def _orphan(mark: Mapping[str, Any]) -> bytes:
    return b"".join(
        (
            _string(mark["model_id"]),
            _string(mark["model_version"]),
            _long(_micros(mark["window_start"])),
            _long(_micros(mark["window_end"])),
        )
    )


def encode_entry_body(entry: Mapping[str, Any]) -> bytes:
    """The Avro binary body of a JoinEntry."""
    event = entry.get("prediction_event")
    return b"".join(
        (
            _optional(entry.get("prediction"), encode_prediction_body),
            _optional(entry.get("label"), encode_feedback_body),
            b"\x01" if entry.get("label_joined") else b"\x00",
            _array(entry.get("seen_feedback") or (), _string),
            _array(entry.get("waiting") or (), lambda f: encode_feedback_body(_fields(f))),
            _long(_micros(entry["first_seen"])),
            _optional(entry.get("orphan"), _orphan),
            b"\x00" if event is None else b"\x02" + _long(len(event)) + event,
        )
    )


def encode_outcome_body(outcome: Mapping[str, Any]) -> bytes:
    """The Avro binary body of an Outcome."""
    return b"".join(
        (
            encode_prediction_body(_fields(outcome["prediction"])),
            encode_feedback_body(_fields(outcome["feedback"])),
            _long(_micros(outcome["joined_at"])),
            _optional(outcome.get("replaces"), encode_feedback_body),
        )
    )
