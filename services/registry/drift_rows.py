"""Drift over time as compact rows: one per window, merged into rollup buckets. No I/O.

A row holds what the heatmap and the fleet show of a window (or of a bucket of windows): its
start and end, the start of its first window, the windows, events and late events it covers,
the dataset verdicts, and per feature (and output, named ``output:<name>``) the drift
statistic, whether it drifted, and five counts: values, missing, out of range, unseen
categories, type violations. Features are positions in a version's ``Layout``, which only
grows (a row written before a name was added has fewer positions; the rest read as absent).

Merging is associative (max statistic — min for a smaller-is-worse one such as a p-value —,
any drifted, summed counts), so a bucket is merged from the buckets of the level below.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from vigil.wire.records import FeatureDrift, WindowReport

__all__ = [
    "COUNTS",
    "LEVELS",
    "SMALLER_IS_WORSE",
    "DriftRow",
    "Layout",
    "bucket_start",
    "decode_row",
    "encode_row",
    "from_micros",
    "layout_of",
    "level_for",
    "merge_rows",
    "micros",
    "quality_rates",
    "row_of",
]

# Rollup bucket sizes in seconds, finest first: 10 minutes, an hour, 6 hours, a day. Each
# level is merged from the one below (the first from the windows), so sizes divide each other.
LEVELS = (600, 3600, 21600, 86400)
COUNTS = ("count", "missing", "out_of_range", "unseen", "type_violations")
# Vigil's drift statistics grow with drift (psi, js, ks, wasserstein, chi2; every verdict is
# on psi today); a p-value shrinks, so if one were ever a verdict's statistic its worst is min.
SMALLER_IS_WORSE = frozenset({"ks_pvalue", "chi2_pvalue"})
_HEADER = struct.Struct("<qqqqqqdBBI")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
Floats = npt.NDArray[np.float64]


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (a naive time is UTC)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def bucket_start(at: int, seconds: int) -> int:
    """The start (micros) of the ``seconds``-long bucket, aligned on the epoch, holding ``at``."""
    return at - at % (seconds * 1_000_000)


@dataclass(frozen=True)
class Layout:
    """The feature positions of a version's rows, and each one's drift statistic."""

    names: tuple[str, ...]
    statistics: tuple[str, ...]

    def extended(self, other: Layout) -> Layout:
        """This layout with ``other``'s names it lacks appended (positions never move)."""
        fresh = [(n, s) for n, s in zip(other.names, other.statistics, strict=True)]
        fresh = [(n, s) for n, s in fresh if n not in self.names]
        if not fresh:
            return self
        return Layout(
            self.names + tuple(n for n, _ in fresh), self.statistics + tuple(s for _, s in fresh)
        )


def _named(report: WindowReport) -> list[tuple[str, FeatureDrift]]:
    return [(f.feature, f) for f in report.features] + [
        (f"output:{f.feature}", f) for f in report.outputs
    ]


def layout_of(report: WindowReport) -> Layout:
    named = _named(report)
    return Layout(tuple(n for n, _ in named), tuple(f.drift_statistic for _, f in named))


@dataclass
class DriftRow:
    """One window, or one bucket of windows (times in microseconds since the epoch)."""

    start: int
    end: int
    first: int  # start of its first window
    windows: int
    events: int
    late: int
    dataset_drift: bool
    drift_share: float
    multivariate: bool
    values: Floats  # per layout position; NaN: no statistic
    drifted: npt.NDArray[np.bool_]
    counts: npt.NDArray[np.int64]  # (positions, len(COUNTS))

    def padded(self, size: int) -> DriftRow:
        """This row over ``size`` positions (absent ones: no statistic, not drifted, 0)."""
        extra = size - self.values.size
        if extra <= 0:
            return self
        return DriftRow(
            self.start,
            self.end,
            self.first,
            self.windows,
            self.events,
            self.late,
            self.dataset_drift,
            self.drift_share,
            self.multivariate,
            np.concatenate([self.values, np.full(extra, np.nan)]),
            np.concatenate([self.drifted, np.zeros(extra, np.bool_)]),
            np.concatenate([self.counts, np.zeros((extra, len(COUNTS)), np.int64)]),
        )


