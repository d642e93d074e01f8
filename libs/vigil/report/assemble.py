"""The auditor's report of one model, assembled from the services' answers (``Sources``):
pure logic, no I/O. Promotions, role changes and reassessments are read from the audit
trail, whose ``detail`` says who did what, on which comparison and why."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from vigil.report.sources import Sources

__all__ = [
    "assemble",
    "daily_drift",
    "daily_performance",
    "is_overdue",
    "promotions",
    "silences_of",
    "status_changes",
]

PROMOTE = "POST /v1/models/{model_id}/versions/{version}/promote"
STATUS = "PUT /v1/models/{model_id}/versions/{version}/status"
RISK = "PUT /v1/models/{model_id}/versions/{version}/risk"
_VERDICT = re.compile(r"compared with (?P<baseline>\S+): (?P<verdict>[a-z ]+?)(?: \(|;|$)")
_OVER = re.compile(r" over (?P<over>.+?) \(now challenger\)")
_SET = re.compile(r" set \S+ from (?P<old>\w+) to (?P<new>\w+)")


def _version_of(event: dict[str, Any]) -> str | None:
    """The version a call was about, from its resource (``/v1/models/m/versions/v/...``)."""
    parts = str(event.get("resource", "")).split("/")
    return parts[5] if len(parts) > 5 and parts[4] == "versions" else None


def _succeeded(event: dict[str, Any]) -> bool:
    return 200 <= int(event.get("status", 0)) < 300


def _reason(detail: str) -> str | None:
    _, found, quoted = detail.rpartition("; reason: ")
    if not found:
        return None
    try:
        reason = ast.literal_eval(quoted)  # the registry writes it with repr()
    except (ValueError, SyntaxError):
        return quoted
    return str(reason)


def promotions(audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every successful promotion, oldest first: who, when, over whom, on which comparison
    (and its verdict), and why."""
    found = []
    for event in audit:
        if event.get("action") != PROMOTE or not _succeeded(event):
            continue
        detail = str(event.get("detail") or "")
        verdict = _VERDICT.search(detail)
        over = _OVER.search(detail)
        judged = detail.split("; ", 1)[1] if "; " in detail else ""
        judged = judged.rpartition("; reason: ")[0] or judged
        found.append(
            {
                "time": event.get("time"),
                "version": _version_of(event),
                "principal": event.get("principal"),
                "over": over["over"].split(", ") if over else [],
                "compared_with": verdict["baseline"] if verdict else None,
                "verdict": verdict["verdict"] if verdict else None,
                "comparison": judged or None,
                "reason": _reason(detail),
                "request_id": event.get("request_id"),
            }
        )
    return sorted(found, key=lambda p: str(p["time"]))


def status_changes(audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every successful ``PUT …/status``, oldest first: who set which version to what."""
    found = []
    for event in audit:
        if event.get("action") != STATUS or not _succeeded(event):
            continue
        moved = _SET.search(str(event.get("detail") or ""))
        found.append(
            {
                "time": event.get("time"),
                "version": _version_of(event),
                "principal": event.get("principal"),
                "from": moved["old"] if moved else None,
                "to": moved["new"] if moved else None,
                "detail": event.get("detail"),
            }
        )
    return sorted(found, key=lambda c: str(c["time"]))


def _set_champion(change: dict[str, Any]) -> dict[str, Any]:
    """A version made champion by ``PUT …/status``: a promotion on no comparison."""
    return {
        "time": change["time"],
        "version": change["version"],
        "principal": change["principal"],
        "over": [],
        "compared_with": None,
        "verdict": None,
        "comparison": "none: set by PUT …/status",
        "reason": None,
        "request_id": None,
    }


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def is_overdue(risk: dict[str, Any], now: datetime) -> bool:
    """Whether a risk assessment's reassessment date has passed at ``now``."""
    due = _time(risk.get("reassessment_due"))
    return due is not None and due <= now


def _matches(matcher: dict[str, Any], value: str) -> bool:
    op, expected = matcher.get("op", "="), str(matcher.get("value", ""))
    if op in ("=~", "!~"):
        try:
            hit = re.fullmatch(expected, value) is not None
        except re.error:
            hit = False
        return hit if op == "=~" else not hit
    return bool((value == expected) == (op == "="))


def silences_of(model_id: str, silences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The silences that can silence the model's alerts: every matcher on ``model_id``
    accepts it (a silence without one applies to every model)."""
    return [
        s
        for s in silences
        if all(_matches(m, model_id) for m in s.get("matchers", []) if m.get("name") == "model_id")
    ]


def _headline(task: str) -> str:
    return "mae" if task == "regression" else "accuracy"


def daily_performance(task: str, windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Performance windows added up per UTC day (of their start): windows, predictions,
    labelled outcomes, the headline metric's mean weighted by labelled outcomes, value."""
    metric = _headline(task)
    days: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"windows": 0, "predictions": 0, "labelled": 0, "_w": 0.0, "_n": 0, "value": None}
    )
    for window in windows:
        day = days[str(window.get("window_start", ""))[:10]]
        day["windows"] += 1
        day["predictions"] += int(window.get("predictions") or 0)
        labelled = int(window.get("labelled") or 0)
        day["labelled"] += labelled
        value = (window.get("metrics") or {}).get(metric)
        if value is not None and labelled:
            day["_w"] += float(value) * labelled
            day["_n"] += labelled
        if window.get("value") is not None:
            day["value"] = (day["value"] or 0.0) + float(window["value"])
    return [
        {
            "day": name,
            "windows": d["windows"],
            "predictions": d["predictions"],
            "labelled": d["labelled"],
            "metric": metric,
            "metric_mean": d["_w"] / d["_n"] if d["_n"] else None,
            "value": d["value"],
        }
        for name, d in sorted(days.items())
    ]


