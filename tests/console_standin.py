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
from vigil.adapters.auth import authenticate
from vigil.adapters.http import InputRejected
from vigil.adapters.keyring import MemoryKeyring
from vigil.wire.access import ApiKey, Caller, Permission
from vigil.wire.alert_events import AlertEvent
from vigil.wire.records import Alert

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
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
    down: set[str] = field(default_factory=set)  # hosts that do not answer

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
        try:
            caller = authenticate(self.keyring, header, NOW)
            return httpx.Response(200, json=self._route(request, host, path, caller))
        except InputRejected as exc:
            return httpx.Response(exc.status_code, json={"detail": exc.detail, "errors": []})

    @staticmethod
    def _need(caller: Caller, permission: Permission) -> None:
        if not caller.may(permission):
            raise InputRejected(f"principal {caller.principal!r} may not {permission}", [], 403)

    def _route(self, request: httpx.Request, host: str, path: str, caller: Caller) -> Any:
        parts = path.strip("/").split("/")
        if host == "registry" and path == "/v1/models":
            self._need(caller, P.MODELS_READ)
            return [m for m in self.models if caller.covers(m["model_id"])]
        if host == "registry" and parts[-1] == "performance":
            self._need(caller, P.PERFORMANCE_READ)
            return self.performance.get((parts[2], parts[4]), [])
        if host == "alerting" and path == "/v1/alerts":
            self._need(caller, P.ALERTS_READ)
            status = request.url.params.get("status")
            return [
                a.model_dump(mode="json")
                for a in self.alerts.values()
                if a.status == status and caller.covers(a.model_id)
            ]
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
    services = Services(client, "http://registry", "http://alerting")
    console = Console(sessions or MemorySessions(), stand_in.keyring, services)
    return create_app(Settings(), console)
