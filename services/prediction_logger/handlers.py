"""Prediction logging logic: wire input -> validated events, no I/O.

Events travel as plain dicts shaped like ``PredictionEvent`` (its ``model_dump`` shape), which
is what the Avro encoder takes: building a pydantic record per event would cost more than
encoding it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vigil.adapters.ports import Catalog
from vigil.wire.access import ALL_MODELS, Caller
from vigil.wire.shapes import (
    MAX_CLOCK_SKEW_SECONDS,
    TAG_VALUE_MAX,
    FiniteFloat,
    Identifier,
    InputLabel,
    InputValue,
    Name,
    TagValue,
    Timestamp,
    ahead_of,
    in_int64,
    is_identifier,
    is_name,
    is_text,
)
from vigil.wire.validation import (
    FeatureCheck,
    FieldError,
    check_features,
    describe,
    fill_timestamps,
)

__all__ = [
    "CheckedBatch",
    "Event",
    "PredictionIn",
    "check_batch",
    "event_key",
    "first_occurrences",
    "has_unregistered",
    "out_of_scope",
    "too_far_ahead",
    "valid_events",
]

# A PredictionEvent as a plain dict: every field of the record, with its validated value.
Event = dict[str, Any]


class PredictionIn(BaseModel):
    """One prediction as an application sends it; ids and time are filled in when absent."""

    model_config = ConfigDict(extra="forbid")
    prediction_id: Identifier | None = None
    model_id: Identifier
    model_version: Identifier
    timestamp: Timestamp | None = None
    features: dict[str, InputValue]
    prediction: InputLabel
    score: FiniteFloat | None = None
    tags: dict[Name, TagValue] = Field(default_factory=dict)
    sample_rate: float | None = Field(default=None, gt=0, le=1)


@dataclass
class CheckedBatch:
    """A batch after checking: the valid events by index, and every problem found."""

    events: list[Event] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    unknown_models: list[FieldError] = field(default_factory=list)

    @property
    def problems(self) -> list[FieldError]:
        return sorted(self.errors + self.unknown_models, key=lambda e: e.index or 0)


def check_batch(
    parsed: Sequence[PredictionIn | None],
    catalog: Catalog,
    now: datetime,
    max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS,
) -> CheckedBatch:
    """Check each parsed item against its model's feature spec and build the valid events.

    Items that failed parsing (None) are skipped: their errors were reported by the parser.
    An event time more than ``max_clock_skew`` seconds after ``now`` is an error.
    """
    checked = CheckedBatch()
    for i, item in enumerate(parsed):
        if item is None:
            continue
        version = catalog.get(item.model_id, item.model_version)
        if version is None:
            checked.unknown_models.append(
                FieldError(
                    "model_version",
                    f"a registered version of model {item.model_id!r}",
                    describe(item.model_version),
                    i,
                )
            )
            continue
        if version.status == "retired":
            checked.errors.append(
                FieldError(
                    "model_version",
                    f"a version of model {item.model_id!r} that is not retired",
                    f"{describe(item.model_version)} (retired)",
                    i,
                )
            )
            continue
        problems = check_features(version.features, item.features, i)
        if item.timestamp is not None and ahead_of(item.timestamp, now, max_clock_skew):
            problems.append(too_far_ahead(item.timestamp, now, max_clock_skew, i))
        if problems:
            checked.errors.extend(problems)
            continue
        # Every field was validated as PredictionIn: no second validation pass.
        event = dict(item)
        event["prediction_id"] = item.prediction_id or uuid.uuid4().hex
        event["timestamp"] = item.timestamp or now
        checked.events.append(event)
    return checked


def too_far_ahead(
    timestamp: datetime, now: datetime, max_clock_skew: float, index: int | None
) -> FieldError:
    """The error for an event time ahead of the server's clock by more than the tolerance."""
    return FieldError(
        "timestamp",
        f"a time at most {max_clock_skew:g} s after the server's clock ({now.isoformat()})",
        describe(timestamp.isoformat()),
        index,
    )


_FIELDS = frozenset(PredictionIn.model_fields)
_LABEL_TYPES = frozenset({bool, int, float, str})
_MISSING = object()
# Integers a float field takes as they are: float(n) is exact up to 2**53.
_EXACT_INT = 2**53


class _Unsure(Exception):
    """The quick pass cannot be sure to read an item as pydantic would."""