def daily_drift(heatmap: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The drift heat map's columns (one a day): windows, events, windows with dataset drift
    and the features that drifted. None when the registry serves no heat map."""
    if heatmap is None:
        return None
    features = [str(f) for f in heatmap.get("features", [])]
    days = []
    for column in heatmap.get("columns", []):
        drifted = column.get("drifted") or []
        days.append(
            {
                "day": str(column.get("start", ""))[:10],
                "windows": column.get("windows", 0),
                "events": column.get("events", 0),
                "dataset_drift": column.get("dataset_drift"),
                "drifted": [f for f, d in zip(features, drifted, strict=False) if d],
            }
        )
    return days


def _version(
    found: dict[str, Any], sources: Sources, changes: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    name = str(found["version"])
    risk = found.get("risk") or {}
    history = found.get("risk_history") or [risk]
    reference = found.get("reference") or {}
    return {
        "version": name,
        "status": found.get("status"),
        "task": found.get("task"),
        "owner": found.get("owner"),
        "team": found.get("team", ""),
        "purpose": found.get("purpose", ""),
        "kpi": found.get("kpi", ""),
        "created_at": found.get("created_at"),
        "updated_at": found.get("updated_at"),
        "risk": risk,
        "reassessment_overdue": is_overdue(risk, now),
        "risk_history": history,
        "reassessments": [c for c in changes if c["version"] == name],
        "lineage": found.get("lineage") or {},
        "reference_version": reference.get("version"),
        "reference_history": found.get("reference_history") or [],
        "environment": sources.environments.get(name),
        "performance": daily_performance(str(found.get("task")), sources.performance.get(name, [])),
        "drift": daily_drift(sources.drift.get(name)),
    }


def _alert(alert: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    events = [
        {
            "time": e.get("time"),
            "kind": e.get("kind"),
            "status": (e.get("alert") or {}).get("status"),
            "actor": e.get("actor"),
            "comment": e.get("comment"),
            "outcome": e.get("outcome"),
            "channel": e.get("channel"),
        }
        for e in history
    ]
    return {**alert, "history": events}


def _reassessments(audit: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "time": e.get("time"),
                "version": _version_of(e),
                "principal": e.get("principal"),
                "detail": e.get("detail"),
            }
            for e in audit
            if e.get("action") == RISK and _succeeded(e)
        ),
        key=lambda c: str(c["time"]),
    )


def assemble(sources: Sources, now: datetime) -> dict[str, Any]:
    """The report document (JSON-ready): everything an auditor asks about one model."""
    changes = _reassessments(sources.audit)
    versions = [_version(v, sources, changes, now) for v in sources.versions]
    latest = versions[-1] if versions else {}
    moved = status_changes(sources.audit)
    promoted = sorted(
        [*promotions(sources.audit), *(_set_champion(c) for c in moved if c["to"] == "champion")],
        key=lambda p: str(p["time"]),
    )
    alerts = sorted(
        (_alert(a, sources.histories.get(a["fingerprint"], [])) for a in sources.alerts),
        key=lambda a: str(a.get("starts_at")),
    )
    return {
        "model_id": sources.model_id,
        "generated_at": now.isoformat(),
        "period": {
            "since": sources.since.isoformat() if sources.since else None,
            "until": sources.until.isoformat() if sources.until else None,
        },
        "summary": {
            "owner": latest.get("owner"),
            "team": latest.get("team"),
            "purpose": latest.get("purpose"),
            "kpi": latest.get("kpi"),
            "task": latest.get("task"),
            "versions": len(versions),
            "champions": [v["version"] for v in versions if v["status"] == "champion"],
            "promotions": len(promoted),
            "retirements": sum(c["to"] == "retired" for c in moved),
            "overdue_reassessments": [v["version"] for v in versions if v["reassessment_overdue"]],
            "alerts": len(alerts),
        },
        "versions": versions,
        "promotions": promoted,
        "status_changes": moved,
        "alerts": alerts,
        "silences": silences_of(sources.model_id, sources.silences),
        "audit": sources.audit,
        "audit_complete": sources.audit_complete,
        "notes": sources.notes,
    }
