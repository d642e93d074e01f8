"""API keys on every endpoint, and an audit record of every state-changing call.

``allowed(permission)`` is the FastAPI dependency each route declares: it reads the bearer key,
checks it against the service's keyring (constant-time hash comparison, no network hop), then
the key's roles and, when the path names a model, its model scope. Refusals are 401 (with
``WWW-Authenticate: Bearer``) or 403 naming what is missing, and are counted in
``vigil_auth_refused_total{reason}``. ``Audited`` records every POST, PUT, PATCH and DELETE,
allowed or refused, as an ``AuditEvent`` on ``vigil.audit.v1`` before the answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter

from vigil.adapters.bus import KafkaBus, started
from vigil.adapters.http import InputRejected
from vigil.adapters.kafka_security import Kafka
from vigil.adapters.keyring import KeyringFollower
from vigil.adapters.ports import Bus, Keyring
from vigil.wire.access import AuditEvent, Caller, Permission, key_id_of, key_matches
from vigil.wire.codec import Codec
from vigil.wire.records import utcnow
from vigil.wire.topics import AUDIT
from vigil.wire.validation import FieldError

__all__ = [
    "AuditTrail",
    "Audited",
    "Guard",
    "allowed",
    "authenticate",
    "refuse_model",
]

log = logging.getLogger(__name__)

REFUSED = Counter(
    "vigil_auth_refused_total",
    "Requests refused for their API key (missing, malformed, unknown, revoked, expired) or"
    " its powers (role, model), by reason.",
    ["reason"],
)
AUDIT_FAILED = Counter(
    "vigil_audit_write_failures_total",
    "Audit events Kafka did not acknowledge in time (the call itself was answered).",
)
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="VigilKey",
    description="A Vigil API key: `Authorization: Bearer vgl_…` (see `vigil keys create`).",
)
_DECLARED = Security(BEARER)  # declares the scheme in the OpenAPI ("Authorize" in /docs)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vigil"'}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_AUDIT_CODEC = Codec(AuditEvent)


@dataclass(frozen=True)
class AuditTrail:
    """Where a service's audit events go; ``record`` waits (bounded) for Kafka's ack."""

    bus: Bus
    service: str
    within: float = 5.0

    async def record(self, event: AuditEvent) -> None:
        message = ((event.model_id or "").encode(), _AUDIT_CODEC.encode(event))
        try:
            await asyncio.wait_for(self.bus.send(AUDIT.name, [message]), self.within)
        except Exception as exc:  # the call is answered either way; the loss is counted
            AUDIT_FAILED.inc()
            log.error("audit event %s not stored: %s: %s", event.event_id, type(exc).__name__, exc)


@dataclass(frozen=True)
class Guard:
    """A service's access adapters: the keys it checks, the trail it writes."""

    keyring: Keyring
    audit: AuditTrail

    @classmethod
    async def open(cls, stack: AsyncExitStack, kafka: Kafka, service: str) -> Guard:
        keyring = await started(stack, KeyringFollower(kafka))
        bus = await KafkaBus.open(stack, kafka, f"vigil-{service}-audit")
        return cls(keyring, AuditTrail(bus, service))


def _refuse(reason: str, detail: str, status: int = 401) -> InputRejected:
    REFUSED.labels(reason).inc()
    headers = _CHALLENGE if status == 401 else None
    field = "Authorization" if status == 401 else "<key>"
    expected = "Bearer <a valid Vigil API key>" if status == 401 else "a key with that power"
    return InputRejected(detail, [FieldError(field, expected, reason)], status, headers)


