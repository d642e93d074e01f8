"""A window's ``PerformanceReport``: its accumulator's counts, realised metrics with their
confidence intervals, CBPE estimates, the reference's metrics, which metrics degraded from them,
and business value, put together (no I/O: the streaming stage publishes it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.performance.accumulator import WindowPerformance
from vigil.performance.cbpe import Calibration, estimated_metrics, expected_confusion
from vigil.performance.degradation import degraded_metrics
from vigil.performance.intervals import metric_intervals
from vigil.performance.metrics import confusion_matrix, realised_metrics
from vigil.performance.value import expected_value, realised_value, value_per_prediction
from vigil.wire.performance import BusinessValue, PerformanceReport

__all__ = ["WINDOW_SECONDS", "performance_report", "report_id", "window_of"]

WINDOW_SECONDS = 3600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def window_of(event_time: datetime, seconds: float = WINDOW_SECONDS) -> tuple[datetime, datetime]:
    """The start and end of the event-time window (aligned on the epoch) holding a time.

    >>> window_of(datetime(2026, 5, 1, 12, 30, tzinfo=UTC))[0].isoformat()
    '2026-05-01T12:00:00+00:00'
    """
    width = round(seconds * 1_000_000)
    if width <= 0:
        raise ValueError(f"seconds: a window of at least a microsecond, received {seconds!r}")
    micros = (event_time - _EPOCH) // _MICROSECOND
    start = _EPOCH + (micros - micros % width) * _MICROSECOND
    return start, start + width * _MICROSECOND


def report_id(model_id: str, model_version: str, window_start: datetime) -> str:
    """``<model_id>/<model_version>/performance/<window start, micros>``."""
    return f"{model_id}/{model_version}/performance/{(window_start - _EPOCH) // _MICROSECOND}"


def performance_report(
    window: WindowPerformance,
    *,
    model_id: str,
    model_version: str,
    window_start: datetime,
    window_end: datetime,
    revision: int,
    created_at: datetime,
    orphaned: int = 0,
    reference: WindowPerformance | None = None,
    calibration: Calibration | None = None,
    threshold: float = 0.5,
    value: BusinessValue | None = None,
    tolerance: float | None = None,
    reference_window_start: datetime | None = None,
) -> PerformanceReport:
    """The report of a window; ``reference`` (the reference's outcomes: an uploaded sample's
    labelled rows, or the window ``reference_window_start``) gives reference_metrics and,
    with the risk tier's ``tolerance`` (``degradation.TOLERANCES``), the degraded metrics;
    ``calibration`` the CBPE estimates (binary), ``value`` the values."""
    binary = window.task == "binary"
    predictions, labelled = window.predictions, window.labelled
    estimated = estimated_metrics(window, calibration, threshold) if binary and calibration else {}
    metrics = realised_metrics(window)
    intervals = metric_intervals(window, metrics)
    reference_metrics = realised_metrics(reference) if reference is not None else {}
    degraded = (
        degraded_metrics(intervals, reference_metrics, tolerance) if tolerance is not None else []
    )
    report = PerformanceReport(
        report_id=report_id(model_id, model_version, window_start),
        model_id=model_id,
        model_version=model_version,
        window_start=window_start,
        window_end=window_end,
        revision=revision,
        task=window.task,
        predictions=predictions,
        labelled=labelled,
        label_coverage=min(labelled / predictions, 1.0) if predictions > 0 else 0.0,
        label_latency_p50_seconds=window.label_latency(0.5),
        label_latency_p95_seconds=window.label_latency(0.95),
        orphaned=orphaned,
        metrics=metrics,
        estimated=estimated,
        reference_metrics=reference_metrics,
        metrics_low={name: low for name, (low, _) in intervals.items()},
        metrics_high={name: high for name, (_, high) in intervals.items()},
        degraded=degraded,
        reference_window_start=reference_window_start if reference is not None else None,
        confusion_matrix=confusion_matrix(window),
        created_at=created_at,
    )
    if value is None:
        return report
    update: dict[str, object] = {
        "value": realised_value(window, value),
        "value_per_prediction": value_per_prediction(window, value),
        "currency": value.currency,
    }
    if reference is not None:
        update["reference_value_per_prediction"] = value_per_prediction(reference, value)
    if binary and calibration is not None:
        confusion = expected_confusion(window, calibration, threshold)
        update["estimated_value"] = expected_value(confusion, value)
    return report.model_copy(update=update)
