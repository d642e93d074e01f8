"""Prediction logging logic: wire input -> validated PredictionEvents, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vigil.catalog import ModelCatalog
from vigil.schemas import FeatureValue, PredictionEvent
from vigil.validation import FieldError, check_features, describe


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


def unregistered(items: Sequence[PredictionIn], catalog: ModelCatalog) -> list[FieldError]:
    """One error per event whose model version is not registered."""
    return [
        FieldError(
            "model_version",
            f"a registered version of model {item.model_id!r}",
            describe(item.model_version),
            i,
        )
        for i, item in enumerate(items)
        if catalog.get(item.model_id, item.model_version) is None
    ]


def to_events(
    items: Sequence[PredictionIn], catalog: ModelCatalog, now: datetime
) -> tuple[list[PredictionEvent], list[FieldError]]:
    """Check each item's features against its model's spec and build the events."""
    events, errors = [], []
    for i, item in enumerate(items):
        version = catalog.get(item.model_id, item.model_version)
        assert version is not None, "call unregistered() first"
        problems = check_features(version.features, item.features, i)
        if problems:
            errors.extend(problems)
            continue
        fields = item.model_dump()
        fields["prediction_id"] = item.prediction_id or uuid.uuid4().hex
        fields["timestamp"] = item.timestamp or now
        events.append(PredictionEvent.model_validate(fields))
    return events, errors
