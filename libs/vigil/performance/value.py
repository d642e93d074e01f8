"""Business value of a performance window: what its outcomes were worth, from a
``vigil.BusinessValue`` (per binary outcome cell, per multiclass actual and predicted label, or
per unit of regression error), and what its predictions are expected to be worth before their
labels (binary, from CBPE's expected confusion counts)."""

from __future__ import annotations

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.cbpe import ExpectedConfusion
from vigil.wire.performance import BusinessValue

__all__ = ["expected_value", "realised_value", "value_per_prediction"]


def realised_value(window: WindowPerformance, value: BusinessValue) -> float:
    """The summed value of the window's labelled outcomes (multiclass: outcomes of labels
    beyond the window's vocabulary are not valued)."""
    if window.binary is not None:
        tp, fp, tn, fn = window.binary.confusion()
        return (
            tp * value.true_positive
            + fp * value.false_positive
            + tn * value.true_negative
            + fn * value.false_negative
        )
    if window.classes is not None:
        labels = window.classes.labels
        matrix = window.classes.matrix
        total = 0.0
        for i, actual in enumerate(labels):
            row = value.matrix.get(actual, {})
            for j, predicted in enumerate(labels):
                if matrix[i, j] and predicted in row:
                    total += int(matrix[i, j]) * row[predicted]
        return total
    assert window.errors is not None
    return -value.cost_per_unit_error * window.errors.sum(window.errors.ABS_ERROR)


def value_per_prediction(window: WindowPerformance, value: BusinessValue) -> float | None:
    """The realised value per labelled prediction; None without any."""
    n = window.labelled
    return realised_value(window, value) / n if n > 0 else None


def expected_value(confusion: ExpectedConfusion, value: BusinessValue) -> float:
    """The expected value of a binary window's scored predictions, labelled or not."""
    return (
        confusion.true_positive * value.true_positive
        + confusion.false_positive * value.false_positive
        + confusion.true_negative * value.true_negative
        + confusion.false_negative * value.false_negative
    )
