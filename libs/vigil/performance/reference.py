"""A model version's reference performance: the outcomes of its uploaded reference's labelled
rows, or, when it has none, its first full window.

``reference_outcomes`` counts the rows of an uploaded sample that have both a prediction and
an ``actual`` into a ``WindowPerformance`` (predictions and outcomes alike: only the labelled
rows), after checking their labels as the feedback service checks an ``actual``: a number for a
regression model; for a binary one true/1 or false/0 (any case, JSON values or text) unless it
names another positive label, then that label or the other classes the sample's predictions
show (any class label when they show none); for a multiclass one a class label (text, an
integer or a boolean, not a fraction). A binary model's scores there are probabilities.

``reference_groups`` counts the same rows per group of each feature segment (and of the
crossed pair), so that an uploaded reference has fairness too.

``is_full_window`` is the rule for a version without labelled reference rows: its reference is
the earliest of its windows that has ended (``window_end`` before now) with at least
``MIN_LABELLED`` outcomes covering at least ``MIN_COVERAGE`` of its predictions, as counted
when it is chosen; the reporter chooses it once and keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.labels import DEFAULT_POSITIVE, label_text
from vigil.wire.performance import Task
from vigil.wire.segments import SegmentSpec, value_groups
from vigil.wire.validation import FieldError, describe

__all__ = [
    "MIN_COVERAGE",
    "MIN_LABELLED",
    "is_full_window",
    "reference_groups",
    "reference_outcomes",
]

MIN_LABELLED = 100
MIN_COVERAGE = 0.5
_BOOLEAN = frozenset({"true", "1", "false", "0"})


def _is_class(value: Any) -> bool:
    """Text, an integer or a boolean (a float only when integral: 0.5 is no class)."""
    if isinstance(value, bool | int | str):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass(frozen=True)
class _Labels:
    """What a model version takes as a label, said for an error message."""

    expected: str
    accepts: Callable[[Any], bool]


def _labels(task: Task, positive: str | None, predictions: Sequence[Any]) -> _Labels:
    if task == "regression":
        return _Labels("a number (the model is a regression model)", _is_number)
    if task == "multiclass":
        return _Labels("a class label: text, an integer or a boolean", _is_class)
    if positive is None or positive.lower() in DEFAULT_POSITIVE:
        return _Labels(
            "true or 1 (the positive class) or false or 0 (the negative)",
            lambda v: _is_class(v) and label_text(v).lower() in _BOOLEAN,
        )
    classes = {label_text(p) for p in predictions if p is not None and _is_class(p)}
    negatives = sorted(classes - {positive})
    if not negatives:  # the sample does not show the negative class: any class label
        return _Labels(f"a class label ({positive!r} is the positive class)", _is_class)
    named = " or ".join(repr(n) for n in negatives)
    known = {positive, *negatives}
    return _Labels(
        f"{positive!r} (the positive class) or {named} (the negative)",
        lambda v: _is_class(v) and label_text(v) in known,
    )


def reference_outcomes(
    task: Task,
    positive_label: str | None,
    predictions: Sequence[Any],
    scores: Sequence[Any] | None,
    actuals: Sequence[Any],
) -> tuple[WindowPerformance | None, list[FieldError]]:
    """The outcomes of the rows with a prediction and an actual (None if there are none), or
    an error for each label (``prediction``, ``actual``) or binary ``score`` that the model
    version cannot have, naming its row.

    >>> window, errors = reference_outcomes("binary", None, [1, 0, 1], None, [1, 1, None])
    >>> (window.labelled, errors)
    (2, [])
    >>> reference_outcomes("regression", None, [1.0], None, ["high"])[1][0].field
    'actual'
    """
    labels = _labels(task, positive_label, predictions)
    window = WindowPerformance(task, positive_label)
    errors: list[FieldError] = []
    for i, (prediction, actual) in enumerate(zip(predictions, actuals, strict=True)):
        if prediction is None or actual is None:
            continue
        score = scores[i] if scores is not None else None
        found = [
            FieldError(name, labels.expected, describe(value), i)
            for name, value in (("prediction", prediction), ("actual", actual))
            if not labels.accepts(value)
        ]
        if task == "binary" and score is not None and not (_is_number(score) and 0 <= score <= 1):
            expected = "a probability in [0, 1] (the model is binary)"
            found.append(FieldError("score", expected, describe(score), i))
        if found:
            errors.extend(found)
        elif not errors:
            window.add_prediction(prediction, score)
            window.add_outcome(prediction, score, actual)
    if errors or window.labelled == 0:
        return None, errors
    return window, []


def is_full_window(predictions: int, labelled: int, window_end: datetime, now: datetime) -> bool:
    """Whether a window can be a version's reference (see the module): ended before ``now``,
    with ``MIN_LABELLED`` outcomes covering ``MIN_COVERAGE`` of its predictions."""
    if window_end >= now or labelled < MIN_LABELLED:
        return False
    return labelled >= MIN_COVERAGE * predictions


def reference_groups(
    task: Task,
    positive_label: str | None,
    segments: Sequence[SegmentSpec],
    cross: Sequence[str],
    rows: Sequence[Any],
    predictions: Sequence[Any],
    scores: Sequence[Any] | None,
    actuals: Sequence[Any],
) -> dict[tuple[str, str], WindowPerformance]:
    """The labelled rows' outcomes per (segment, group) of the feature segments (a tag
    segment is not in a reference's rows) and of the crossed pair, for rows
    ``reference_outcomes`` accepted."""
    features = [s for s in segments if not s.tag]
    found: dict[tuple[str, str], WindowPerformance] = {}
    for i, (row, prediction, actual) in enumerate(zip(rows, predictions, actuals, strict=True)):
        if prediction is None or actual is None or not isinstance(row, dict):
            continue
        score = scores[i] if scores is not None else None
        for pair in value_groups(features, cross, row):
            window = found.get(pair)
            if window is None:
                window = found[pair] = WindowPerformance(task, positive_label)
            window.add_prediction(prediction, score)
            window.add_outcome(prediction, score, actual)
    return found
