"""Prediction logging logic: wire input -> validated PredictionEvents, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass
class CheckedBatch:
    """A batch after checking: the valid events by index, and every problem found."""

    events: list[PredictionEvent] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    unknown_models: list[FieldError] = field(default_factory=list)

    @property
    def problems(self) -> list[FieldError]:
        return sorted(self.errors + self.unknown_models, key=lambda e: e.index or 0)


def check_batch(
    parsed: Sequence[PredictionIn | None], catalog: ModelCatalog, now: datetime
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
        fields = dict(item)
        fields["prediction_id"] = item.prediction_id or uuid.uuid4().hex
        fields["timestamp"] = item.timestamp or now
        checked.events.append(PredictionEvent.model_construct(**fields))
    return checked


def has_unregistered(parsed: Sequence[PredictionIn | None], catalog: ModelCatalog) -> bool:
    return any(p is not None and catalog.get(p.model_id, p.model_version) is None for p in parsed)


def first_occurrences(events: Sequence[PredictionEvent]) -> list[PredictionEvent]:
    """Each prediction_id's first event in the batch; later ones are duplicates."""
    seen: set[str] = set()
    unique = []
    for event in events:
        if event.prediction_id not in seen:
            seen.add(event.prediction_id)
            unique.append(event)
    return unique
