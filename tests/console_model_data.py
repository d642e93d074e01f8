"""Answers of the registry for the console's model and window pages, built as the registry
shapes them (``GET /v1/models/{id}``, the drift heat map and windows, performance reports with
fairness, the comparison), and ``stock`` to put them in a stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.console_standin import NOW, StandIn

FEATURES = ["income", "region"]
HOSTILE_FEATURE = '<script>alert("feature")</script>'


def version(model_id: str, number: str, status: str, **extra: Any) -> dict[str, Any]:
    """A model version in full, as ``GET /v1/models/{id}`` gives it."""
    return {
        "model_id": model_id,
        "version": number,
        "task": "binary",
        "owner": "risk-team",
        "purpose": "credit decisions",
        "status": status,
        "risk": {"probability": 4, "impact": 5, "severity": "high"},
        "lineage": {"training_data": "s3://loans/2026-10", "code_version": "abc123"},
        "reference": {
            "source": "uploaded",
            "row_count": 5000,
            "created_at": (NOW - timedelta(days=40)).isoformat(),
            "version": 2,
            "features": [
                {
                    "name": "income",
                    "type": "numeric",
                    "count": 5000,
                    "missing": 0,
                    "bin_edges": [10.0, 20.0, 30.0],
                    "bin_counts": [1000, 1500, 1500, 1000],
                },
                {
                    "name": "region",
                    "type": "categorical",
                    "count": 5000,
                    "missing": 0,
                    "categories": ["north", "south"],
                    "category_counts": [3000, 2000],
                },
            ],
        },
        "reference_history": [],
        "created_at": (NOW - timedelta(days=60)).isoformat(),
        "updated_at": (NOW - timedelta(days=1)).isoformat(),
        **extra,
    }


def _start(column: int, columns: int) -> datetime:
    return NOW - timedelta(hours=columns - column)


def heatmap(
    model_id: str, number: str, columns: int, features: list[str] | None = None
) -> dict[str, Any]:
    """``columns`` hourly buckets of ``features``; the last feature drifts in the newest
    quarter, the first column has no windows."""
    names = features or FEATURES
    out = []
    for c in range(columns):
        late = c >= columns * 3 // 4
        values: list[float | None] = [
            None
            if c == 0
            else round(0.02 + 0.01 * f + (0.3 if late and f == len(names) - 1 else 0), 3)
            for f in range(len(names))
        ]
        drifted = [bool(late and f == len(names) - 1) for f in range(len(names))]
        out.append(
            {
                "start": _start(c, columns).isoformat(),
                "end": (_start(c, columns) + timedelta(hours=1)).isoformat(),
                "windows": 0 if c == 0 else 60,
                "events": 0 if c == 0 else 6000,
                "late_events": 0,
                "dataset_drift": late,
                "drift_share": 0.5 if late else 0.0,
                "multivariate_drifted": False,
                "values": values,
                "drifted": drifted,
                "quality": {
                    "missing_rate": 0.01 * (c % 3),
                    "out_of_range_rate": 0.0,
                    "unseen_rate": 0.002,
                    "type_violation_rate": 0.0,
                },
                "window_start": None
                if c == 0
                else (_start(c, columns) + timedelta(minutes=17)).isoformat(),
            }
        )
    return {
        "model_id": model_id,
        "version": number,
        "since": _start(0, columns).isoformat(),
        "until": NOW.isoformat(),
        "resolution_seconds": 3600,
        "features": names,
        "statistics": {n: "psi" for n in names},
        "thresholds": {n: 0.2 for n in names},
        "columns": out,
    }


def window(model_id: str, number: str, start: str) -> dict[str, Any]:
    """A window's report: income drifted, with the window's bin counts."""
    begins = datetime.fromisoformat(start)
    return {
        "report_id": f"r-{start}",
        "model_id": model_id,
        "model_version": number,
        "window_start": start,
        "window_end": (begins + timedelta(minutes=1)).isoformat(),
        "event_count": 100,
        "reference_source": "uploaded",
        "reference_version": 2,
        "features": [
            {
                "feature": "income",
                "type": "numeric",
                "count": 100,
                "missing": 0,
                "statistics": {"psi": 0.31, "ks": 0.2, "ks_pvalue": 0.001},
                "drift_statistic": "psi",
                "threshold": 0.2,
                "drifted": True,
                "bin_counts": [5, 10, 25, 60],
            },
            {
                "feature": "region",
                "type": "categorical",
                "count": 100,
                "missing": 2,
                "unseen_categories": 1,
                "statistics": {"psi": 0.01, "chi2_pvalue": 0.7},
                "drift_statistic": "psi",
                "threshold": 0.2,
                "drifted": False,
                "category_counts": [60, 37, 1],
            },
        ],
        "drifted_features": ["income"],
        "dataset_drift": True,
        "drift_share": 0.5,
        "outputs": [],
        "late_events": 3,
        "created_at": NOW.isoformat(),
    }


def fairness() -> list[dict[str, Any]]:
    groups = [
        {
            "group": g,
            "predictions": 500,
            "labelled": 400,
            "rates": {"selection_rate": r, "true_positive_rate": 0.7},
            "rates_low": {"selection_rate": r - 0.04, "true_positive_rate": 0.65},
            "rates_high": {"selection_rate": r + 0.04, "true_positive_rate": 0.75},
        }
        for g, r in (("north", 0.4), ("south", 0.2))
    ]
    measure = {"value": 0.5, "low": 0.4, "high": 0.62, "lowest": "south", "highest": "north"}
    return [
        {
            "attribute": "region",
            "min_group_size": 100,
            "groups": groups,
            "measures": {"disparate_impact": measure},
            "violations": ["disparate_impact"],
        }
    ]


def performance(hours: int) -> list[dict[str, Any]]:
    """Hourly reports: the newest hour estimated only (no labels yet), fairness in each."""
    reports = []
    for h in range(hours):
        start = NOW - timedelta(hours=hours - h)
        labelled = h < hours - 1
        accuracy = 0.9 - 0.002 * h
        reports.append(
            {
                "report_id": f"p-{h}",
                "window_start": start.isoformat(),
                "window_end": (start + timedelta(hours=1)).isoformat(),
                "predictions": 1000,
                "labelled": 800 if labelled else 0,
                "label_coverage": 0.8 if labelled else 0.0,
                "metrics": {"accuracy": accuracy} if labelled else {},
                "estimated": {"accuracy": accuracy + 0.01},
                "reference_metrics": {"accuracy": 0.91},
                "metrics_low": {"accuracy": accuracy - 0.02} if labelled else {},
                "metrics_high": {"accuracy": accuracy + 0.02} if labelled else {},
                "degraded": [],
                "value": -1200.0 if labelled else None,
                "value_per_prediction": -1.5 if labelled else None,
                "reference_value_per_prediction": -1.0,
                "estimated_value": -1400.0,
                "currency": "EUR",
                "fairness": fairness(),
            }
        )
    return reports


def comparison(model_id: str, first: str, second: str) -> dict[str, Any]:
    """A paired comparison in which the second version is better."""

    def side(number: str, status: str, accuracy: float) -> dict[str, Any]:
        return {
            "version": number,
            "status": status,
            "windows": 24,
            "predictions": 24000,
            "labelled": 19000,
            "metrics": {
                "accuracy": accuracy,
                "accuracy_low": accuracy - 0.004,
                "accuracy_high": accuracy + 0.004,
            },
            "value": -1.2e4,
            "value_per_labelled": -0.41,
            "currency": "EUR",
        }

    return {
        "model_id": model_id,
        "since": (NOW - timedelta(days=1)).isoformat(),
        "until": None,
        "versions": [side(first, "champion", 0.912), side(second, "challenger", 0.918)],
        "shared": {"requests": 10000, "labelled": 8120, "disagreement_rate": 0.043},
        "test": "paired: mcnemar",
        "accuracy": {
            "test": "paired: mcnemar",
            "n": 8120,
            "first": 0.912,
            "second": 0.918,
            "difference": 0.006,
            "low": 0.0042,
            "high": 0.0078,
            "p_value": 1.2e-10,
        },
        "verdict": "better",
        "verdict_of": f"{second} against {first} on accuracy",
    }


def stock(
    stand_in: StandIn, model_id: str, columns: int = 12, features: list[str] | None = None
) -> None:
    """Put ``model_id``'s champion 1.0.0 and challenger 1.1.0 in the stand-in, with drift,
    performance, fairness and a comparison for the champion."""
    stand_in.versions[model_id] = [
        version(
            model_id,
            "1.0.0",
            "champion",
            reassessment_overdue=True,
            risk={
                "probability": 4,
                "impact": 5,
                "severity": "high",
                "reassessment_due": (NOW - timedelta(days=3)).isoformat(),
            },
        ),
        version(model_id, "1.1.0", "challenger", lineage={"parent_version": "1.0.0"}),
    ]
    where = (model_id, "1.0.0")
    stand_in.heatmaps[where] = heatmap(model_id, "1.0.0", columns, features)
    for column in stand_in.heatmaps[where]["columns"]:
        if column["window_start"]:
            stand_in.windows[(*where, column["window_start"])] = window(
                model_id, "1.0.0", column["window_start"]
            )
    stand_in.performance[where] = performance(24)
    stand_in.comparisons[model_id] = comparison(model_id, "1.0.0", "1.1.0")
    stand_in.fleet[where] = {
        "traffic": {
            "bucket_seconds": 3600,
            "since": (NOW - timedelta(days=1)).isoformat(),
            "counts": [100 + 10 * h for h in range(24)],
        },
        "drift": {
            "window_end": NOW.isoformat(),
            "dataset_drift": True,
            "drifted_features": ["income"],
            "drift_share": 0.5,
        },
        "last_label_at": (NOW - timedelta(minutes=5)).isoformat(),
    }
