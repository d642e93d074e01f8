"""The feedback joiner's state record (pydantic mirror of ``schemas/vigil.JoinEntry.avsc``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from vigil.wire.records import FeedbackEvent, PredictionEvent, Record

__all__ = ["JoinEntry"]


class JoinEntry(Record):
    """What the joiner keeps of one prediction id (see the schema's docs)."""

    prediction: PredictionEvent | None = None
    label: FeedbackEvent | None = None
    label_joined: bool = False
    seen_feedback: list[str] = Field(default_factory=list)
    waiting: list[FeedbackEvent] = Field(default_factory=list)
    first_seen: datetime