def authenticate(keyring: Keyring, header: str | None, now: datetime) -> Caller:
    """The caller behind an ``Authorization`` header; 401 naming the problem otherwise."""
    if not header:
        raise _refuse("missing", "no API key: send 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or len(key) > 512 or " " in key:
        raise _refuse("malformed", "the Authorization header is not 'Bearer <key>'")
    stored = keyring.get(key_id_of(key))
    if stored is None or not key_matches(key, stored):
        raise _refuse("unknown", "the API key is not known")
    if stored.revoked_at is not None:
        raise _refuse("revoked", f"the API key {stored.id} was revoked")
    if stored.expires_at is not None and now >= stored.expires_at:
        raise _refuse("expired", f"the API key {stored.id} expired at {stored.expires_at}")
    return Caller.of(stored)


def refuse_model(caller: Caller, model_id: str) -> InputRejected:
    """The 403 for a model outside the caller's scope."""
    scope = ", ".join(sorted(caller.models)) or "none"
    return _refuse(
        "model",
        f"principal {caller.principal!r} may not act on model {model_id!r}"
        f" (the key's models: {scope})",
        403,
    )


def allowed(
    permission: Permission, *alternatives: Permission, model_param: str = "model_id"
) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the request's caller, who must hold ``permission`` (or one of the
    ``alternatives``) and, when the path has ``model_param``, have that model in scope."""
    wanted = (permission, *alternatives)

    async def check(
        request: Request,
        _: HTTPAuthorizationCredentials | None = _DECLARED,
    ) -> Caller:
        guard: Guard = request.app.state.guard
        caller = authenticate(guard.keyring, request.headers.get("authorization"), utcnow())
        request.state.caller = caller
        if not any(caller.may(p) for p in wanted):
            roles = sorted({r for p in wanted for r in caller.roles_with(p)})
            raise _refuse(
                "role",
                f"principal {caller.principal!r} (roles: {', '.join(sorted(caller.roles))})"
                f" may not {' or '.join(p.value for p in wanted)}: that needs the role"
                f" {' or '.join(roles)}",
                403,
            )
        model_id = request.path_params.get(model_param)
        if isinstance(model_id, str):
            request.state.model_id = model_id
            if not caller.covers(model_id):
                raise refuse_model(caller, model_id)
        return caller

    return check


class Audited:
    """ASGI middleware: each POST/PUT/PATCH/DELETE is recorded as an AuditEvent, with its
    answer's status, before the answer goes out; every answer carries ``X-Request-ID``."""

    def __init__(self, app: Any, guard: Callable[[], Guard | None], service: str) -> None:
        self.app = app
        self.guard = guard
        self.service = service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        sent = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        held: dict[str, Any] | None = None

        async def audited(message: Any) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                extra = [(b"x-request-id", request_id.encode())]
                held = {**message, "headers": [*message.get("headers", []), *extra]}
                return
            if held is not None:
                start, held = held, None
                await self._record(scope, headers, start["status"], request_id)
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, audited)
        except Exception:
            await self._record(scope, headers, 500, request_id)
            raise

    async def _record(
        self, scope: Any, headers: dict[bytes, bytes], status: int, request_id: str
    ) -> None:
        guard = self.guard()
        if guard is None:
            return
        state = scope.get("state", {})
        caller: Caller | None = state.get("caller")
        route = scope.get("route")
        path = scope["path"]
        model_id = state.get("model_id") or scope.get("path_params", {}).get("model_id")
        event = AuditEvent(
            event_id=uuid.uuid4().hex,
            time=utcnow(),
            service=self.service,
            key_id=caller.key_id if caller else _key_id(headers),
            principal=caller.principal if caller else None,
            roles=sorted(caller.roles) if caller else [],
            action=f"{scope['method']} {getattr(route, 'path', path)}",
            resource=path[:1024],
            model_id=model_id[:256] if isinstance(model_id, str) else None,
            status=status,
            request_id=request_id,
            detail=state.get("audit_detail"),
        )
        await guard.audit.record(event)


def _key_id(headers: dict[bytes, bytes]) -> str | None:
    """The id a refused call's key claims, if it is shaped like a Vigil key (never a secret)."""
    value = headers.get(b"authorization", b"").decode("latin-1")
    _, _, key = value.partition(" ")
    key = key.strip()
    if not key.startswith("vgl_"):
        return None
    key_id = key_id_of(key)
    return None if key_id.startswith("x") else key_id
