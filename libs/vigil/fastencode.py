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


def _feature(value: Any) -> bytes:
    # Union ["null", "boolean", "long", "double", "string"].
    if value is None:
        return b"\x00"
    if value is True:
        return b"\x02\x01"
    if value is False:
        return b"\x02\x00"
    if isinstance(value, int):
        return b"\x04" + _long(value)
    if isinstance(value, float):
        return b"\x06" + _DOUBLE(value)
    return b"\x08" + _string(value)


def _label(value: Any) -> bytes:
    # Union ["boolean", "long", "double", "string"].
    if value is True:
        return b"\x00\x01"
    if value is False:
        return b"\x00\x00"
    if isinstance(value, int):
        return b"\x02" + _long(value)
    if isinstance(value, float):
        return b"\x04" + _DOUBLE(value)
    return b"\x06" + _string(value)


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
