"""Partials: what one worker counted of one model version between two flushes. No Kafka here.

Workers profile the events of the prediction partitions they own into *partials* (one per model
version and flush: a window profile per window touched, plus each partition's event-time mark,
and how many of the version's events were dead-lettered instead), sent as ``vigil.DriftPartial``
Avro records to the worker that owns the model version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from vigil.drift.window import WindowProfile
from vigil.wire.codec import Codec
from vigil.wire.columns import Batch, Column, concat_batches
from vigil.wire.drift_state import DriftColumn, DriftEventColumns, DriftPartial, DriftPartialWindow
from vigil.wire.records import ModelVersion

__all__ = [
    "MICROS",
    "Partial",
    "PartialBuilder",
    "PartialWindow",
    "WindowPolicy",
    "batch_from_wire",
    "batch_to_wire",
    "split_by_window",
]

MICROS = 1_000_000
PARTIAL_CODEC = Codec(DriftPartial)


@dataclass(frozen=True)
class WindowPolicy:
    """Detector-wide defaults; a model's DriftConfig overrides window size and lateness."""

    size_seconds: float = 60.0
    lateness_seconds: float = 10.0
    idle_close_seconds: float = 15.0
    reference_size: int = 5000

    def size(self, version: ModelVersion) -> int:
        """Time window size of ``version`` in microseconds."""
        return int((version.drift.window_seconds or self.size_seconds) * MICROS)

    def lateness(self, version: ModelVersion) -> int:
        lateness = version.drift.lateness_seconds
        return int((self.lateness_seconds if lateness is None else lateness) * MICROS)


def split_by_window(
    timestamps: npt.NDArray[np.int64], size: int | None
) -> dict[int, npt.NDArray[np.intp]]:
    """Positions of the events in each time window, by start (micros); one group if no size."""
    if size is None:
        return {0: np.arange(timestamps.size, dtype=np.intp)}
    starts = timestamps - timestamps % size
    unique, inverse = np.unique(starts, return_inverse=True)
    if unique.size == 1:
        return {int(unique[0]): np.arange(timestamps.size, dtype=np.intp)}
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(unique.size + 1))
    return {int(s): order[bounds[i] : bounds[i + 1]] for i, s in enumerate(unique)}


def _column_to_wire(column: Column) -> DriftColumn:
    return DriftColumn(
        kinds=column.kinds.astype("<i1").tobytes(),
        numbers=column.numbers.astype("<f8").tobytes(),
        codes=column.codes.astype("<i4").tobytes(),
        vocab=list(column.vocab),
    )


def _column_from_wire(column: DriftColumn, n: int) -> Column:
    kinds = np.frombuffer(column.kinds, "<i1").astype(np.int8)
    numbers = np.frombuffer(column.numbers, "<f8").astype(np.float64)
    codes = np.frombuffer(column.codes, "<i4").astype(np.int32)
    if not kinds.size == numbers.size == codes.size == n:
        raise ValueError(f"a column of {kinds.size}/{numbers.size}/{codes.size} values, not {n}")
    if codes.size and int(codes.max()) >= len(column.vocab):
        raise ValueError("a column's codes point past its vocabulary")
    return Column(kinds, numbers, codes, column.vocab)


def batch_to_wire(batch: Batch) -> DriftEventColumns:
    """The events of ``batch`` as an Avro record (its model version travels alongside)."""
    return DriftEventColumns(
        timestamps=batch.timestamps.astype("<i8").tobytes(),
        features={name: _column_to_wire(c) for name, c in batch.features.items()},
        prediction=_column_to_wire(batch.prediction),
        score=batch.score.astype("<f8").tobytes(),
    )


def batch_from_wire(record: DriftEventColumns, model_id: str, model_version: str) -> Batch:
    """The batch ``batch_to_wire`` wrote; ValueError if its columns disagree in length."""
    timestamps = np.frombuffer(record.timestamps, "<i8").astype(np.int64)
    n = timestamps.size
    score = np.frombuffer(record.score, "<f8").astype(np.float64)
    if score.size != n:
        raise ValueError(f"{score.size} scores for {n} events")
    return Batch(
        model_id,
        model_version,
        np.arange(n, dtype=np.intp),
        timestamps,
        {name: _column_from_wire(c, n) for name, c in record.features.items()},
        _column_from_wire(record.prediction, n),
        score,
    )


@dataclass
class PartialWindow:
    """What one worker counted of one window since its last flush."""

    start: int  # window start (micros); 0 for event-count windows
    events: int
    first: int  # earliest and latest event time counted
    last: int
    profile: bytes  # WindowProfile.to_bytes()


