"""Key management and the audit trail, on the registry: ``/v1/keys``, ``/v1/principals``,
``/v1/audit``; and the first admin key, created at start-up when there is none."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.config import Settings
from vigil.adapters.auth import Guard, allowed, refuse_model
from vigil.adapters.http import InputRejected, error_responses, json_limits, stored_or_503
from vigil.adapters.ports import AuditLog, Bus, Unavailable
from vigil.wire.access import (
    ALL_MODELS,
    ApiKey,
    AuditEvent,
    Caller,
    Permission,
    Role,
    hash_key,
    key_id_of,
    key_matches,
    new_key,
)
from vigil.wire.codec import Codec
from vigil.wire.records import utcnow
from vigil.wire.shapes import Identifier, Name, Timestamp, is_identifier
from vigil.wire.topics import KEYS
from vigil.wire.validation import FieldError

__all__ = ["KeyRequest", "access_router", "bootstrap_admin", "publish_key"]

log = logging.getLogger(__name__)
CODEC = Codec(ApiKey)
access_router = APIRouter()
Admin = Annotated[Caller, Depends(allowed(Permission.KEYS_ADMIN))]
Auditor = Annotated[Caller, Depends(allowed(Permission.AUDIT_READ))]


class KeyRequest(BaseModel):
    """A new key: whose it is, its roles, the models it may act on, when it expires."""

    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="The principal the key belongs to (a person or an app).")
    roles: list[Role] = Field(min_length=1, max_length=6)
    models: list[str] = Field(
        default_factory=lambda: [ALL_MODELS],
        min_length=1,
        max_length=1000,
        description='Model ids in scope, or ["*"] for every model.',
    )
    expires_at: Timestamp | None = None
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)

    @field_validator("models")
    @classmethod
    def _model_ids(cls, models: list[str]) -> list[str]:
        bad = [m for m in models if m != ALL_MODELS and not is_identifier(m)]
        if bad:
            raise ValueError(f'model ids or "*" expected, got {bad[0]!r}')
        return sorted(set(models))


def key_summary(key: ApiKey, now: datetime) -> dict[str, Any]:
    """A key as listed: everything but its hash."""
    return {
        "id": key.id,
        "name": key.principal,
        "roles": key.roles,
        "models": key.models,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "rotated_from": key.rotated_from,
        "active": key.active(now),
    }


async def publish_key(request: Request, key: ApiKey) -> None:
    """Store a key record on ``vigil.keys.v1`` and in this replica's keyring at once."""
    bus: Bus = request.app.state.adapters.bus
    await stored_or_503(bus.send(KEYS.name, [(key.id.encode(), CODEC.encode(key))]))
    guard: Guard = request.app.state.guard
    guard.keyring.apply(key)


def _created(key: ApiKey, secret: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "key": secret,
        "name": key.principal,
        "roles": key.roles,
        "models": key.models,
        "expires_at": key.expires_at,
    }


def _expiry(body: KeyRequest, now: datetime) -> datetime | None:
    if body.expires_at is not None and body.expires_in_days is not None:
        raise InputRejected(
            "give expires_at or expires_in_days, not both",
            [FieldError("expires_in_days", "absent when expires_at is given", "both")],
        )
    if body.expires_in_days is not None:
        return now + timedelta(days=body.expires_in_days)
    if body.expires_at is not None and body.expires_at <= now:
        raise InputRejected(
            "expires_at is in the past",
            [FieldError("expires_at", "a time in the future", body.expires_at.isoformat())],
        )
    return body.expires_at


@access_router.post(
    "/v1/keys",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(json_limits)],
    responses=error_responses(503),
)
async def create_key(body: KeyRequest, caller: Admin, request: Request) -> dict[str, Any]:
    """Create a key. The answer holds the key itself: it is shown this once, never again."""
    now = utcnow()
    key_id, secret = new_key()
    key = ApiKey(
        id=key_id,
        principal=body.name,
        roles=sorted(set(body.roles)),
        models=body.models,
        key_hash=hash_key(secret),
        created_at=now,
        created_by=caller.principal,
        expires_at=_expiry(body, now),
    )
    await publish_key(request, key)
    return _created(key, secret)


@access_router.get("/v1/keys")
async def list_keys(
    _: Admin,
    request: Request,
    principal: Annotated[str | None, Query(max_length=128)] = None,
    include_revoked: bool = False,
) -> list[dict[str, Any]]:
    """Every key (never its secret or hash), oldest first."""
    guard: Guard = request.app.state.guard
    now = utcnow()
    return [
        key_summary(k, now)
        for k in guard.keyring.every_key()
        if (principal is None or k.principal == principal)
        and (include_revoked or k.revoked_at is None)
    ]


def _known(request: Request, key_id: str) -> ApiKey:
    guard: Guard = request.app.state.guard
    key = guard.keyring.get(key_id)
    if key is None:
        raise InputRejected(f"there is no key {key_id!r}", [], 404)
    return key


@access_router.delete("/v1/keys/{key_id}", responses=error_responses(404, 503))
async def revoke_key(key_id: str, caller: Admin, request: Request) -> dict[str, Any]:
    """Revoke a key: every service refuses it within about a second."""
    key = _known(request, key_id)
    if key.revoked_at is None:
        key = key.model_copy(update={"revoked_at": utcnow(), "revoked_by": caller.principal})
        await publish_key(request, key)
    return key_summary(key, utcnow())


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: float = Field(
        default=0, ge=0, le=30 * 86400, description="How long the old key keeps working."
    )


