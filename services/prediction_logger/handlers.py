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

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from vigil.adapters.ports import Catalog
from vigil.wire.records import FeatureValue
from vigil.wire.validation import FeatureCheck, FieldError, check_features, describe

# A PredictionEvent as a plain dict: every field of the record, with its validated value.
Event = dict[str, Any]


class PredictionIn(BaseModel):
    """One prediction as an application sends it; ids and time are filled in when absent."""

    model_config = ConfigDict(extra="forbid")
    prediction_id: str | None = Field(default=None, min_length=1, max_length=200)
    model_id: str
    model_version: str
    timestamp: datetime | None = None
    features: dict[str, FeatureValue]
    prediction: bool | int | float | str
    score: float | None = None
    tags: dict[str, str] = Field(default_factory=dict)
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
    parsed: Sequence[PredictionIn | None], catalog: Catalog, now: datetime
) -> CheckedBatch:
    """Check each parsed item against its model's feature spec and build the valid events.

    Items that failed parsing (None) are skipped: their errors were reported by the parser.
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
        problems = check_features(version.features, item.features, i)
        if problems:
            checked.errors.extend(problems)
            continue
        # Every field was validated as PredictionIn: no second validation pass.
        event = dict(item)
        event["prediction_id"] = item.prediction_id or uuid.uuid4().hex
        event["timestamp"] = item.timestamp or now
        checked.events.append(event)
    return checked


_FIELDS = frozenset(PredictionIn.model_fields)
_LABEL_TYPES = frozenset({bool, int, float, str})
_MISSING = object()
_TIMESTAMPS = TypeAdapter(list[datetime])
# Integers a float field takes as they are: float(n) is exact up to 2**53.
_EXACT_INT = 2**53


class _Unsure(Exception):
    """The quick pass cannot be sure to read an item as pydantic would."""


def _optional_float(value: Any) -> float | None:
    """A ``float | None`` field's value as PredictionIn would have it."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int and -_EXACT_INT <= value <= _EXACT_INT:
        return float(value)
    if value is None:
        return None
    raise _Unsure


def valid_events(items: Sequence[Any], catalog: Catalog, now: datetime) -> list[Event] | None:
    """The events of a batch in which every item is valid, in one quick pass; else None.

    For the usual batch: items as ``orjson`` decodes them, each with exact JSON types, of a
    registered model version, and with clean features. It accepts only what ``PredictionIn``
    and ``check_batch`` accept, and builds the same events. On anything else (an error, or
    input pydantic would coerce, such as a number in a string) it answers None, and the caller
    takes the full path, which names every problem.
    """
    events: list[Event] = []
    stamps: list[Any] = []  # the timestamps to validate, in one call, for...
    stamped: list[Event] = []  # ...these events
    checks: dict[tuple[str, str], FeatureCheck] = {}
    try:
        for item in items:
            event = _quick_event(item, catalog, checks, now)
            timestamp = item.get("timestamp")
            if timestamp is not None:
                kind = type(timestamp)
                if kind is not str and kind is not int and kind is not float:
                    return None
                stamps.append(timestamp)
                stamped.append(event)
            events.append(event)
    except _Unsure:
        return None
    if stamps:
        # pydantic reads a string or number as a datetime the same in Python as in JSON.
        try:
            for event, timestamp in zip(stamped, _TIMESTAMPS.validate_python(stamps), strict=True):
                event["timestamp"] = timestamp
        except ValidationError:
            return None
    return events


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
    ):
        raise _Unsure
    check = checks.get((model_id, model_version))
    if check is None:
        version = catalog.get(model_id, model_version)
        if version is None:
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
    if type(value) is not str or not 0 < len(value) <= 200:
        raise _Unsure
    return value


def _tags(value: Any) -> dict[str, str]:
    if value is _MISSING:
        return {}
    if type(value) is not dict or not all(type(v) is str for v in value.values()):
        raise _Unsure
    return value


def has_unregistered(parsed: Sequence[PredictionIn | None], catalog: Catalog) -> bool:
    return any(p is not None and catalog.get(p.model_id, p.model_version) is None for p in parsed)


def first_occurrences(events: Sequence[Event]) -> list[Event]:
    """Each prediction_id's first event in the batch; later ones are duplicates."""
    seen: set[str] = set()
    unique = []
    for event in events:
        prediction_id = event["prediction_id"]
        if prediction_id not in seen:
            seen.add(prediction_id)
            unique.append(event)
    return unique
