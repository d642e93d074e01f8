"""Which of a window's metrics degraded from the reference's: worse by more than the risk
tier's tolerance, and surely so (the window's whole 95 % interval lies beyond it).

A metric is worse when it is lower for accuracy, precision, recall, f1 and roc_auc (higher is
better), and higher for log_loss, brier, mae, rmse and the size of mean_error (lower is
better). The tolerance (``TOLERANCES``: low 0.10, medium 0.07, high 0.05, critical 0.03) is
absolute for the metrics between 0 and 1 and for log_loss; for the regression errors, which
are in the target's units, it is relative: a share of the reference's mae (for mae) or rmse
(for rmse and mean_error). A metric without an interval (``vigil.performance.intervals``: ece,
r2, the multiclass macro metrics) or missing from the reference is never judged, so it never
degrades. A window of 40 labels whose accuracy fell from 0.90 to 0.80 does not degrade at the
high tier (its interval reaches 0.895, above 0.90 - 0.05); one of 5,000 does (it reaches
0.811). The reference is taken as exact: its own sampling noise is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from vigil.performance.intervals import Interval
from vigil.wire.records import Severity

__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "TOLERANCES", "degraded_metrics", "margin"]

TOLERANCES: dict[Severity, float] = {"low": 0.10, "medium": 0.07, "high": 0.05, "critical": 0.03}
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "rmse", "mean_error"})
# Regression errors: their tolerance is a share of this reference metric.
_SCALE = {"mae": "mae", "rmse": "rmse", "mean_error": "rmse"}


def margin(name: str, reference: Mapping[str, float], tolerance: float) -> float | None:
    """How much worse than the reference metric ``name`` may be before it degrades; None if
    the reference cannot say (no such metric, or no scale for a regression error).

    >>> margin("accuracy", {"accuracy": 0.9}, 0.05), margin("mae", {"mae": 20.0}, 0.05)
    (0.05, 1.0)
    """
    if name not in reference:
        return None
    scale = _SCALE.get(name)
    if scale is None:
        return tolerance
    return tolerance * abs(reference[scale]) if scale in reference else None


def _size(interval: Interval) -> Interval:
    """The interval of |x| for an interval of x."""
    low, high = interval
    if low <= 0.0 <= high:
        return 0.0, max(-low, high)
    return min(abs(low), abs(high)), max(abs(low), abs(high))


def _beyond(name: str, interval: Interval, reference: float, allowed: float) -> bool:
    """Whether the whole interval is worse than ``reference`` by more than ``allowed``."""
    if name in HIGHER_IS_BETTER:
        return interval[1] < reference - allowed
    if name == "mean_error":
        return _size(interval)[0] > abs(reference) + allowed
    return name in LOWER_IS_BETTER and interval[0] > reference + allowed


def degraded_metrics(
    intervals: Mapping[str, Interval], reference: Mapping[str, float], tolerance: float
) -> list[str]:
    """The metrics, sorted, whose whole interval is worse than the reference by more than
    their margin (``margin``).

    >>> degraded_metrics({"accuracy": (0.78, 0.82), "recall": (0.6, 0.9)},
    ...                  {"accuracy": 0.9, "recall": 0.9}, 0.05)
    ['accuracy']
    """
    found: list[str] = []
    for name, interval in sorted(intervals.items()):
        allowed = margin(name, reference, tolerance)
        if allowed is not None and _beyond(name, interval, reference[name], allowed):
            found.append(name)
    return found