@access_router.post(
    "/v1/keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(404, 409, 503),
)
async def rotate_key(
    key_id: str, caller: Admin, request: Request, body: Rotation | None = None
) -> dict[str, Any]:
    """A new key with the same principal, roles, models and expiry; the old one is revoked
    (or expires after ``grace_seconds``)."""
    old = _known(request, key_id)
    now = utcnow()
    if not old.active(now):
        raise InputRejected(f"key {key_id!r} is revoked or expired: create a new one", [], 409)
    new_id, secret = new_key()
    new = old.model_copy(
        update={
            "id": new_id,
            "key_hash": hash_key(secret),
            "created_at": now,
            "created_by": caller.principal,
            "rotated_from": old.id,
        }
    )
    grace = (body or Rotation()).grace_seconds
    if grace:
        until = now + timedelta(seconds=grace)
        ending = old.model_copy(
            update={"expires_at": min(until, old.expires_at) if old.expires_at else until}
        )
    else:
        ending = old.model_copy(update={"revoked_at": now, "revoked_by": caller.principal})
    await publish_key(request, new)
    await publish_key(request, ending)
    return _created(new, secret)


@access_router.delete("/v1/principals/{name}", responses=error_responses(404, 503))
async def delete_principal(name: str, caller: Admin, request: Request) -> dict[str, Any]:
    """Revoke every key of a principal."""
    guard: Guard = request.app.state.guard
    keys = [k for k in guard.keyring.every_key() if k.principal == name]
    if not keys:
        raise InputRejected(f"there is no principal {name!r}", [], 404)
    now = utcnow()
    revoked = [k.id for k in keys if k.revoked_at is None]
    for key in keys:
        if key.revoked_at is None:
            await publish_key(
                request, key.model_copy(update={"revoked_at": now, "revoked_by": caller.principal})
            )
    return {"name": name, "revoked": revoked}


@access_router.get("/v1/audit", responses=error_responses(503))
async def audit(
    caller: Auditor,
    request: Request,
    model_id: Annotated[Identifier | None, Query()] = None,
    principal: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[Timestamp | None, Query()] = None,
    before: Annotated[int | None, Query(ge=0, description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """State-changing calls, allowed or refused, newest first; ``next`` pages on."""
    if model_id is not None and not caller.covers(model_id):
        raise refuse_model(caller, model_id)

    def match(event: AuditEvent) -> bool:
        return (
            (model_id is None or event.model_id == model_id)
            and (principal is None or event.principal == principal)
            and (ALL_MODELS in caller.models or event.model_id in caller.models)
        )

    audit_log: AuditLog | None = request.app.state.adapters.audit_log
    if audit_log is None:
        raise Unavailable("the audit trail", "not opened by this registry")
    page = await audit_log.page(before, limit, since, match)
    return {"events": page.events, "next": page.next_before}


async def bootstrap_admin(app: FastAPI, settings: Settings) -> None:
    """Make sure an admin key exists: ``VIGIL_BOOTSTRAP_ADMIN_KEY`` if set; else a new one,
    written to ``VIGIL_ADMIN_KEY_FILE`` (mode 0600), when no active admin key exists or when
    that file holds a key that no longer works (revoked, expired, or its topic was wiped)."""
    guard: Guard = app.state.guard
    bus: Bus = app.state.adapters.bus
    await guard.keyring.catch_up()
    now = utcnow()
    given = settings.bootstrap_admin_key
    wanted = given.get_secret_value() if given is not None else None
    if wanted is not None:
        if _works_as_admin(guard, wanted, now):
            return
        secret, key_id = wanted, key_id_of(wanted)
    else:
        held = await asyncio.to_thread(_read_key_file, settings.admin_key_file)
        if held is not None and _works_as_admin(guard, held, now):
            return
        if held is None and any(
            "admin" in k.roles and k.active(now) for k in guard.keyring.every_key()
        ):
            return
        key_id, secret = new_key()
    key = ApiKey(
        id=key_id,
        principal="admin",
        roles=["admin"],
        models=[ALL_MODELS],
        key_hash=hash_key(secret),
        created_at=now,
    )
    await bus.send(KEYS.name, [(key.id.encode(), CODEC.encode(key))])
    guard.keyring.apply(key)
    if wanted is None:
        path = await asyncio.to_thread(_write_key_file, settings.admin_key_file, secret)
        log.warning("created the first admin key (%s); it is in %s", key_id, path)
    else:
        log.warning("admin key %s from VIGIL_BOOTSTRAP_ADMIN_KEY is registered", key_id)


def _works_as_admin(guard: Guard, key: str, now: datetime) -> bool:
    stored = guard.keyring.get(key_id_of(key))
    return (
        stored is not None
        and key_matches(key, stored)
        and stored.active(now)
        and "admin" in stored.roles
    )


def _read_key_file(name: str) -> str | None:
    """The key in an admin key file, or None if there is none."""
    path = Path(name)
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def _write_key_file(name: str, secret: str) -> Path:
    """Write a key to a file only its owner may read; the file's absolute path."""
    path = Path(name).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    path.chmod(0o600)  # also when the file was there before
    return path
