"""Model performance from outcomes (predictions joined with their labels): pure computation.

``accumulator`` keeps a window's predictions and outcomes (``WindowPerformance``: mergeable,
retractable, serialisable, of fixed size), in the bins of ``bins`` and the arrays of
``counts``; ``metrics`` computes realised metrics from it, ``cbpe`` estimates a binary model's
metrics before its labels, ``value`` the business value, and ``report`` puts them together in
a ``PerformanceReport``. ``labels`` says how labels are read. Nothing here does I/O.
"""

from vigil.performance.accumulator import CorruptState, WindowPerformance
from vigil.performance.bins import roc_auc_error_bound
from vigil.performance.cbpe import (
    Calibration,
    ExpectedConfusion,
    estimated_metrics,
    expected_confusion,
)
from vigil.performance.metrics import classification_metrics, confusion_matrix, realised_metrics
from vigil.performance.report import WINDOW_SECONDS, performance_report, report_id, window_of
from vigil.performance.value import expected_value, realised_value, value_per_prediction

__all__ = [
    "WINDOW_SECONDS",
    "Calibration",
    "CorruptState",
    "ExpectedConfusion",
    "WindowPerformance",
    "classification_metrics",
    "confusion_matrix",
    "estimated_metrics",
    "expected_confusion",
    "expected_value",
    "performance_report",
    "realised_metrics",
    "realised_value",
    "report_id",
    "roc_auc_error_bound",
    "value_per_prediction",
    "window_of",
]