@dataclass
class Partial:
    """One worker's flush for one model version: its windows' profiles and partition marks.

    Without a reference yet, the worker sends the events themselves (``baseline``) so that the
    version's owner can build the reference from the first events, wherever they were read.
    ``dead_lettered`` counts the version's events sent to the dead-letter topic instead: they
    are in no window, mark or baseline, only in the version's traffic reports.
    """

    model_id: str
    model_version: str
    reference_version: int
    marks: dict[int, int]  # source partition -> latest event time read there (micros)
    windows: list[PartialWindow] = field(default_factory=list)
    baseline: Batch | None = None
    partitions: int = 0  # of the predictions topic: how many marks make a watermark
    dead_lettered: int = 0

    @property
    def events(self) -> int:
        """The events profiled (dead-lettered ones are not)."""
        return sum(w.events for w in self.windows) + (len(self.baseline) if self.baseline else 0)

    @property
    def rejects_only(self) -> bool:
        """Whether it carries nothing but a count of dead-lettered events."""
        return not (self.marks or self.windows or self.baseline is not None)

    @property
    def newest(self) -> int | None:
        """The newest event time counted (micros), None if it carries none. The marks cover
        every event, baseline included, so the baseline's timestamps are not scanned."""
        lasts = (w.last for w in self.windows if w.events)
        return max((*self.marks.values(), *lasts), default=None)

    def check(self, latest: int) -> None:
        """ValueError unless the partial is plausible: no event time past ``latest`` (micros),
        no negative count, no window whose first event comes after its last."""
        times = [*self.marks.values(), *(w.last for w in self.windows if w.events)]
        if self.baseline is not None and len(self.baseline):
            times.append(int(self.baseline.timestamps.max()))
        if times and max(times) > latest:
            raise ValueError(f"event time {max(times)} µs is in the future")
        absurd = [w for w in self.windows if w.events < 0 or (w.events and w.first > w.last)]
        if self.partitions < 0 or self.dead_lettered < 0 or absurd:
            raise ValueError("negative counts or a window that ends before it starts")

    def to_bytes(self) -> bytes:
        """A ``vigil.DriftPartial`` in Avro single-object encoding."""
        record = DriftPartial(
            model_id=self.model_id,
            model_version=self.model_version,
            reference_version=self.reference_version,
            marks={str(p): m for p, m in self.marks.items()},
            partitions=self.partitions,
            windows=[
                DriftPartialWindow(
                    start=w.start, events=w.events, first=w.first, last=w.last, profile=w.profile
                )
                for w in self.windows
            ],
            baseline=batch_to_wire(self.baseline) if self.baseline is not None else None,
            dead_lettered=self.dead_lettered,
        )
        return PARTIAL_CODEC.encode(record)

    @staticmethod
    def from_bytes(data: bytes) -> Partial:
        """The partial ``to_bytes`` wrote; DecodeError or ValueError if it is not one."""
        r = PARTIAL_CODEC.decode(data)
        return Partial(
            r.model_id,
            r.model_version,
            r.reference_version,
            {int(p): m for p, m in r.marks.items()},
            [PartialWindow(w.start, w.events, w.first, w.last, w.profile) for w in r.windows],
            batch_from_wire(r.baseline, r.model_id, r.model_version) if r.baseline else None,
            r.partitions,
            r.dead_lettered,
        )


@dataclass
class PartialBuilder:
    """What one worker counted of one model version since its last flush."""

    version: ModelVersion
    windows: dict[int, tuple[WindowProfile, list[int]]] = field(default_factory=dict)
    marks: dict[int, int] = field(default_factory=dict)
    baseline: list[Batch] = field(default_factory=list)
    events: int = 0
    dead_lettered: int = 0  # the version's events sent to the dead-letter topic instead

    def add(self, batch: Batch, partitions: npt.NDArray[np.int32], size: int | None) -> None:
        self.events += len(batch)
        for partition in np.unique(partitions):
            mark = int(batch.timestamps[partitions == partition].max())
            self.marks[int(partition)] = max(self.marks.get(int(partition), mark), mark)
        reference = self.version.reference
        if reference is None:
            self.baseline.append(batch)
            return
        for start, index in split_by_window(batch.timestamps, size).items():
            entry = self.windows.get(start)
            if entry is None:
                entry = self.windows[start] = (
                    WindowProfile(reference, self.version.features),
                    [0, 2**63 - 1, -(2**63)],
                )
            part = batch.take(index)
            entry[0].add(part)
            counts = entry[1]
            counts[0] += len(part)
            counts[1] = min(counts[1], int(part.timestamps.min()))
            counts[2] = max(counts[2], int(part.timestamps.max()))

    def partial(self, partitions: int = 0) -> Partial:
        reference = self.version.reference
        return Partial(
            self.version.model_id,
            self.version.version,
            reference.version if reference else 0,
            self.marks,
            [
                PartialWindow(start, counts[0], counts[1], counts[2], profile.to_bytes())
                for start, (profile, counts) in self.windows.items()
            ],
            concat_batches(self.baseline) if self.baseline else None,
            partitions,
            self.dead_lettered,
        )
