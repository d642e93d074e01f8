"""The feedback joiner's state record (pydantic mirror of ``schemas/vigil.JoinEntry.avsc``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from vigil.wire.records import FeedbackEvent, PredictionEvent, Record

__all__ = ["JoinEntry", "OrphanMark"]


class OrphanMark(Record):
    """The performance window (of the feedback's model) a label without its prediction is
    counted in as orphaned."""

    model_id: str
    model_version: str
    window_start: datetime
    window_end: datetime


class JoinEntry(Record):
    """What the joiner keeps of one prediction id (see the schema's docs)."""

    prediction: PredictionEvent | None = None
    label: FeedbackEvent | None = None
    label_joined: bool = False
    seen_feedback: list[str] = Field(default_factory=list)
    waiting: list[FeedbackEvent] = Field(default_factory=list)
    first_seen: datetime
    orphan: OrphanMark | None = None
    prediction_event: bytes | None = None  # the prediction as consumed (single-object Avro)

    @property
    def has_prediction(self) -> bool:
        return self.prediction is not None or self.prediction_event is not None
