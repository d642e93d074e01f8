"""Input checks that tell the sender which field, what was expected and what came."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from vigil.wire.records import FeatureSpec
from vigil.wire.shapes import (
    EARLIEST,
    IDENTIFIER_PATTERN,
    INT64_MAX,
    INT64_MIN,
    LATEST,
    ahead_of,
)

__all__ = [
    "FeatureCheck",
    "FieldError",
    "check_features",
    "decode_items",
    "describe",
    "errors_from_pydantic",
    "fill_timestamps",
    "is_ndjson",
    "parse_batch",
    "parse_items",
    "quick_timestamps",
    "unreadable_body",
    "unsupported_encoding",
]

M = TypeVar("M", bound=BaseModel)

_EXPECTED_BY_TYPE = {
    "numeric": "a number or null",
    "categorical": "a string or null",
    "boolean": "true, false or null",
}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one item (``index`` is its place in a batch)."""

    field: str
    expected: str
    received: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = f"[{self.index}] " if self.index is not None else ""
        return f"{where}{self.field}: expected {self.expected}, received {self.received}"


def describe(value: Any, limit: int = 80) -> str:
    """A short JSON rendering of what the sender sent."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    else:
        if _non_finite(value):  # orjson writes NaN and infinities as null
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False


def _type_ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "numeric":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "categorical":
        return isinstance(value, str)
    return isinstance(value, bool)


_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    "numeric": frozenset({int, float, type(None)}),
    "categorical": frozenset({str, type(None)}),
    "boolean": frozenset({bool, type(None)}),
}
_ABSENT = object()


def check_features(
    spec: Sequence[FeatureSpec], features: Mapping[str, Any], index: int | None = None
) -> list[FieldError]:
    """Type errors, missing required features and features the spec does not know.

    Values outside the spec's range or categories are not errors: that is drift, not bad input.
    """
    # Fast path for the usual case, a clean event: exact JSON types, nothing extra.
    absent = 0
    for feature in spec:
        value = features.get(feature.name, _ABSENT)
        if value is _ABSENT:
            if feature.required:
                break
            absent += 1
        elif type(value) not in _ALLOWED_TYPES[feature.type]:
            break
    else:
        if len(features) + absent == len(spec):
            return []
    return _feature_errors(spec, features, index)


@dataclass(frozen=True)
class FeatureCheck:
    """A feature spec compiled for the hot path: does a features map pass, yes or no.

    ``passes(features)`` is True only when ``check_features(spec, features)`` finds nothing;
    on False, ``check_features`` names the problems. Values must be exact JSON types (as
    ``orjson`` or ``json`` decode them): a subclass, such as a numpy float, does not pass;
    neither does an integer beyond Avro's long (the full path reads it as a double). Floats
    are taken to be finite, as ``orjson`` decodes them.
    """

    names: frozenset[str]
    entries: tuple[tuple[str, frozenset[type], bool], ...]
    # The allowed types when every feature is required and of one type: then one set
    # comparison checks the names and one the types.
    uniform: frozenset[type] | None

    @classmethod
    def of(cls, spec: Sequence[FeatureSpec]) -> FeatureCheck:
        entries = tuple((f.name, _ALLOWED_TYPES[f.type], f.required) for f in spec)
        names = frozenset(name for name, _, _ in entries)
        kinds = {f.type for f in spec}
        uniform = (
            _ALLOWED_TYPES[kinds.pop()]
            if len(kinds) == 1 and len(names) == len(entries) and all(f.required for f in spec)
            else None
        )
        return cls(names, entries, uniform)

    def passes(self, features: Mapping[str, Any]) -> bool:
        if self.uniform is not None:
            if features.keys() != self.names:
                return False
            kinds = set(map(type, features.values()))
            return kinds <= self.uniform and (int not in kinds or _ints_fit(features.values()))
        absent = 0
        for name, allowed, required in self.entries:
            value = features.get(name, _ABSENT)
            if value is _ABSENT:
                if required:
                    return False
                absent += 1
            elif type(value) not in allowed or (
                type(value) is int and not INT64_MIN <= value <= INT64_MAX
            ):
                return False
        return len(features) + absent == len(self.entries)


def _ints_fit(values: Iterable[Any]) -> bool:
    """Whether every integer among ``values`` fits Avro's long."""
    ints = [v for v in values if type(v) is int]
    return min(ints) >= INT64_MIN and max(ints) <= INT64_MAX


