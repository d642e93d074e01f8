"""Two versions of a model side by side (``GET /v1/models/{id}/comparison``): each version's
performance and business value on its labelled traffic, the difference of accuracy with its
interval, p-value and verdict, and how often a shadow disagrees with its champion.

Pure: the caller reads the versions, their window reports (``registry.performance_index``) and
the shared requests (``registry.pairs_index``). The test is paired (McNemar) when the two
versions scored labelled requests in common, else unpaired (two-proportion z) on each version's
own labelled traffic (``vigil.performance.comparison``). Regression versions are compared on
the mean absolute error (lower is better): paired, the per-request absolute errors on shared
labelled requests; unpaired, each version's mean and variance of the absolute error from its
windows' MAE and RMSE (the variance is RMSE² - MAE²), by Welch's z.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from registry.pairs_index import SharedRequest
from vigil.performance.comparison import (
    Difference,
    mcnemar,
    mean_difference,
    paired_mean_difference,
    two_proportions,
    verdict,
)
from vigil.performance.intervals import Z95, wilson
from vigil.performance.labels import is_positive
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import ModelVersion

__all__ = ["compare", "summary_line"]

Cells = Counter[tuple[str, str]]  # (actual, predicted) class names → outcomes


def _cells(reports: Sequence[PerformanceReport]) -> Cells:
    cells: Cells = Counter()
    for report in reports:
        matrix = report.confusion_matrix
        for i, actual in enumerate(matrix.labels):
            for j, predicted in enumerate(matrix.labels):
                cells[actual, predicted] += matrix.rows[i][j]
    return cells


def _class(version: ModelVersion, label: str) -> str:
    """A label as the class the reports' confusion matrices name."""
    if version.task == "binary":
        return "positive" if is_positive(label, version.positive_label) else "negative"
    return label


def _cell_value(version: ModelVersion, actual: str, predicted: str) -> float:
    """What an outcome of these classes (as ``_class`` names them) is worth to ``version``."""
    value = version.business_value
    if value is None:
        return 0.0
    if version.task == "binary":
        cell = {
            ("positive", "positive"): value.true_positive,
            ("negative", "positive"): value.false_positive,
            ("negative", "negative"): value.true_negative,
            ("positive", "negative"): value.false_negative,
        }
        return cell.get((actual, predicted), 0.0)
    return value.matrix.get(actual, {}).get(predicted, 0.0)


def _value_moments(version: ModelVersion, cells: Cells) -> tuple[float, float, int] | None:
    """Mean and variance of the value of one labelled outcome, and the outcomes."""
    n = sum(cells.values())
    if version.business_value is None or version.task == "regression" or n == 0:
        return None
    values = {cell: _cell_value(version, *cell) for cell in cells}
    mean = sum(values[c] * k for c, k in cells.items()) / n
    variance = sum((values[c] - mean) ** 2 * k for c, k in cells.items()) / max(n - 1, 1)
    return mean, variance, n


def _binary_metrics(cells: Cells) -> dict[str, float]:
    tp, fp = cells["positive", "positive"], cells["negative", "positive"]
    fn = cells["positive", "negative"]
    found = {}
    if tp + fp:
        found["precision"] = tp / (tp + fp)
    if tp + fn:
        found["recall"] = tp / (tp + fn)
    if tp + fp + fn:
        found["f1"] = 2 * tp / (2 * tp + fp + fn)
    return found


def _error_moments(reports: Sequence[PerformanceReport]) -> tuple[float, float, int] | None:
    """Mean and variance of the absolute error of a regression version's labelled outcomes,
    from its windows' MAE and RMSE, and the outcomes."""
    used = [r for r in reports if r.labelled and "mae" in r.metrics and "rmse" in r.metrics]
    n = sum(r.labelled for r in used)
    if n == 0:
        return None
    mean = sum(r.metrics["mae"] * r.labelled for r in used) / n
    square = sum(r.metrics["rmse"] ** 2 * r.labelled for r in used) / n
    return mean, max(square - mean**2, 0.0) * n / max(n - 1, 1), n


def _regression_metrics(reports: Sequence[PerformanceReport]) -> dict[str, float]:
    moments = _error_moments(reports)
    if moments is None:
        return {}
    mean, variance, n = moments
    used = [r for r in reports if r.labelled and "rmse" in r.metrics]
    rmse = math.sqrt(sum(r.metrics["rmse"] ** 2 * r.labelled for r in used) / n)
    spread = Z95 * math.sqrt(variance / n)
    return {
        "mae": mean,
        "mae_low": max(mean - spread, 0.0),
        "mae_high": mean + spread,
        "rmse": rmse,
    }


