"""Feedback logic: wire input -> FeedbackEvents as plain dicts, no I/O.

Feedback travels as plain dicts shaped like ``FeedbackEvent`` (its ``model_dump`` shape), which
is what the Avro encoder takes: a label pipeline sends it in bulk, and building a pydantic
record per item would cost more than the rest of the request.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from vigil.wire.access import ALL_MODELS, Caller, Permission
from vigil.wire.records import utcnow
from vigil.wire.shapes import (
    MAX_CLOCK_SKEW_SECONDS,
    Identifier,
    InputLabel,
    Name,
    Text,
    Timestamp,
    ahead_of,
    in_int64,
    is_identifier,
    is_name,
    is_text,
)
from vigil.wire.validation import FieldError, fill_timestamps, parse_items

__all__ = [
    "Feedback",
    "FeedbackIn",
    "first_occurrences",
    "not_the_author",
    "parsed_items",
    "quick_items",
    "read_items",
    "refused",
    "to_events",
]

# A FeedbackEvent as a plain dict: every field of the record (feedback_id and timestamp None
# until ``to_events`` fills them in).
Feedback = dict[str, Any]

# The permission each source of feedback needs.
_SOURCES = {
    "sme": Permission.FEEDBACK_REVIEW,
    "ground_truth": Permission.FEEDBACK_TRUTH,
    "system": Permission.FEEDBACK_TRUTH,
}
_FLAGS = frozenset({"incorrect", "unexpected", "harmful", "ok"})


class FeedbackIn(BaseModel):
    """A true outcome or a reviewer's flag for one prediction; needs at least one of the two."""

    model_config = ConfigDict(extra="forbid")
    feedback_id: Identifier | None = None
    prediction_id: Identifier
    model_id: Identifier | None = None
    actual: InputLabel | None = None
    flag: Literal["incorrect", "unexpected", "harmful", "ok"] | None = None
    comment: Text | None = None
    reviewer: Name | None = None
    source: Literal["sme", "ground_truth", "system"] = "sme"
    timestamp: Timestamp | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_ahead(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """Refuse a time too far ahead of ``now`` (the clock, unless the context gives one)."""
        context = info.context or {}
        now = context.get("now") or utcnow()
        skew = context.get("max_clock_skew", MAX_CLOCK_SKEW_SECONDS)
        if value is not None and ahead_of(value, now, skew):
            raise ValueError(f"a time at most {skew:g} s after the server's clock ({now})")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackIn:
        if self.actual is None and self.flag is None:
            raise ValueError("give 'actual' (the true outcome), 'flag', or both")
        return self


def read_items(
    items: Sequence[Any], now: datetime, max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS
) -> tuple[Sequence[Feedback | None], list[FieldError]]:
    """Each item as feedback, or None with its errors (which carry its index).

    The usual batch, every item plainly valid, takes one quick pass over the decoded JSON;
    anything else goes through ``FeedbackIn``, which names every problem. Both give the same
    feedback for what they accept.
    """
    quick = quick_items(items, now, max_clock_skew)
    if quick is not None:
        return quick, []
    return parsed_items(items, now, max_clock_skew)


def parsed_items(
    items: Sequence[Any], now: datetime, max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS
) -> tuple[list[Feedback | None], list[FieldError]]:
    """Each item read by ``FeedbackIn``, which names every problem: the full path."""
    parsed, errors = parse_items(items, FeedbackIn, {"now": now, "max_clock_skew": max_clock_skew})
    return [None if item is None else dict(item) for item in parsed], errors


class _Unsure(Exception):
    """The quick pass cannot be sure to read an item as FeedbackIn would."""


_FIELDS = frozenset(FeedbackIn.model_fields)
_LABEL_TYPES = frozenset({bool, int, float, str})


def quick_items(
    items: Sequence[Any], now: datetime, max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS
) -> list[Feedback] | None:
    """The feedback of a batch of plainly valid items (exact JSON types, as ``orjson``
    decodes them), in one pass; None if any item is not, or is input pydantic would coerce."""
    try:
        feedback = [_quick_item(item) for item in items]
    except _Unsure:
        return None
    # Every timestamp in one call, for the whole batch.
    given = [item.get("timestamp") for item in items]
    return feedback if fill_timestamps(feedback, given, now, max_clock_skew) else None


def _quick_item(item: Any) -> Feedback:
    if type(item) is not dict or not item.keys() <= _FIELDS:
        raise _Unsure
    actual = item.get("actual")
    flag = item.get("flag")
    source = item.get("source", "sme")
    if actual is not None and (
        type(actual) not in _LABEL_TYPES
        or (type(actual) is int and not in_int64(actual))
        or (type(actual) is float and actual - actual != 0.0)  # NaN or an infinity
    ):
        raise _Unsure
    if flag is not None and (type(flag) is not str or flag not in _FLAGS):
        raise _Unsure
    if (actual is None and flag is None) or type(source) is not str or source not in _SOURCES:
        raise _Unsure
    return {
        "feedback_id": _optional(item.get("feedback_id"), is_identifier),
        "prediction_id": _required(item.get("prediction_id"), is_identifier),
        "model_id": _optional(item.get("model_id"), is_identifier),
        "actual": actual,
        "flag": flag,
        "comment": _optional(item.get("comment"), is_text),
        "reviewer": _optional(item.get("reviewer"), is_name),
        "source": source,
        "timestamp": None,  # filled in for the whole batch at once
    }


def _required(value: Any, shape: Any) -> str:
    if type(value) is not str or not shape(value):
        raise _Unsure
    return value


def _optional(value: Any, shape: Any) -> str | None:
    return None if value is None else _required(value, shape)


def refused(items: Sequence[Feedback | None], caller: Caller) -> list[FieldError]:
    """Items the caller may not send: a source its roles do not allow (``sme`` feedback needs
    the sme role, ``ground_truth``/``system`` the producer role), or a model outside its scope
    (a key scoped to some models must name the model)."""
    errors = []
    sources = [s for s, p in _SOURCES.items() if caller.may(p)]
    every_model = ALL_MODELS in caller.models
    for i, item in enumerate(items):
        if item is None:
            continue
        model_id = item["model_id"]
        if item["source"] not in sources:
            expected = f"a source the key's roles allow ({', '.join(sources) or 'none'})"
            errors.append(FieldError("source", expected, repr(item["source"]), i))
        elif not every_model and (model_id is None or model_id not in caller.models):
            scope = ", ".join(sorted(caller.models))
            received = "missing" if model_id is None else repr(model_id)
            errors.append(
                FieldError("model_id", f"a model in the key's scope ({scope})", received, i)
            )
    return errors


def not_the_author(items: Sequence[Feedback | None], caller: Caller) -> list[FieldError]:
    """Items naming a reviewer other than the key's principal (the author is the key's)."""
    return [
        FieldError(
            "reviewer",
            f"omitted, or {caller.principal!r} (the key's principal)",
            repr(item["reviewer"]),
            i,
        )
        for i, item in enumerate(items)
        if item is not None
        and item["reviewer"] is not None
        and item["reviewer"] != caller.principal
    ]


def to_events(
    items: Sequence[Feedback], now: datetime, author: str
) -> tuple[list[Feedback], list[bool]]:
    """The items as FeedbackEvents by ``author`` (the key's principal), with ids and time
    filled in (in place); and whether each came with its own feedback_id."""
    given = []
    for item in items:
        given.append(item["feedback_id"] is not None)
        if item["feedback_id"] is None:
            item["feedback_id"] = uuid.uuid4().hex
        if item["timestamp"] is None:
            item["timestamp"] = now
        item["reviewer"] = author
    return list(items), given


def first_occurrences(events: Sequence[Feedback], given: Sequence[bool]) -> list[int]:
    """The indices of the events that are not a repeat, earlier in the batch, of the same
    feedback_id for the same prediction (an id generated here repeats nothing)."""
    seen: set[tuple[str, str]] = set()
    first = []
    for i, (event, own_id) in enumerate(zip(events, given, strict=True)):
        if own_id:
            key = (event["prediction_id"], event["feedback_id"])
            if key in seen:
                continue
            seen.add(key)
        first.append(i)
    return first
