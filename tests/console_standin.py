"""The registry's and alerting's HTTP APIs as the console sees them, stood in in-process.

An ``httpx.MockTransport`` handler over a little state: it checks each call's bearer key
against the same key records and role grants the real services use, so the console is
exercised with refusals as they really come (401, 403 naming the role).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
from fastapi import FastAPI

from console.api import create_app
from console.config import Settings
from console.sessions import Session, SessionStore
from console.upstream import Services
from console.web import Console
from tests import console_standin_feedback as feedback_routes
from vigil.adapters.auth import authenticate
from vigil.adapters.http import InputRejected
from vigil.adapters.keyring import MemoryKeyring
from vigil.wire.access import ApiKey, Caller, Permission
from vigil.wire.alert_events import AlertEvent
from vigil.wire.records import Alert

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UNROUTED = object()  # a route helper's answer for a path it does not serve
# The hosts whose /metrics the health page scrapes (the stand-in answers for each).
METRICS_HOSTS = ("registry", "alerting", "feedback")
P = Permission


class MemorySessions(SessionStore):
    """Sessions in a dict (expiry is Redis's business, not checked here)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}

    async def save(self, session_id: str, session: Session, seconds: int) -> None:
        self.sessions[session_id] = session

    async def load(self, session_id: str, seconds: int) -> Session | None:
        return self.sessions.get(session_id)

    async def drop(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)


def model(model_id: str, owner: str, severity: str, *versions: tuple[str, str]) -> dict[str, Any]:
    """A model as ``GET /v1/models`` lists it."""
    return {
        "model_id": model_id,
        "owner": owner,
        "purpose": f"{model_id} decisions",
        "task": "binary",
        "severity": severity,
        "versions": [{"version": v, "status": s, "reference": None} for v, s in versions],
    }


def alert(fingerprint: str, model_id: str, version: str, severity: str, **extra: Any) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        status=extra.pop("status", "firing"),
        severity=severity,  # type: ignore[arg-type]
        model_id=model_id,
        model_version=version,
        rule=extra.pop("rule", "feature_drift"),
        feature=extra.pop("feature", "income"),
        summary=extra.pop("summary", f"drift on {model_id}"),
        starts_at=NOW - timedelta(hours=2),
        updated_at=NOW - timedelta(hours=1),
        **extra,
    )


def report(accuracy: float, reference: float, degraded: list[str] | None = None) -> dict[str, Any]:
    """A performance window as the registry answers it."""
    return {
        "window_start": (NOW - timedelta(hours=1)).isoformat(),
        "window_end": NOW.isoformat(),
        "predictions": 1000,
        "labelled": 800,
        "metrics": {"accuracy": accuracy},
        "reference_metrics": {"accuracy": reference},
        "degraded": degraded or [],
        "value_per_prediction": -1.5,
        "reference_value_per_prediction": -1.0,
    }


def fleet_performance(last: dict[str, Any]) -> dict[str, Any] | None:
    """A version's latest performance window as ``GET /v1/fleet`` sums it up."""
    if not last:
        return None
    metrics, reference = last.get("metrics") or {}, last.get("reference_metrics") or {}
    estimated = last.get("estimated") or {}
    metric = next(
        (m for m in ("accuracy", "f1", "mae", "rmse") if m in metrics or m in estimated), None
    )
    return {
        "window_end": last.get("window_end"),
        "metric": metric,
        "value": metrics.get(metric),
        "reference": reference.get(metric),
        "degraded": last.get("degraded") or [],
        "value_per_prediction": last.get("value_per_prediction"),
        "reference_value_per_prediction": last.get("reference_value_per_prediction"),
        "currency": last.get("currency"),
        "estimated": last.get("estimated") or {},
    }