def _feature_errors(
    spec: Sequence[FeatureSpec], features: Mapping[str, Any], index: int | None
) -> list[FieldError]:
    errors = []
    known = {f.name for f in spec}
    for feature in spec:
        name = f"features.{feature.name}"
        if feature.name not in features:
            if feature.required:
                errors.append(FieldError(name, _EXPECTED_BY_TYPE[feature.type], "nothing", index))
        elif not _type_ok(feature.type, features[feature.name]):
            errors.append(
                FieldError(
                    name,
                    _EXPECTED_BY_TYPE[feature.type],
                    describe(features[feature.name]),
                    index,
                )
            )
    for extra in sorted(set(features) - known):
        errors.append(
            FieldError(
                f"features.{extra}",
                f"one of the registered features {sorted(known)}",
                describe(features[extra]),
                index,
            )
        )
    return errors


_SHAPES = {
    IDENTIFIER_PATTERN: "an id: 1 to 128 characters of A-Z a-z 0-9 . _ : -,"
    " starting with a letter or digit"
}


def errors_from_pydantic(
    details: Sequence[Mapping[str, Any]], index: int | None = None
) -> list[FieldError]:
    """pydantic's (or FastAPI's) error details in Vigil's shape."""
    errors = []
    for err in details:
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["body"]:
            loc = loc[1:]
        field = ".".join(loc) or "<body>"
        if err["type"] == "extra_forbidden":
            errors.append(FieldError(field, "no such field", describe(err["input"]), index))
            continue
        if err["type"] == "json_invalid":  # FastAPI's: the location is a character position
            error = err.get("ctx", {}).get("error", "JSON decode error")
            where = f" at character {loc[0]}" if loc and loc[0].isdigit() else ""
            received = f"invalid JSON ({error}{where})"
            errors.append(FieldError("<body>", "a JSON document", received, index))
            continue
        received = "nothing" if err["type"] == "missing" else describe(err.get("input"))
        if err["type"] == "missing":
            expected = "a value (the field is required)"
        elif err["type"] == "string_pattern_mismatch":
            pattern = err.get("ctx", {}).get("pattern")
            expected = _SHAPES.get(pattern, f"a string matching {pattern}")
        elif err["type"] == "too_short":
            expected = f"at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
        else:
            msg = str(err["msg"])
            expected = msg.removeprefix("Input should be ").removeprefix("Value error, ")
        errors.append(FieldError(field, expected, received, index))
    return errors


def is_ndjson(content_type: str) -> bool:
    """Whether a body of this Content-Type is NDJSON (JSON Lines): one JSON object per line."""
    return "ndjson" in content_type or "jsonl" in content_type


def decode_items(body: bytes, ndjson: bool = False) -> tuple[list[Any], list[FieldError]]:
    """The items of a JSON object, a JSON array, or NDJSON (one object per line)."""
    if not ndjson:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if b"\n" not in body.strip():
                return [], [FieldError("<body>", "a JSON object or array", f"invalid JSON ({exc})")]
        else:
            items = data if isinstance(data, list) else [data]
            if not items:
                return [], [FieldError("<body>", "at least one item", "[]")]
            return items, []
    items, errors = [], []
    for line_no, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            errors.append(FieldError(f"<line {line_no + 1}>", "one JSON object per line", str(exc)))
    if not items and not errors:
        errors.append(FieldError("<body>", "at least one item", "nothing"))
    return items, errors


