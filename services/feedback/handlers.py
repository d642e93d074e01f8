"""Feedback logic: wire input -> FeedbackEvents, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.wire.records import FeedbackEvent


class FeedbackIn(BaseModel):
    """A true outcome or a reviewer's flag for one prediction; needs at least one of the two."""

    model_config = ConfigDict(extra="forbid")
    feedback_id: str | None = Field(default=None, min_length=1, max_length=200)
    prediction_id: str = Field(min_length=1, max_length=200)
    model_id: str | None = None
    actual: bool | int | float | str | None = None
    flag: Literal["incorrect", "unexpected", "harmful", "ok"] | None = None
    comment: str | None = Field(default=None, max_length=10_000)
    reviewer: str | None = None
    source: Literal["sme", "ground_truth", "system"] = "sme"
    timestamp: datetime | None = None

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
