"""A window's performance accumulator: every prediction of one model version and event-time
window, and the outcomes (predictions joined with their labels) among them.

``WindowPerformance`` counts predictions (``add_prediction``, labelled or not) and outcomes
(``add_outcome``; ``sign=-1`` takes one back, so a corrected label moves every count from the
old value to the new exactly once: take back the old outcome, add the new), merges with another
window of the same task (``merge``) and serialises as a ``vigil.PerformanceState`` Avro record
(``to_bytes`` / ``from_bytes``; about 4 kB for a busy binary window, zlib-compressed). Its size
does not grow with traffic: 450 numbers, plus 3,000 score-bin counts for a binary model or
labels² for a multiclass one (at most ``MAX_CLASSES``²).
Label latencies are counted in log-spaced bins (quantiles within 2.9 %, see
``vigil.performance.bins``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from functools import cache
from typing import Self

import numpy as np
import numpy.typing as npt

from vigil.performance.bins import (
    LATENCY_BINS,
    Floats,
    Ints,
    latency_bin,
    latency_quantile,
    score_bin,
)
from vigil.performance.counts import BinaryCounts, ClassCounts, ErrorSums
from vigil.performance.labels import is_positive, label_number, label_text
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceState, Task
from vigil.wire.records import Label

__all__ = ["STATE_FORMAT", "CorruptState", "WindowPerformance"]

STATE_FORMAT = 1  # PerformanceState.format this code writes and reads
PREDICTIONS, LABELLED = range(2)
_COMMON = 2 + LATENCY_BINS  # counts every task keeps: predictions, labelled, latencies


class CorruptState(ValueError):
    """Bytes that are no performance state this code can read."""


@cache
def _codec() -> Codec[PerformanceState]:
    return Codec(PerformanceState)


def _sign(sign: int) -> int:
    if sign not in (1, -1):
        raise ValueError(f"sign: +1 (add) or -1 (take back) was expected, received {sign!r}")
    return sign


def _score(score: float | None) -> float | None:
    """A binary model's score, None if it gave none (or NaN); ValueError outside [0, 1]."""
    if score is None or math.isnan(score):
        return None
    score_bin(score)  # checks the range
    return float(score)