def parse_items(
    items: Sequence[Any], model: type[M], context: Mapping[str, Any] | None = None
) -> tuple[list[M | None], list[FieldError]]:
    """Validate each item as ``model``; invalid items are None and their errors carry the index.

    ``context`` goes to the model's validators (e.g. ``{"max_clock_skew": 300.0}``).
    """
    parsed: list[M | None] = []
    errors: list[FieldError] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            parsed.append(None)
            errors.append(FieldError("<item>", "a JSON object", describe(item), i))
            continue
        try:
            parsed.append(model.model_validate(item, context=context))
        except ValidationError as exc:
            parsed.append(None)
            errors.extend(errors_from_pydantic(exc.errors(), i))
    return parsed, errors


def parse_batch(
    body: bytes, model: type[M], context: Mapping[str, Any] | None = None
) -> tuple[list[M | None], list[FieldError]]:
    """Parse a JSON object, array or NDJSON body into models; invalid items are None."""
    items, errors = decode_items(body)
    if errors:
        return [], errors
    return parse_items(items, model, context)


def unreadable_body(cause: BaseException | None, encoding: str | None = None) -> FieldError:
    """Why a JSON body could not be parsed at all (FastAPI says only "error parsing the body");
    ``encoding`` is the request's ``Content-Encoding``, if any."""
    if isinstance(cause, RecursionError):
        received = "JSON nested too deeply to parse"
    elif isinstance(cause, UnicodeDecodeError):
        received = f"bytes that are not UTF-8 ({cause.reason} at byte {cause.start})"
        if encoding:
            received += f"; this route does not decode Content-Encoding {encoding[:40]!r}"
    else:
        received = f"{type(cause).__name__}: {cause}"[:200] if cause else "an unreadable body"
    return FieldError("<body>", "a JSON document in UTF-8", received)


def unsupported_encoding(encoding: str) -> FieldError:
    """The error for a body in a ``Content-Encoding`` Vigil does not read (only gzip is)."""
    return FieldError("Content-Encoding", "identity or gzip", encoding[:100])


_TIMESTAMPS = TypeAdapter(list[datetime])
_TIMESTAMP_TYPES = frozenset({str, int, float})


def quick_timestamps(
    stamps: Sequence[Any], now: datetime, max_clock_skew: float
) -> list[datetime] | None:
    """Event times as the ``Timestamp`` type reads them, checked all at once for a hot path;
    None unless every one is plainly valid (the caller then takes the path naming problems).

    Each is a JSON string or number as ``orjson`` decodes it; pydantic reads those as a
    datetime the same in Python as in JSON. A time without a zone is UTC; the range, and
    at most ``max_clock_skew`` seconds after ``now``, are checked on the earliest and latest.
    """
    if not set(map(type, stamps)) <= _TIMESTAMP_TYPES:
        return None
    try:
        times = _TIMESTAMPS.validate_python(stamps)
    except ValidationError:
        return None
    times = [t if t.tzinfo is not None else t.replace(tzinfo=UTC) for t in times]
    if times and (min(times) < EARLIEST or max(times) >= LATEST):
        return None
    if times and ahead_of(max(times), now, max_clock_skew):
        return None
    return times


def fill_timestamps(
    events: Sequence[dict[str, Any]], given: Sequence[Any], now: datetime, max_clock_skew: float
) -> bool:
    """Set each event's ``timestamp`` to the time it was ``given`` (None: left as it is), read
    by ``quick_timestamps``; False, with nothing set, unless every one is plainly valid."""
    stamped = [i for i, time in enumerate(given) if time is not None]
    if not stamped:
        return True
    times = quick_timestamps([given[i] for i in stamped], now, max_clock_skew)
    if times is None:
        return False
    for i, time in zip(stamped, times, strict=True):
        events[i]["timestamp"] = time
    return True