def row_of(report: WindowReport, layout: Layout) -> DriftRow:
    """A window's row over ``layout`` (which must hold every name of the report)."""
    size = len(layout.names)
    position = {name: i for i, name in enumerate(layout.names)}
    values = np.full(size, np.nan)
    drifted = np.zeros(size, np.bool_)
    counts = np.zeros((size, len(COUNTS)), np.int64)
    for name, f in _named(report):
        i = position[name]
        values[i] = f.statistics.get(f.drift_statistic, math.nan)
        drifted[i] = f.drifted
        counts[i] = (f.count, f.missing, f.out_of_range, f.unseen_categories, f.type_violations)
    start = micros(report.window_start)
    return DriftRow(
        start=start,
        end=micros(report.window_end),
        first=start,
        windows=1,
        events=report.event_count,
        late=report.late_events,
        dataset_drift=report.dataset_drift,
        drift_share=report.drift_share,
        multivariate=bool(report.multivariate and report.multivariate.drifted),
        values=values,
        drifted=drifted,
        counts=counts,
    )


def merge_rows(rows: Sequence[DriftRow], start: int, end: int, layout: Layout) -> DriftRow:
    """The bucket [start, end) of ``rows`` (at least one): worst statistic, any drifted,
    summed counts."""
    size = max(len(layout.names), *(r.values.size for r in rows))
    padded = [r.padded(size) for r in rows]
    values = np.stack([r.values for r in padded])
    statistics = layout.statistics + ("",) * (size - len(layout.statistics))
    smaller = np.array([s in SMALLER_IS_WORSE for s in statistics], np.bool_)
    # fmax/fmin skip NaN (absent) unless every value is absent.
    merged: Floats = np.fmax.reduce(values)
    merged[smaller] = np.fmin.reduce(values)[smaller]
    return DriftRow(
        start=start,
        end=end,
        first=min(r.first for r in rows),
        windows=sum(r.windows for r in rows),
        events=sum(r.events for r in rows),
        late=sum(r.late for r in rows),
        dataset_drift=any(r.dataset_drift for r in rows),
        drift_share=max(r.drift_share for r in rows),
        multivariate=any(r.multivariate for r in rows),
        values=merged,
        drifted=np.logical_or.reduce([r.drifted for r in padded]),
        counts=np.sum([r.counts for r in padded], axis=0, dtype=np.int64),
    )


def encode_row(row: DriftRow) -> bytes:
    size = row.values.size
    header = _HEADER.pack(
        row.start,
        row.end,
        row.first,
        row.windows,
        row.events,
        row.late,
        row.drift_share,
        row.dataset_drift,
        row.multivariate,
        size,
    )
    body = (
        row.values.astype("<f8").tobytes()
        + row.drifted.astype(np.uint8).tobytes()
        + row.counts.astype("<i8").tobytes()
    )
    return zlib.compress(header + body, 1)


def decode_row(data: bytes) -> DriftRow:
    raw = zlib.decompress(data)
    start, end, first, windows, events, late, share, dataset, multi, size = _HEADER.unpack_from(raw)
    at = _HEADER.size
    values = np.frombuffer(raw, "<f8", size, at).astype(np.float64)
    at += 8 * size
    drifted = np.frombuffer(raw, np.uint8, size, at).astype(np.bool_)
    at += size
    counts = np.frombuffer(raw, "<i8", size * len(COUNTS), at).astype(np.int64)
    return DriftRow(
        start,
        end,
        first,
        windows,
        events,
        late,
        bool(dataset),
        share,
        bool(multi),
        values,
        drifted,
        counts.reshape(size, len(COUNTS)),
    )


def level_for(since: int, until: int, windows: int, columns: int) -> int:
    """The finest resolution with at most ``columns`` buckets over [since, until): 0 for the
    windows themselves (``windows`` of them in range), else a size of ``LEVELS`` (the
    coarsest when none is coarse enough)."""
    if windows <= columns:
        return 0
    for seconds in LEVELS:
        step = seconds * 1_000_000
        if -(-(until - bucket_start(since, seconds)) // step) <= columns:
            return seconds
    return LEVELS[-1]


def quality_rates(counts: npt.NDArray[np.int64]) -> dict[str, float]:
    """A row's data quality over all its features: each kind of fault per value received."""
    totals = counts.sum(axis=0)
    values = int(totals[0])

    def rate(kind: str) -> float:
        return int(totals[COUNTS.index(kind)]) / values if values else 0.0

    return {
        "missing_rate": rate("missing"),
        "out_of_range_rate": rate("out_of_range"),
        "unseen_rate": rate("unseen"),
        "type_violation_rate": rate("type_violations"),
    }
