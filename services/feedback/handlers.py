"""Feedback logic: wire input -> FeedbackEvents, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

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


def to_events(items: Sequence[FeedbackIn], now: datetime) -> list[FeedbackEvent]:
    """FeedbackEvents with ids and time filled in."""
    events = []
    for item in items:
        fields = item.model_dump()
        fields["feedback_id"] = item.feedback_id or uuid.uuid4().hex
        fields["timestamp"] = item.timestamp or now
        events.append(FeedbackEvent.model_validate(fields))
    return events
