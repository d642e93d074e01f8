"""The review queue's logic, no I/O: candidates, the mix of reasons, and which items to offer.

An expert is handed a mix of predictions to judge, each for one reason: ``random`` (a sample of
the model's recent predictions), ``low_confidence`` (a binary model's score near the 0.5
threshold), ``drifted`` (from a window the drift detector reported drifted, or from a group of
one of the model's segments that drifted in its window: ``feedback.segment_watch``) and
``disagreement`` (an item experts judged differently, or one an expert flagged as wrong: it
wants another opinion). ``Mix.quotas`` splits a request's ``limit`` among the reasons;
``Selection`` walks the candidates in that order as leases are won or lost, filling the
shortfall of one reason from the others.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vigil.wire.records import REVIEW_REASONS, ReviewReason

__all__ = [
    "REASONS",
    "Candidate",
    "DriftWindow",
    "Mix",
    "Reason",
    "Selection",
    "drift_window",
    "is_sampled",
    "low_confidence_margin",
    "second_opinion",
]

Reason = ReviewReason
REASONS = REVIEW_REASONS


@dataclass(frozen=True)
class Mix:
    """The share of each reason in what an expert is handed (shares add up to 1)."""

    shares: Mapping[Reason, float]

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``random=0.4,low_confidence=0.3,...``; reasons left out get none. ValueError, naming
        the part, for anything else."""
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in REASONS:
                raise ValueError(f"{part!r}: expected <reason>=<weight>, reason one of {REASONS}")
            try:
                weight = float(value)
            except ValueError:
                raise ValueError(f"{part!r}: the weight is not a number") from None
            if not 0 <= weight < float("inf"):
                raise ValueError(f"{part!r}: the weight must be a finite number >= 0")
            weights[name] = weights.get(name, 0.0) + weight
        return cls.of(weights)

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> Mix:
        """The shares of these weights (a model's ``review_mix``); ValueError when none is
        above 0."""
        total = sum(w for r, w in weights.items() if r in REASONS)
        if total <= 0:
            raise ValueError("at least one reason needs a weight above 0")
        return cls({r: weights[r] / total for r in REASONS if weights.get(r, 0.0) > 0})

    def quotas(self, limit: int) -> dict[Reason, int]:
        """How many of ``limit`` items each reason gets (largest remainders round up)."""
        exact = {r: self.shares[r] * limit for r in self.shares}
        counts = {r: int(v) for r, v in exact.items()}
        order = sorted(exact, key=lambda r: (-(exact[r] - counts[r]), REASONS.index(r)))
        for r in order[: limit - sum(counts.values())]:
            counts[r] += 1
        return {r: counts[r] for r in REASONS if r in counts}