class WindowPerformance:
    """Counts and sums of one model version's predictions and outcomes in one window.

    ``positive_label`` names a binary model's positive class (None: true or 1); the score of a
    binary model is the probability of that class, and of other models it is not used (a
    multiclass model's score is only its predicted class's confidence, so log loss, which
    needs every class's probability, is not computed for it).
    """

    def __init__(self, task: Task, positive_label: str | None = None) -> None:
        if task not in ("binary", "multiclass", "regression"):
            raise ValueError(f"task: binary, multiclass or regression, received {task!r}")
        self.task: Task = task
        self.positive_label = positive_label if task == "binary" else None
        self.ints: Ints = np.zeros(_COMMON, dtype="<i8")
        self.latencies = self.ints[2:]
        self.binary = BinaryCounts() if task == "binary" else None
        self.classes = ClassCounts() if task == "multiclass" else None
        self.errors = ErrorSums() if task == "regression" else None

    @property
    def predictions(self) -> int:
        """Predictions counted, labelled or not."""
        return int(self.ints[PREDICTIONS])

    @property
    def labelled(self) -> int:
        """Outcomes counted: predictions with a label."""
        return int(self.ints[LABELLED])

    def add_prediction(self, prediction: Label, score: float | None = None, sign: int = 1) -> None:
        """Count a prediction, labelled or not (``sign=-1``: take one back)."""
        sign = _sign(sign)
        if self.binary is not None:
            s = _score(score)
            self.binary.add_prediction(
                is_positive(prediction, self.positive_label),
                None if s is None else score_bin(s),
                sign,
            )
        self.ints[PREDICTIONS] += sign

    def add_predictions(
        self,
        count: int,
        positive: npt.NDArray[np.bool_] | None = None,
        bins: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Count ``count`` predictions at once: for a binary model, whether each is the
        positive class and its score bin (-1: no score), as ``add_prediction`` would one by
        one."""
        if self.binary is not None and positive is not None and bins is not None:
            self.binary.ints[self.binary.PREDICTED_POSITIVE] += int(np.count_nonzero(positive))
            scored = bins[bins >= 0]
            self.binary.scored += np.bincount(scored, minlength=self.binary.scored.size).astype(
                self.binary.scored.dtype
            )
        self.ints[PREDICTIONS] += count

    def add_outcome(
        self,
        prediction: Label,
        score: float | None,
        actual: Label,
        label_latency_seconds: float | None = None,
        sign: int = 1,
    ) -> None:
        """Count an outcome (``sign=-1``: take back one counted before; a latency of None or
        NaN is unknown); ValueError, counting nothing, if a binary score is no probability or a
        regression label no number."""
        sign = _sign(sign)
        if self.binary is not None:
            s = _score(score)
            self.binary.add_outcome(
                is_positive(prediction, self.positive_label),
                is_positive(actual, self.positive_label),
                s,
                None if s is None else score_bin(s),
                sign,
            )
        elif self.classes is not None:
            self.classes.add_outcome(label_text(prediction), label_text(actual), sign)
        elif self.errors is not None:
            predicted = label_number(prediction, "prediction")
            self.errors.add_outcome(predicted, label_number(actual, "actual"), sign)
        self.ints[LABELLED] += sign
        if label_latency_seconds is not None and not math.isnan(label_latency_seconds):
            self.latencies[latency_bin(label_latency_seconds)] += sign

    def outcome_error(self, prediction: Label, score: float | None, actual: Label) -> str | None:
        """Why ``add_outcome`` would count nothing of this outcome (its ValueError), or None."""
        try:
            if self.binary is not None:
                _score(score)
            elif self.errors is not None:
                label_number(prediction, "prediction")
                label_number(actual, "actual")
        except ValueError as exc:
            return str(exc)
        return None

    def add_outcomes(
        self,
        predictions: Sequence[Label],
        scores: Sequence[float | None],
        actuals: Sequence[Label],
        latencies: Sequence[float | None],
    ) -> None:
        """Count outcomes at once, as ``add_outcome`` would one after the other: the same
        counts, and the same sums added in the same order; ValueError, counting none, if one
        cannot be counted (``outcome_error`` says which)."""
        if self.binary is None:
            for error in map(self.outcome_error, predictions, scores, actuals):
                if error is not None:
                    raise ValueError(error)
            for prediction, score, actual, seconds in zip(
                predictions, scores, actuals, latencies, strict=True
            ):
                self.add_outcome(prediction, score, actual, seconds)
            return
        usable = [_score(score) for score in scores]  # raises before anything is counted
        flags: dict[tuple[type, Label], bool] = {}  # True, 1 and "1" are told apart

        def positive(value: Label) -> bool:
            key = (type(value), value)
            found = flags.get(key)
            if found is None:
                found = flags[key] = is_positive(value, self.positive_label)
            return found

        predicted = [positive(p) for p in predictions]
        positives = [positive(a) for a in actuals]
        self.binary.add_outcomes(predicted, positives, usable)
        self.ints[LABELLED] += len(usable)
        known = [latency_bin(s) for s in latencies if s is not None and not math.isnan(s)]
        if known:
            self.latencies += np.bincount(known, minlength=LATENCY_BINS)

    def label_latency(self, q: float) -> float | None:
        """The ``q`` quantile of the label latencies, in seconds; None if none are known."""
        return latency_quantile(self.latencies, q)

    def merge(self, other: Self) -> None:
        """Add another window's counts (same task and positive label); ValueError otherwise."""
        if (other.task, other.positive_label) != (self.task, self.positive_label):
            raise ValueError(
                f"a {self.task} window (positive label {self.positive_label!r}) cannot merge a"
                f" {other.task} one (positive label {other.positive_label!r})"
            )
        self.ints += other.ints
        if self.binary is not None and other.binary is not None:
            self.binary.merge(other.binary)
        if self.classes is not None and other.classes is not None:
            self.classes.merge(other.classes)
        if self.errors is not None and other.errors is not None:
            self.errors.merge(other.errors)

    def _arrays(self) -> tuple[Ints, Floats]:
        part = self.binary or self.errors
        if part is not None:
            return np.concatenate([self.ints, part.ints]), part.floats
        assert self.classes is not None
        return np.concatenate([self.ints, self.classes.ints]), np.zeros(0, dtype="<f8")

    def to_bytes(self) -> bytes:
        """The window as a ``vigil.PerformanceState`` in Avro single-object encoding."""
        ints, floats = self._arrays()
        state = PerformanceState(
            format=STATE_FORMAT,
            task=self.task,
            positive_label=self.positive_label,
            labels=list(self.classes.labels) if self.classes is not None else [],
            compression="zlib",
            ints_size=ints.size,
            floats_size=floats.size,
            ints=zlib.compress(ints.tobytes(), 1),
            floats=zlib.compress(floats.tobytes(), 1),
        )
        return _codec().encode(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowPerformance:
        """A window from :meth:`to_bytes` output; CorruptState if it is none."""
        try:
            state = _codec().decode(data)
        except ValueError as e:
            raise CorruptState(f"corrupt performance state: {e}") from e
        if state.format != STATE_FORMAT or state.compression not in ("zlib", "none"):
            raise CorruptState(
                f"unknown performance state format {state.format} ({state.compression!r})"
            )
        window = cls(state.task, state.positive_label)
        if window.classes is not None:
            if len(set(state.labels)) != len(state.labels):
                raise CorruptState("corrupt performance state: a label is repeated")
            window.classes = ClassCounts(state.labels)
        ints, floats = window._arrays()
        if (state.ints_size, state.floats_size) != (ints.size, floats.size):
            raise CorruptState(
                f"corrupt performance state: {state.ints_size} counts and {state.floats_size}"
                f" sums where a {state.task} window has {ints.size} and {floats.size}"
            )
        counts: Ints = np.frombuffer(_unpack(state.ints, state.compression, ints), "<i8")
        sums: Floats = np.frombuffer(_unpack(state.floats, state.compression, floats), "<f8")
        window.ints[:] = counts[:_COMMON]
        rest = counts[_COMMON:].copy()
        if window.binary is not None:
            window.binary = BinaryCounts(rest, sums.copy())
        elif window.errors is not None:
            window.errors = ErrorSums(rest, sums.copy())
        else:
            window.classes = ClassCounts(state.labels, rest)
        return window


def _unpack(packed: bytes, compression: str, like: Ints | Floats) -> bytes:
    """The bytes of an array of ``like``'s size and type, decompressed; CorruptState if not."""
    if compression == "zlib":
        try:
            packed = zlib.decompress(packed)
        except zlib.error as e:
            raise CorruptState(f"corrupt performance state: {e}") from e
    if len(packed) != like.nbytes:
        raise CorruptState(
            f"corrupt performance state: {len(packed)} bytes where {like.nbytes} were expected"
        )
    return packed
