"""The drift detector's internal records: its partials and changelog topics, and the packed
counts of a window profile (pydantic mirrors of ``schemas/vigil.DriftPartial.avsc``,
``vigil.DriftState.avsc``, ``vigil.DriftEventColumns.avsc`` and
``vigil.WindowProfileState.avsc``)."""

from __future__ import annotations

from pydantic import Field

from vigil.wire.base import Record
from vigil.wire.records import ReferenceProfile

__all__ = [
    "DriftColumn",
    "DriftEventColumns",
    "DriftOpenWindow",
    "DriftPartial",
    "DriftPartialWindow",
    "DriftState",
    "WindowProfileState",
]


class DriftColumn(Record):
    """One field's values over a batch of events, as little-endian numpy bytes."""

    kinds: bytes
    numbers: bytes
    codes: bytes
    vocab: list[str]


class DriftEventColumns(Record):
    """Raw prediction events of one model version, column by column."""

    timestamps: bytes
    features: dict[str, DriftColumn]
    prediction: DriftColumn
    score: bytes


class DriftPartialWindow(Record):
    start: int
    events: int
    first: int
    last: int
    profile: bytes


class DriftPartial(Record):
    """One drift worker's flush for one model version."""

    model_id: str
    model_version: str
    reference_version: int
    marks: dict[str, int]
    partitions: int = 0
    windows: list[DriftPartialWindow] = Field(default_factory=list)
    baseline: DriftEventColumns | None = None
    dead_lettered: int = 0


class DriftOpenWindow(Record):
    key: int
    first: int
    last: int
    events: int
    late: int
    stale: int
    profile: bytes


class DriftState(Record):
    """The merged open windows of one model version, for the drift detector's changelog."""

    model_id: str
    model_version: str
    reference_version: int
    windows: list[DriftOpenWindow] = Field(default_factory=list)
    marks: dict[str, int] = Field(default_factory=dict)
    closed_until: int = 0
    partitions: int = 0
    sequence: int = 0
    baseline: list[DriftEventColumns] = Field(default_factory=list)
    sequential: dict[str, list[float]] = Field(default_factory=dict)
    built_reference: ReferenceProfile | None = None


class WindowProfileState(Record):
    """The counts of a drift window profile: sizes, checks, and four packed arrays."""

    format: int
    fingerprint: int
    reference_version: int
    event_count: int
    ints_size: int
    floats_size: int
    extremes_size: int
    compression: str
    ints: bytes
    floats: bytes
    mins: bytes
    maxs: bytes