def _optional_float(value: Any) -> float | None:
    """A ``float | None`` field's value as PredictionIn would have it."""
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # NaN or an infinity
            raise _Unsure
        return value  # type: ignore[no-any-return]
    if kind is int and -_EXACT_INT <= value <= _EXACT_INT:
        return float(value)
    if value is None:
        return None
    raise _Unsure


def valid_events(
    items: Sequence[Any],
    catalog: Catalog,
    now: datetime,
    max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS,
) -> list[Event] | None:
    """The events of a batch in which every item is valid, in one quick pass; else None.

    For the usual batch: items as ``orjson`` decodes them, each with exact JSON types, of a
    registered model version, and with clean features. It accepts only what ``PredictionIn``
    and ``check_batch`` accept (the shapes of ``vigil.wire.shapes``, an event time at most
    ``max_clock_skew`` seconds after ``now``), and builds the same events. On anything else (an
    error, or input pydantic would coerce, such as a number in a string) it answers None, and
    the caller takes the full path, which names every problem.
    """
    checks: dict[tuple[str, str], FeatureCheck] = {}
    try:
        events = [_quick_event(item, catalog, checks, now) for item in items]
    except _Unsure:
        return None
    # Every timestamp in one call, for the whole batch.
    given = [item.get("timestamp") for item in items]
    return events if fill_timestamps(events, given, now, max_clock_skew) else None


def _quick_event(
    item: Any, catalog: Catalog, checks: dict[tuple[str, str], FeatureCheck], now: datetime
) -> Event:
    """One item as its event, timestamped ``now``; raises _Unsure unless plainly valid."""
    if type(item) is not dict or not item.keys() <= _FIELDS:
        raise _Unsure
    model_id = item.get("model_id")
    model_version = item.get("model_version")
    features = item.get("features")
    prediction = item.get("prediction")
    if (
        type(model_id) is not str
        or type(model_version) is not str
        or type(features) is not dict
        or type(prediction) not in _LABEL_TYPES
        or (type(prediction) is int and not in_int64(prediction))
    ):
        raise _Unsure
    check = checks.get((model_id, model_version))
    if check is None:
        version = catalog.get(model_id, model_version)
        if (
            version is None
            or version.status == "retired"
            or not (is_identifier(model_id) and is_identifier(model_version))
        ):
            raise _Unsure
        check = checks[(model_id, model_version)] = FeatureCheck.of(version.features)
    if not check.passes(features):
        raise _Unsure
    sample_rate = _optional_float(item.get("sample_rate"))
    if sample_rate is not None and not 0 < sample_rate <= 1:
        raise _Unsure
    return {
        "prediction_id": _prediction_id(item.get("prediction_id")),
        "model_id": model_id,
        "model_version": model_version,
        "timestamp": now,
        "features": features,
        "prediction": prediction,
        "score": _optional_float(item.get("score")),
        "tags": _tags(item.get("tags", _MISSING)),
        "sample_rate": sample_rate,
    }


def _prediction_id(value: Any) -> str:
    """The item's prediction_id, or a new one when it has none."""
    if value is None:
        return uuid.uuid4().hex
    if type(value) is not str or not is_identifier(value):
        raise _Unsure
    return value


def _tags(value: Any) -> dict[str, str]:
    if value is _MISSING:
        return {}
    if type(value) is not dict:
        raise _Unsure
    for key, text in value.items():
        if type(key) is not str or type(text) is not str:
            raise _Unsure
        if not is_name(key) or not is_text(text, TAG_VALUE_MAX):
            raise _Unsure
    return value


def has_unregistered(parsed: Sequence[PredictionIn | None], catalog: Catalog) -> bool:
    return any(p is not None and catalog.get(p.model_id, p.model_version) is None for p in parsed)


def event_key(event: Event) -> tuple[str, str]:
    """What identifies an event: its prediction_id within its model (models may share ids)."""
    return event["model_id"], event["prediction_id"]


def first_occurrences(events: Sequence[Event]) -> list[Event]:
    """Each (model_id, prediction_id)'s first event in the batch; later ones are duplicates."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for event in events:
        key = event_key(event)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


def out_of_scope(caller: Caller, parsed: Sequence[PredictionIn | None]) -> list[FieldError]:
    """An error for each item of a model outside the caller's scope."""
    if ALL_MODELS in caller.models:
        return []
    return [
        FieldError(
            "model_id",
            f"a model in the key's scope ({', '.join(sorted(caller.models))})",
            repr(item.model_id),
            i,
        )
        for i, item in enumerate(parsed)
        if item is not None and not caller.covers(item.model_id)
    ]
