"""Model performance from outcomes (predictions joined with their labels): pure computation.

``accumulator`` keeps a window's predictions and outcomes (``WindowPerformance``: mergeable,
retractable, serialisable, of fixed size), in the bins of ``bins`` and the arrays of
``counts``; ``metrics`` computes realised metrics from it and ``intervals`` their confidence
intervals, ``cbpe`` estimates a binary model's metrics before its labels (calibrated on the
reference), ``value`` the business value, ``reference`` says what a version's reference is
(an uploaded sample's labelled rows, or its first full window), ``degradation`` which metrics
fell from the reference's beyond the risk tier's tolerance, and ``report`` puts them together
in a ``PerformanceReport``. ``labels`` says how labels are read. Nothing here does I/O.
"""

from vigil.performance.accumulator import CorruptState, WindowPerformance
from vigil.performance.bins import roc_auc_error_bound
from vigil.performance.cbpe import (
    Calibration,
    ExpectedConfusion,
    calibration_of,
    estimated_metrics,
    expected_confusion,
)
from vigil.performance.degradation import TOLERANCES, degraded_metrics
from vigil.performance.intervals import metric_intervals, wilson
from vigil.performance.metrics import classification_metrics, confusion_matrix, realised_metrics
from vigil.performance.reference import (
    MIN_COVERAGE,
    MIN_LABELLED,
    is_full_window,
    reference_outcomes,
)
from vigil.performance.report import WINDOW_SECONDS, performance_report, report_id, window_of
from vigil.performance.value import expected_value, realised_value, value_per_prediction

__all__ = [
    "MIN_COVERAGE",
    "MIN_LABELLED",
    "TOLERANCES",
    "WINDOW_SECONDS",
    "Calibration",
    "CorruptState",
    "ExpectedConfusion",
    "WindowPerformance",
    "calibration_of",
    "classification_metrics",
    "confusion_matrix",
    "degraded_metrics",
    "estimated_metrics",
    "expected_confusion",
    "expected_value",
    "is_full_window",
    "metric_intervals",
    "performance_report",
    "realised_metrics",
    "realised_value",
    "reference_outcomes",
    "report_id",
    "roc_auc_error_bound",
    "value_per_prediction",
    "wilson",
    "window_of",
]
