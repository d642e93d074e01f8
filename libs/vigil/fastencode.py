"""A hand-written Avro encoder for PredictionEvent, the hottest record on the wire.

fastavro spends ~40 us on one event with 20 features, mostly resolving the union of each
feature value; this writes the same bytes (a test compares them with fastavro's on random
events) in a fraction of that. Other records go through fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["encode_prediction_body"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOUBLE = struct.Struct("<d").pack
_SMALL = tuple(bytes((((n << 1) ^ (n >> 63)) & 0xFF,)) for n in range(64))


def _long(n: int) -> bytes:
    if 0 <= n < 64:
        return _SMALL[n]
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _string(s: str) -> bytes:
    data = s.encode()
    return _long(len(data)) + data


def _micros(ts: datetime | int | float) -> int:
    if isinstance(ts, datetime):
        delta = ts - _EPOCH if ts.tzinfo else ts - _EPOCH.replace(tzinfo=None)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return int(ts)


def _union(value: Any, boolean_branch: int) -> bytes:
    """A value of a union whose branches from ``boolean_branch`` on are boolean, long,
    double, string."""
    if value is True:
        return _SMALL[boolean_branch] + b"\x01"
    if value is False:
        return _SMALL[boolean_branch] + b"\x00"
    if isinstance(value, int):
        return _SMALL[boolean_branch + 1] + _long(value)
    if isinstance(value, float):
        return _SMALL[boolean_branch + 2] + _DOUBLE(value)
    return _SMALL[boolean_branch + 3] + _string(value)


def _feature(value: Any) -> bytes:
    # ["null", "boolean", "long", "double", "string"]
    return b"\x00" if value is None else _union(value, 1)


def _label(value: Any) -> bytes:
    # ["boolean", "long", "double", "string"]
    return _union(value, 0)


def _optional_double(value: float | None) -> bytes:
    return b"\x00" if value is None else b"\x02" + _DOUBLE(float(value))


def _map(items: Mapping[str, Any], encode: Any) -> bytes:
    if not items:
        return b"\x00"
    parts = [_long(len(items))]
    for key, value in items.items():
        parts.append(_string(key))
        parts.append(encode(value))
    parts.append(b"\x00")
    return b"".join(parts)


def encode_prediction_body(event: Mapping[str, Any]) -> bytes:
    """The Avro binary body of a PredictionEvent given as a dict (its model_dump shape)."""
    return b"".join(
        (
            _string(event["prediction_id"]),
            _string(event["model_id"]),
            _string(event["model_version"]),
            _long(_micros(event["timestamp"])),
            _map(event["features"], _feature),
            _label(event["prediction"]),
            _optional_double(event.get("score")),
            _map(event.get("tags") or {}, _string),
            _optional_double(event.get("sample_rate")),
        )
    )