def _version(version: ModelVersion, reports: Sequence[PerformanceReport]) -> dict[str, Any]:
    """One version's figures summed over its windows' latest reports."""
    cells = _cells(reports)
    n = sum(cells.values())
    right = sum(k for (actual, predicted), k in cells.items() if actual == predicted)
    metrics: dict[str, float] = {}
    interval = wilson(right, n)
    if version.task == "regression":
        metrics = _regression_metrics(reports)
        n = sum(r.labelled for r in reports if "mae" in r.metrics)
    elif interval is not None:
        metrics = {"accuracy": right / n, "accuracy_low": interval[0], "accuracy_high": interval[1]}
        if version.task == "binary":
            metrics |= _binary_metrics(cells)
    values = [r.value for r in reports if r.value is not None]
    return {
        "version": version.version,
        "status": version.status,
        "windows": len(reports),
        "predictions": sum(r.predictions for r in reports),
        "labelled": sum(r.labelled for r in reports),
        "metrics": metrics,
        "value": sum(values) if values else None,
        "value_per_labelled": sum(values) / n if values and n else None,
        "currency": version.business_value.currency if version.business_value else None,
    }


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _paired_errors(
    first: ModelVersion, second: ModelVersion, shared: Sequence[SharedRequest]
) -> tuple[dict[str, Any], Difference | None, Difference | None]:
    """Regression versions on shared requests: the paired difference of absolute errors (and
    no disagreement rate: two regressors never predict exactly alike)."""
    errors: list[tuple[float, float]] = []
    for request in shared:
        truth = None if request.actual is None else _number(request.actual)
        a = _number(request.predictions[first.version])
        b = _number(request.predictions[second.version])
        if truth is not None and a is not None and b is not None:
            errors.append((abs(a - truth), abs(b - truth)))
    found = {"requests": len(shared), "disagreement_rate": None, "labelled": len(errors)}
    if not errors:
        return found, None, None
    difference = paired_mean_difference([e[0] for e in errors], [e[1] for e in errors])
    return found, difference, None


def _paired(
    first: ModelVersion, second: ModelVersion, requests: Sequence[SharedRequest]
) -> tuple[dict[str, Any], Difference | None, Difference | None]:
    """Disagreement on shared requests, and the paired accuracy and value differences."""
    shared = [
        r for r in requests if first.version in r.predictions and second.version in r.predictions
    ]
    if first.task == "regression":
        return _paired_errors(first, second, shared)
    classes = [
        (_class(first, r.predictions[first.version]), _class(second, r.predictions[second.version]))
        for r in shared
    ]
    differ = sum(a != b for a, b in classes)
    table: Counter[tuple[bool, bool]] = Counter()
    first_values: list[float] = []
    second_values: list[float] = []
    for request, (a, b) in zip(shared, classes, strict=True):
        if request.actual is None:
            continue
        truth_a, truth_b = _class(first, request.actual), _class(second, request.actual)
        table[a == truth_a, b == truth_b] += 1
        first_values.append(_cell_value(first, truth_a, a))
        second_values.append(_cell_value(second, truth_b, b))
    labelled = len(first_values)
    found = {
        "requests": len(shared),
        "disagreement_rate": differ / len(shared) if shared else None,
        "labelled": labelled,
    }
    if not labelled:
        return found, None, None
    accuracy = mcnemar(
        table[True, True], table[True, False], table[False, True], table[False, False]
    )
    valued = first.business_value is not None and second.business_value is not None
    value = paired_mean_difference(first_values, second_values) if valued else None
    return found, accuracy, value


def compare(
    first: ModelVersion,
    second: ModelVersion,
    first_reports: Sequence[PerformanceReport],
    second_reports: Sequence[PerformanceReport],
    requests: Sequence[SharedRequest],
) -> dict[str, Any]:
    """The comparison of ``second`` against ``first`` (the baseline, usually the champion):
    differences are second minus first, and the verdict says whether second is better."""
    summaries = [_version(first, first_reports), _version(second, second_reports)]
    shared, accuracy, value = _paired(first, second, requests)
    regression = first.task == "regression"
    metric = "mae" if regression else "accuracy"
    if accuracy is None and regression:
        first_errors, second_errors = _error_moments(first_reports), _error_moments(second_reports)
        if first_errors is not None and second_errors is not None:
            accuracy = mean_difference(first_errors, second_errors)
    elif accuracy is None:
        n1, n2 = sum(_cells(first_reports).values()), sum(_cells(second_reports).values())
        if n1 and n2:
            rights = [
                sum(k for (a, p), k in _cells(reports).items() if a == p)
                for reports in (first_reports, second_reports)
            ]
            accuracy = two_proportions(rights[0], n1, rights[1], n2)
            moments = [
                _value_moments(v, _cells(r))
                for v, r in ((first, first_reports), (second, second_reports))
            ]
            if moments[0] is not None and moments[1] is not None:
                value = mean_difference(moments[0], moments[1])
    return {
        "model_id": first.model_id,
        "versions": summaries,
        "shared": shared,
        "test": accuracy.test if accuracy else None,
        metric: accuracy.as_dict() if accuracy else None,
        "value_per_labelled": value.as_dict() if value else None,
        "verdict": (
            verdict(accuracy, lower_is_better=regression)
            if accuracy
            else "no significant difference"
        ),
        "verdict_of": f"{second.version} against {first.version} on {metric}",
    }


def summary_line(comparison: dict[str, Any]) -> str:
    """The comparison in one line, for the audit trail."""
    metric = "mae" if "mae" in comparison else "accuracy"
    accuracy = comparison[metric]
    first, second = (v["version"] for v in comparison["versions"])
    head = f"compared with {first}: {comparison['verdict']}"
    rate = comparison["shared"]["disagreement_rate"]
    tail = (
        "" if rate is None else f"; disagreement {rate:.4f} on {comparison['shared']['requests']}"
    )
    if accuracy is None:
        return f"{head} (no labelled outcomes to test){tail}"
    discordant = (
        f", discordant {accuracy['first_only']}/{accuracy['second_only']}"
        if "first_only" in accuracy
        else ""
    )
    return (
        f"{head} ({comparison['test']}, n={accuracy['n']}{discordant}; {metric}"
        f" {accuracy['first']:.4f} -> {accuracy['second']:.4f} for {second}, difference"
        f" {accuracy['difference']:+.4f} [{accuracy['low']:+.4f}, {accuracy['high']:+.4f}],"
        f" p={accuracy['p_value']:.4g}){tail}"
    )
