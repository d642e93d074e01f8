"""A model with a history, as the registry and alerting answer it, for the auditor's report
tests: versions with lineage and risk histories, an audit trail with promotions, a status
change and a refusal, alerts with an acknowledgement, a silence, performance windows, a drift
heat map. Hostile text (``<script>``) sits where users can write it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.console_standin import NOW, StandIn, alert, model
from vigil.wire.access import ApiKey
from vigil.wire.alert_events import AlertEvent

MODEL_ID = "credit-risk"
HOSTILE = "<script>alert('pwned')</script>"
PROMOTE = "POST /v1/models/{model_id}/versions/{version}/promote"
STATUS = "PUT /v1/models/{model_id}/versions/{version}/status"


def _when(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def version(name: str, status: str, days: float, **extra: Any) -> dict[str, Any]:
    """A version as ``GET /v1/models/{id}`` answers it."""
    risk = {
        "probability": 3,
        "impact": 4,
        "severity": "high",
        "assessed_by": "ana",
        "assessed_at": _when(days),
        "reassessment_due": _when(days - 365),
        "rationale": f"first look {HOSTILE}",
    }
    return {
        "model_id": MODEL_ID,
        "version": name,
        "task": "binary",
        "status": status,
        "owner": "risk-team",
        "team": "credit-analytics",
        "purpose": "loan approval",
        "kpi": "default rate",
        "created_at": _when(days),
        "updated_at": _when(days),
        "risk": risk,
        "risk_history": [risk],
        "lineage": {
            "training_data": "s3://bucket/train.parquet",
            "training_data_hash": "sha256:" + "ab" * 32,
            "code_version": "9f2c1e7",
            "validated_environment": {"python": "3.11.9", "packages": {"numpy": "2.1.3"}},
            "parent_version": None,
        },
        "reference": {"version": 1},
        "reference_history": [
            {"version": 1, "source": "uploaded", "row_count": 5000, "created_at": _when(days)}
        ],
        **extra,
    }


def event(
    action: str, resource: str, days: float, detail: str | None, status: int = 200
) -> dict[str, Any]:
    """An audit event as ``GET /v1/audit`` answers it."""
    return {
        "event_id": f"e-{resource}-{days}",
        "time": _when(days),
        "service": "registry",
        "key_id": "0123456789abcdef",
        "principal": "dora",
        "roles": ["data_scientist"],
        "action": action,
        "resource": resource,
        "model_id": MODEL_ID,
        "status": status,
        "request_id": f"r-{days}",
        "detail": detail,
    }


def versions() -> list[dict[str, Any]]:
    old = version("1.0.0", "retired", 400)  # due 35 days ago: overdue
    middle = version("1.1.0", "challenger", 100)
    new = version("1.2.0", "champion", 10)
    new["lineage"]["parent_version"] = "1.1.0"
    return [old, middle, new]


def audit() -> list[dict[str, Any]]:
    """Newest first, as the registry pages it."""
    base = f"/v1/models/{MODEL_ID}/versions"
    return [
        event(
            PROMOTE,
            f"{base}/1.2.0/promote",
            5,
            "dora promoted 1.2.0 to champion over 1.1.0 (now challenger); compared with 1.1.0:"
            " better (paired: mcnemar, n=8120, discordant 135/183; accuracy 0.9120 -> 0.9180"
            f" for 1.2.0, difference +0.0059 [+0.0010, +0.0108], p=0.02); reason: {HOSTILE!r}",
        ),
        event(PROMOTE, f"{base}/1.0.0/promote", 6, None, status=409),  # refused: not one
        event(STATUS, f"{base}/1.0.0/status", 50, "dora set 1.0.0 from challenger to retired"),
        event(
            PROMOTE,
            f"{base}/1.1.0/promote",
            90,
            "dora promoted 1.1.0 to champion over 1.0.0 (now challenger); compared with 1.0.0:"
            " no significant difference (no labelled outcomes to test); reason: 'fresher data'",
        ),
        event("POST /v1/models", "/v1/models", 400, None),
    ]


def heatmap() -> dict[str, Any]:
    """Two days of a drift heat map, the second with ``income`` drifted."""
    day = 86400
    return {
        "resolution_seconds": day,
        "features": ["income", "region"],
        "columns": [
            {
                "start": _when(2),
                "end": _when(1),
                "windows": 24,
                "events": 1000,
                "dataset_drift": False,
                "drifted": [False, False],
            },
            {
                "start": _when(1),
                "end": _when(0),
                "windows": 24,
                "events": 900,
                "dataset_drift": True,
                "drifted": [True, False],
            },
        ],
    }


def performance_window(days: float, accuracy: float, labelled: int) -> dict[str, Any]:
    return {
        "window_start": _when(days),
        "window_end": _when(days - 1 / 24),
        "predictions": 1000,
        "labelled": labelled,
        "metrics": {"accuracy": accuracy},
        "value": -100.0,
    }


def filled(stand_in: StandIn) -> StandIn:
    """``stand_in`` holding the model's history (and a second model, out of some scopes)."""
    listed = versions()
    stand_in.models = [
        model(MODEL_ID, "risk-team", "high", *((v["version"], v["status"]) for v in listed)),
        model("fraud", "risk-team", "critical", ("3.0.0", "champion")),
    ]
    stand_in.versions[MODEL_ID] = listed
    stand_in.audit = audit()
    acked = alert(
        "fp-credit", MODEL_ID, "1.2.0", "high", status="acknowledged", acknowledged_by="olga"
    )
    stand_in.add_alert(acked)
    stand_in.history["fp-credit"].append(
        AlertEvent(
            event_id="ack-1",
            time=NOW,
            kind="ack",
            fingerprint="fp-credit",
            alert=acked,
            actor="olga",
            comment=f"looking {HOSTILE}",
        )
    )
    stand_in.add_alert(alert("fp-fraud", "fraud", "3.0.0", "critical"))
    stand_in.silences = [
        {
            "id": "s-1",
            "matchers": [{"name": "model_id", "value": MODEL_ID, "op": "="}],
            "starts_at": _when(1),
            "ends_at": _when(-1),
            "comment": "retraining",
            "created_by": "olga",
            "status": "active",
        },
        {
            "id": "s-2",
            "matchers": [{"name": "model_id", "value": "fraud", "op": "="}],
            "starts_at": _when(1),
            "ends_at": _when(-1),
            "created_by": "olga",
            "status": "active",
        },
    ]
    stand_in.performance[(MODEL_ID, "1.2.0")] = [
        performance_window(2, 0.9, 100),
        performance_window(1.9, 0.8, 300),
    ]
    stand_in.heatmaps[(MODEL_ID, "1.2.0")] = heatmap()
    return stand_in


def report_stand_in(*keys: ApiKey) -> StandIn:
    return filled(StandIn(keys=list(keys)))