@dataclass
class StandIn:
    """What the stand-in services hold, and every call they answered."""

    keys: list[ApiKey]
    models: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)
    history: dict[str, list[AlertEvent]] = field(default_factory=dict)
    performance: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    silences: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, key
    # The fleet summary and the model and window pages (see _model_pages).
    fleet: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # in full
    heatmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    windows: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)  # by model
    segment_drift: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)  # hosts that do not answer
    # The audit trail, newest first, and serving environments (see _report_routes).
    audit: list[dict[str, Any]] = field(default_factory=list)
    environments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # The review queue, flags, business values, /metrics (tests.console_standin_feedback).
    review_queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by model
    leases: dict[str, str] = field(default_factory=dict)  # prediction id -> reviewer
    feedback: list[dict[str, Any]] = field(default_factory=list)  # flags received, in order
    business_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # by model
    metrics: dict[str, str] = field(default_factory=dict)  # host -> Prometheus text

    def __post_init__(self) -> None:
        self.keyring = MemoryKeyring(self.keys)

    def add_alert(self, found: Alert) -> None:
        self.alerts[found.fingerprint] = found
        state = AlertEvent(
            event_id=uuid.uuid4().hex,
            time=found.starts_at,
            kind="state",
            alert=found,
            fingerprint=found.fingerprint,
        )
        self.history.setdefault(found.fingerprint, []).append(state)

    def handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, unquote(request.url.path)
        header = request.headers.get("authorization", "")
        self.calls.append((request.method, path, header.removeprefix("Bearer ")))
        if host in self.down:
            raise httpx.ConnectError(f"{host} refused the connection", request=request)
        if path == "/metrics":  # open, as every service's
            return httpx.Response(200, text=self.metrics.get(host, ""))
        try:
            caller = authenticate(self.keyring, header, NOW)
            answer = self._route(request, host, path, caller)
            return (
                answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)
            )
        except InputRejected as exc:
            return httpx.Response(exc.status_code, json={"detail": exc.detail, "errors": []})

    @staticmethod
    def _need(caller: Caller, permission: Permission) -> None:
        if not caller.may(permission):
            raise InputRejected(f"principal {caller.principal!r} may not {permission}", [], 403)

    def _route(self, request: httpx.Request, host: str, path: str, caller: Caller) -> Any:
        parts = path.strip("/").split("/")
        reported = self._report_routes(request, host, parts, caller)
        if reported is not UNROUTED:
            return reported
        routed = self._model_pages(request, host, path, parts, caller)
        if routed is not UNROUTED:
            return routed
        answer = feedback_routes.route(self, request, host, parts, caller)
        if answer is not feedback_routes.UNROUTED:
            return answer
        if host == "registry" and path == "/v1/models":
            self._need(caller, P.MODELS_READ)
            return [m for m in self.models if caller.covers(m["model_id"])]
        if host == "registry" and parts[-1] == "performance":
            self._need(caller, P.PERFORMANCE_READ)
            return self.performance.get((parts[2], parts[4]), [])
        if host == "alerting" and path == "/v1/alerts":
            self._need(caller, P.ALERTS_READ)
            params = request.url.params
            found = [
                a.model_dump(mode="json")
                for a in self.alerts.values()
                if a.status == params.get("status") and caller.covers(a.model_id)
            ]
            start, limit = int(params.get("cursor") or 0), int(params.get("limit") or 100)
            more = {"X-Next-Cursor": str(start + limit)} if start + limit < len(found) else {}
            return httpx.Response(200, json=found[start : start + limit], headers=more)
        if host == "alerting" and path == "/v1/silences":
            self._need(caller, P.ALERTS_READ)
            return self.silences
        if host == "alerting" and parts[-1] == "history":
            self._need(caller, P.ALERTS_READ)
            return [e.model_dump(mode="json") for e in self.history.get(parts[2], [])]
        if host == "alerting" and parts[-1] == "ack" and request.method == "POST":
            self._need(caller, P.ALERTS_WRITE)
            return self._ack(parts[2], caller, request)
        raise InputRejected(f"no route {request.method} {path}", [], 404)

    def _report_routes(
        self, request: httpx.Request, host: str, parts: list[str], caller: Caller
    ) -> Any:
        """What the auditor's report reads besides the pages': the audit trail (paged, newest
        first, as the registry serves it) and a version's serving environment."""
        if host != "registry":
            return UNROUTED
        if parts == ["v1", "audit"]:
            self._need(caller, P.AUDIT_READ)
            params = request.url.params
            model_id = params.get("model_id")
            if model_id:
                self._covers(caller, model_id)
            principal = params.get("principal")
            events = [
                e
                for e in self.audit
                if (not model_id or e.get("model_id") == model_id)
                and (not principal or e.get("principal") == principal)
            ]
            start = int(params.get("before") or 0)
            limit = int(params.get("limit") or 100)
            page = events[start : start + limit]
            more = start + limit < len(events)
            return {"events": page, "next": start + limit if more else None}
        if len(parts) == 6 and parts[-1] == "environment":
            self._need(caller, P.MODELS_READ)
            self._covers(caller, parts[2])
            return self._found(self.environments.get((parts[2], parts[4])), "environment")
        return UNROUTED

    def _model_pages(
        self, request: httpx.Request, host: str, path: str, parts: list[str], caller: Caller
    ) -> Any:
        """The fleet summary, a model in full, drift heat maps and windows, fairness, the
        comparison and a model's alerts; UNROUTED for any other path."""
        params = request.url.params
        if host == "alerting" and path == "/v1/alerts" and params.get("model_id"):
            self._need(caller, P.ALERTS_READ)
            self._covers(caller, params["model_id"])
            status = params.get("status")
            return [
                a.model_dump(mode="json")
                for a in self.alerts.values()
                if a.model_id == params["model_id"] and (not status or a.status == status)
            ]
        if host != "registry" or parts[:2] != ["v1", "models" if len(parts) > 2 else "fleet"]:
            return UNROUTED
        if path == "/v1/fleet":
            self._need(caller, P.MODELS_READ)
            return {"generated_at": NOW.isoformat(), "versions": self._fleet(caller)}
        model_id = parts[2]
        drift = parts[-1] in ("heatmap", "segments") or "windows" in parts
        if len(parts) == 3 or drift or parts[-1] == "comparison":
            self._need(caller, P.MODELS_READ)
        elif parts[-1] == "fairness":
            self._need(caller, P.PERFORMANCE_READ)
        else:
            return UNROUTED
        self._covers(caller, model_id)
        listed = next((m for m in self.models if m["model_id"] == model_id), None)
        if listed is None:
            raise InputRejected(f"no model {model_id!r}", [], 404)
        if len(parts) == 3:
            return {
                "model_id": model_id,
                "versions": self.versions.get(model_id, listed["versions"]),
            }
        if parts[-1] == "comparison":
            self._need(caller, P.PERFORMANCE_READ)
            return self._found(self.comparisons.get(model_id), "comparison")
        where = (model_id, parts[4])
        if parts[-1] == "heatmap":
            return self._found(self.heatmaps.get(where), "heat map")
        if parts[-1] == "segments":
            asked = (*where, request.url.params.get("segment", ""))
            return self._found(self.segment_drift.get(asked), "segment")
        if parts[-1] == "fairness":
            keep = {"report_id", "window_start", "window_end", "revision", "labelled", "fairness"}
            return [{k: r.get(k) for k in keep} for r in self.performance.get(where, [])]
        return self._found(self.windows.get((*where, parts[-1])), "window")

    @staticmethod
    def _found(answer: Any, what: str) -> Any:
        if answer is None:
            raise InputRejected(f"no {what}", [], 404)
        return answer

    @staticmethod
    def _covers(caller: Caller, model_id: str) -> None:
        if not caller.covers(model_id):  # the registry's and alerting's 403 (refuse_model)
            raise InputRejected(f"principal {caller.principal!r} may not act on model", [], 403)

    def _fleet(self, caller: Caller) -> list[dict[str, Any]]:
        """``GET /v1/fleet``'s versions: performance only for keys that read it."""
        readable = caller.may(P.PERFORMANCE_READ)
        found = []
        for listed in self.models:
            if not caller.covers(listed["model_id"]):
                continue
            for version in listed["versions"]:
                where = (listed["model_id"], version["version"])
                extra = self.fleet.get(where, {})
                reports = self.performance.get(where) or [{}]
                found.append(
                    {
                        "model_id": where[0],
                        "version": where[1],
                        "traffic": extra.get("traffic"),
                        "drift": extra.get("drift"),
                        "performance": fleet_performance(reports[-1]) if readable else None,
                        "performance_readable": readable,
                        "last_label_at": extra.get("last_label_at") if readable else None,
                    }
                )
        return found

    def _ack(self, fingerprint: str, caller: Caller, request: httpx.Request) -> Any:
        found = self.alerts.get(fingerprint)
        if found is None:
            raise InputRejected(f"no alert {fingerprint!r}", [], 404)
        if found.status == "resolved":
            raise InputRejected(f"alert {fingerprint!r} is resolved", [], 409)
        acked = found.model_copy(
            update={"status": "acknowledged", "acknowledged_by": caller.principal}
        )
        self.alerts[fingerprint] = acked
        comment = httpx.Response(200, content=request.content).json().get("comment", "")
        self.history[fingerprint].append(
            AlertEvent(
                event_id=uuid.uuid4().hex,
                time=NOW,
                kind="ack",
                fingerprint=fingerprint,
                alert=acked,
                actor=caller.principal,
                comment=comment,
            )
        )
        return acked.model_dump(mode="json")


def console_app(stand_in: StandIn, sessions: SessionStore | None = None) -> FastAPI:
    """The console on the stand-in services, its sessions in memory."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(stand_in.handle))
    services = Services(client, "http://registry", "http://alerting", "http://feedback")
    console = Console(sessions or MemorySessions(), stand_in.keyring, services)
    settings = Settings(
        console_feedback_url="http://feedback",
        console_metrics_endpoints={h: f"http://{h}/metrics" for h in METRICS_HOSTS},
    )
    return create_app(settings, console)