@dataclass(frozen=True)
class Candidate:
    """A prediction an expert may be handed, as the review queue keeps it."""

    prediction_id: str
    model_id: str
    model_version: str
    timestamp: int  # event time, microseconds since the epoch
    features: Mapping[str, Any]
    prediction: Any
    score: float | None
    segments: Mapping[str, str] = field(default_factory=dict)  # segment -> its group

    @classmethod
    def of(cls, event: Mapping[str, Any], segments: Mapping[str, str] | None = None) -> Candidate:
        """From a ``PredictionEvent`` (its ``model_dump``) and the groups it falls in."""
        return cls(
            event["prediction_id"],
            event["model_id"],
            event["model_version"],
            micros(event["timestamp"]),
            dict(event["features"]),
            event["prediction"],
            event.get("score"),
            dict(segments or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "prediction_id": self.prediction_id,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "timestamp": self.timestamp,
            "features": dict(self.features),
            "prediction": self.prediction,
            "score": self.score,
            "segments": dict(self.segments),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(**data)


def micros(time: datetime) -> int:
    """Microseconds since the epoch (a naive time is taken as UTC)."""
    aware = time if time.tzinfo else time.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def is_sampled(prediction_id: str, rate: float) -> bool:
    """Whether a prediction is kept at ``rate`` (by a hash of its id: a re-read agrees)."""
    return rate >= 1.0 or zlib.crc32(prediction_id.encode()) < rate * 2**32


def low_confidence_margin(task: str | None, score: float | None, margin: float) -> float | None:
    """How far a binary model's score is from the 0.5 threshold, if within ``margin``; None
    otherwise (no score, not a probability, or a multiclass or regression model)."""
    if score is None or task not in (None, "binary") or not 0.0 <= score <= 1.0:
        return None
    distance = abs(score - 0.5)
    return distance if distance <= margin else None


@dataclass(frozen=True)
class DriftWindow:
    """An event-time window of one version that drifted: as a whole (the drift detector's
    report), or in one group of one of its segments (``segment`` and ``group`` set; what
    drifted in it, ``drifted``)."""

    model_id: str
    model_version: str
    start: int  # microseconds, inclusive
    end: int  # microseconds, exclusive
    segment: str | None = None
    group: str | None = None
    drifted: Sequence[str] = ()

    @property
    def field(self) -> str:
        """Its name among the model's drifted windows."""
        where = "" if self.segment is None else f"/{self.segment}={self.group}"
        return f"{self.model_version}/{self.start}{where}"

    def holds(self, candidate: Candidate) -> bool:
        return (
            candidate.model_version == self.model_version
            and self.start <= candidate.timestamp < self.end
            and (self.segment is None or candidate.segments.get(self.segment) == self.group)
        )


def drift_window(report: Mapping[str, Any]) -> DriftWindow | None:
    """The window of a ``WindowReport`` (its ``model_dump``) if anything in it drifted."""
    outputs = any(o.get("drifted") for o in report.get("outputs") or [])
    multivariate = (report.get("multivariate") or {}).get("drifted", False)
    whole = report.get("dataset_drift") or report.get("drifted_features")
    if not (whole or outputs or multivariate):
        return None
    return DriftWindow(
        report["model_id"],
        report["model_version"],
        micros(report["window_start"]),
        micros(report["window_end"]),
    )


def second_opinion(judgements: Mapping[str, str], max_opinions: int) -> int | None:
    """Whether an item judged so far by these experts (reviewer -> flag) wants another
    opinion, and how urgently: 0 when they disagree, 1 when the only expert flagged it as
    wrong; None when it does not (one ``ok``, agreement, or ``max_opinions`` experts)."""
    if not judgements or len(judgements) >= max_opinions:
        return None
    if len(set(judgements.values())) > 1:
        return 0
    if len(judgements) == 1 and next(iter(judgements.values())) != "ok":
        return 1
    return None


@dataclass
class Selection:
    """The order to try candidates in: each reason up to its quota, then the remaining
    candidates of the mix's reasons until ``limit`` items are taken. Call ``took`` for each
    lease won.

    ``pools`` lists each reason's candidates in preference order; an item in several pools is
    tried once, for the first reason that reaches it.
    """

    quotas: Mapping[Reason, int]
    pools: Mapping[Reason, Sequence[str]]
    limit: int
    taken: dict[str, Reason] = field(default_factory=dict)
    _tried: set[str] = field(default_factory=set)

    def took(self, prediction_id: str, reason: Reason) -> None:
        self.taken[prediction_id] = reason

    def count(self, reason: Reason) -> int:
        return sum(1 for r in self.taken.values() if r == reason)

    def candidates(self) -> Iterator[tuple[str, Reason]]:
        """(prediction id, reason) pairs to try, in order, until enough are taken."""
        for reason in REASONS:
            for pid in self.pools.get(reason, ()):
                if self.count(reason) >= self.quotas.get(reason, 0) or self._full():
                    break
                if pid not in self._tried:
                    self._tried.add(pid)
                    yield pid, reason
        for reason in (r for r in REASONS if r in self.quotas):  # a reason the mix leaves out: none
            for pid in self.pools.get(reason, ()):
                if self._full():
                    return
                if pid not in self._tried:
                    self._tried.add(pid)
                    yield pid, reason

    def _full(self) -> bool:
        return len(self.taken) >= self.limit
