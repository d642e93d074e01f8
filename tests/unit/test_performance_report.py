"""Business value of outcomes, and the PerformanceReport a window makes: ids, coverage, latency,
metrics, estimates, reference and values, and a record that survives its codec."""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from fastavro import schemaless_writer

import vigil.performance
from tests.performance_data import binary, fill
from tests.samples import PERFORMANCE
from vigil.performance import (
    Calibration,
    WindowPerformance,
    performance_report,
    realised_value,
    report_id,
    value_per_prediction,
    window_of,
)
from vigil.wire.avro import avro_schema, known_writer_schemas
from vigil.wire.codec import Codec
from vigil.wire.performance import BusinessValue, PerformanceReport

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
MODULES = [
    importlib.import_module(m.name)
    for m in pkgutil.iter_modules(vigil.performance.__path__, "vigil.performance.")
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_binary_value_adds_up_the_cells() -> None:
    window = WindowPerformance("binary")
    for predicted, actual in [(1, 1), (1, 1), (1, 0), (0, 1), (0, 0)]:
        window.add_outcome(predicted, None, actual)
    value = BusinessValue(
        true_positive=10, false_positive=-3, true_negative=0.5, false_negative=-20
    )
    assert realised_value(window, value) == 2 * 10 - 3 + 0.5 - 20
    assert value_per_prediction(window, value) == pytest.approx(-2.5 / 5)
    assert value_per_prediction(WindowPerformance("binary"), value) is None


def test_multiclass_value_looks_up_actual_then_predicted() -> None:
    window = WindowPerformance("multiclass")
    for predicted, actual in [("a", "a"), ("b", "a"), ("b", "a"), ("c", "b")]:
        window.add_outcome(predicted, None, actual)
    value = BusinessValue(matrix={"a": {"a": 5.0, "b": -1.0}, "b": {"b": 2.0}})
    assert realised_value(window, value) == 5.0 - 2.0  # (b, c) is not listed: worth 0


def test_regression_value_costs_per_unit_of_error() -> None:
    window = WindowPerformance("regression")
    window.add_outcome(12.0, None, 10.0)
    window.add_outcome(7.0, None, 10.0)
    assert realised_value(window, BusinessValue(cost_per_unit_error=0.5)) == -2.5


def test_a_business_value_matrix_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        BusinessValue(matrix={"a": {"b": float("nan")}})


def test_windows_are_aligned_on_the_epoch() -> None:
    start, end = window_of(T0 + timedelta(minutes=59, seconds=59))
    assert (start, end) == (T0, T0 + timedelta(hours=1))
    assert window_of(T0 + timedelta(minutes=7), 300.0)[0] == T0 + timedelta(minutes=5)
    assert report_id("credit-risk", "1.0.0", T0) == (
        f"credit-risk/1.0.0/performance/{int(T0.timestamp()) * 1_000_000}"
    )


def test_a_binary_report_carries_everything_and_round_trips() -> None:
    data = binary(2, n=3000)
    window = fill("binary", data)
    window.add_prediction(True, 0.9)  # one more, never labelled
    reference = fill("binary", binary(9, n=3000))
    value = BusinessValue(currency="USD", true_positive=10, false_positive=-2)
    report = performance_report(
        window,
        model_id="credit-risk",
        model_version="1.0.0",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        revision=3,
        created_at=T0 + timedelta(hours=2),
        orphaned=4,
        reference=reference,
        calibration=Calibration.identity(),
        value=value,
    )
    assert report.key == "credit-risk/1.0.0"
    assert report.report_id.startswith("credit-risk/1.0.0/performance/")
    assert (report.predictions, report.labelled) == (3001, data.labelled)
    assert report.label_coverage == pytest.approx(data.labelled / 3001)
    assert report.label_latency_p50_seconds is not None
    assert report.label_latency_p95_seconds is not None
    assert report.label_latency_p50_seconds < report.label_latency_p95_seconds
    assert {"accuracy", "roc_auc", "log_loss", "ece"} <= set(report.metrics)
    assert set(report.estimated) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert set(report.reference_metrics) == set(report.metrics)
    judged = set(report.metrics) - {"ece", "log_loss"}
    assert set(report.metrics_low) == set(report.metrics_high) == judged
    assert report.degraded == []  # no risk tier given
    assert sum(map(sum, report.confusion_matrix.rows)) == data.labelled
    assert report.value == realised_value(window, value)
    assert report.value_per_prediction == pytest.approx(report.value / data.labelled)
    assert report.reference_value_per_prediction is not None
    assert report.estimated_value is not None
    assert report.currency == "USD"
    codec = Codec(PerformanceReport)
    assert codec.decode(codec.encode(report)) == report
    assert codec.decode(report.model_dump_json().encode()) == report


def test_a_report_without_labels_or_configuration_is_mostly_empty() -> None:
    window = WindowPerformance("regression")
    report = performance_report(
        window,
        model_id="m",
        model_version="1",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        revision=0,
        created_at=T0,
        calibration=Calibration.identity(),  # ignored: not a binary model
    )
    assert report.label_coverage == 0.0
    assert report.label_latency_p50_seconds is None
    assert report.metrics == report.estimated == report.reference_metrics == {}
    assert report.confusion_matrix.labels == []
    assert report.value is None and report.currency is None


def test_a_report_written_before_intervals_and_degradation_still_decodes() -> None:
    """vigil.metrics.v1 keeps reports of the previous release (schemas/history)."""
    current = avro_schema("PerformanceReport")
    (old,) = [s for s in known_writer_schemas("PerformanceReport").values() if s is not current]
    out = io.BytesIO()
    out.write(b"\xc3\x01" + old.fingerprint)
    schemaless_writer(out, old.parsed, PERFORMANCE.model_dump())
    decoded = Codec(PerformanceReport).decode(out.getvalue())
    fresh = {"metrics_low", "metrics_high", "degraded", "reference_window_start", "segments"}
    fresh |= {"fairness", "reference_fairness"}
    assert fresh == set(PerformanceReport.model_fields) - {f["name"] for f in old.parsed["fields"]}
    assert decoded.model_dump(exclude=fresh) == PERFORMANCE.model_dump(exclude=fresh)
    assert (decoded.metrics_low, decoded.degraded, decoded.reference_window_start) == ({}, [], None)
