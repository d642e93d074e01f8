"""Regression versions compared on the mean absolute error: paired on shared requests (the
per-request absolute errors) and unpaired from the windows' MAE and RMSE, checked against
scipy on the same errors; lower is better, and never ``better`` without significance."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from registry.comparison import compare, summary_line
from registry.pairs_index import SharedRequest
from tests.comparison_data import CHAMPION, SHADOW, window
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import ModelVersion

FIRST = CHAMPION.model_copy(update={"task": "regression", "business_value": None})
SECOND = SHADOW.model_copy(update={"task": "regression", "business_value": None})


def _requests(errors: list[tuple[float, float]]) -> list[SharedRequest]:
    return [
        SharedRequest(
            request_id=f"r{k}",
            at=k,
            predictions={FIRST.version: repr(100.0 + a), SECOND.version: repr(100.0 - b)},
            actual="100",
        )
        for k, (a, b) in enumerate(errors)
    ]


def _errors(shift: float, n: int = 400, seed: int = 7) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (abs(rng.gauss(0, 2)) + 1, max(abs(rng.gauss(0, 2)) + 1 - shift, 0.0)) for _ in range(n)
    ]


def _window(version: ModelVersion, hours: int, errors: list[float]) -> PerformanceReport:
    n = len(errors)
    report = window(version, hours, [[0, 0], [0, 0]])
    return report.model_copy(
        update={
            "task": "regression",
            "labelled": n,
            "metrics": {
                "mae": sum(errors) / n,
                "rmse": math.sqrt(sum(e * e for e in errors) / n),
            },
        }
    )


def test_a_shadow_with_smaller_errors_on_shared_requests_is_better_by_a_paired_test() -> None:
    errors = _errors(shift=0.5)
    found = compare(FIRST, SECOND, [], [], _requests(errors))
    first, second = [e[0] for e in errors], [e[1] for e in errors]
    diffs = [b - a for a, b in errors]
    mean = sum(diffs) / len(diffs)
    error = stats.tstd(diffs) / math.sqrt(len(diffs))
    assert found["test"] == "paired: z"
    assert found["mae"]["difference"] == pytest.approx(mean, rel=1e-9)
    assert found["mae"]["first"] == pytest.approx(sum(first) / len(first))
    assert found["mae"]["second"] == pytest.approx(sum(second) / len(second))
    assert found["mae"]["p_value"] == pytest.approx(2 * stats.norm.sf(abs(mean / error)), rel=1e-6)
    assert found["verdict"] == "better"
    assert found["verdict_of"] == "1.1.0 against 1.0.0 on mae"
    assert found["shared"] == {"requests": 400, "disagreement_rate": None, "labelled": 400}
    assert "mae" in summary_line(found)


def test_the_other_way_round_the_champion_is_worse_and_equal_errors_are_no_difference() -> None:
    errors = _errors(shift=0.5)
    swapped = [(b, a) for a, b in errors]
    assert compare(FIRST, SECOND, [], [], _requests(swapped))["verdict"] == "worse"
    same = [(a, a) for a, _ in errors]
    assert compare(FIRST, SECOND, [], [], _requests(same))["verdict"] == (
        "no significant difference"
    )


def test_a_challenger_on_its_own_traffic_is_compared_by_welch_from_mae_and_rmse() -> None:
    rng = random.Random(3)
    first = [[abs(rng.gauss(0, 3)) for _ in range(300)] for _ in range(3)]
    second = [[abs(rng.gauss(0, 2)) for _ in range(250)] for _ in range(2)]
    found = compare(
        FIRST,
        SECOND,
        [_window(FIRST, h, e) for h, e in enumerate(first)],
        [_window(SECOND, h, e) for h, e in enumerate(second)],
        [],
    )
    a = [e for w in first for e in w]
    b = [e for w in second for e in w]
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert found["test"] == "unpaired: welch z"
    assert found["mae"]["difference"] == pytest.approx(sum(b) / len(b) - sum(a) / len(a))
    # Welch's t with hundreds of outcomes: the z p-value agrees closely.
    assert found["mae"]["p_value"] == pytest.approx(welch.pvalue, rel=0.05, abs=1e-12)
    assert found["verdict"] == "better"
    summary = found["versions"][1]["metrics"]
    assert summary["mae"] == pytest.approx(sum(b) / len(b))
    assert summary["mae_low"] < summary["mae"] < summary["mae_high"]
    assert summary["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in b) / len(b)))


def test_without_labelled_errors_there_is_no_test_and_no_verdict() -> None:
    unlabelled = [
        SharedRequest(request_id="r", at=0, predictions={FIRST.version: "1.5", SECOND.version: "2"})
    ]
    found = compare(FIRST, SECOND, [], [], unlabelled)
    assert found["mae"] is None and found["verdict"] == "no significant difference"
    assert "no labelled outcomes" in summary_line(found)
