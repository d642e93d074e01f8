"""Feedback logic: wire input -> FeedbackEvents, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from vigil.wire.access import ALL_MODELS, Caller, Permission
from vigil.wire.records import FeedbackEvent, utcnow
from vigil.wire.shapes import (
    MAX_CLOCK_SKEW_SECONDS,
    Identifier,
    InputLabel,
    Name,
    Text,
    Timestamp,
    ahead_of,
)
from vigil.wire.validation import FieldError

__all__ = ["FeedbackIn", "not_the_author", "refused", "to_events"]

# The permission each source of feedback needs.
_SOURCES = {
    "sme": Permission.FEEDBACK_REVIEW,
    "ground_truth": Permission.FEEDBACK_TRUTH,
    "system": Permission.FEEDBACK_TRUTH,
}


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


def refused(items: Sequence[FeedbackIn | None], caller: Caller) -> list[FieldError]:
    """Items the caller may not send: a source its roles do not allow (``sme`` feedback needs
    the sme role, ``ground_truth``/``system`` the producer role), or a model outside its scope
    (a key scoped to some models must name the model)."""
    errors = []
    sources = [s for s, p in _SOURCES.items() if caller.may(p)]
    for i, item in enumerate(items):
        if item is None:
            continue
        if not caller.may(_SOURCES[item.source]):
            expected = f"a source the key's roles allow ({', '.join(sources) or 'none'})"
            errors.append(FieldError("source", expected, repr(item.source), i))
        elif ALL_MODELS not in caller.models and (
            item.model_id is None or not caller.covers(item.model_id)
        ):
            scope = ", ".join(sorted(caller.models))
            received = "missing" if item.model_id is None else repr(item.model_id)
            errors.append(
                FieldError("model_id", f"a model in the key's scope ({scope})", received, i)
            )
    return errors


def not_the_author(items: Sequence[FeedbackIn | None], caller: Caller) -> list[FieldError]:
    """Items naming a reviewer other than the key's principal (the author is the key's)."""
    return [
        FieldError(
            "reviewer",
            f"omitted, or {caller.principal!r} (the key's principal)",
            repr(item.reviewer),
            i,
        )
        for i, item in enumerate(items)
        if item is not None and item.reviewer is not None and item.reviewer != caller.principal
    ]


def to_events(items: Sequence[FeedbackIn], now: datetime, author: str) -> list[FeedbackEvent]:
    """FeedbackEvents with ids and time filled in, by ``author`` (the key's principal)."""
    events = []
    for item in items:
        fields = item.model_dump()
        fields["feedback_id"] = item.feedback_id or uuid.uuid4().hex
        fields["timestamp"] = item.timestamp or now
        fields["reviewer"] = author
        events.append(FeedbackEvent.model_validate(fields))
    return events
