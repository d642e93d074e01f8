"""Who may do what: roles, permissions, model scopes, API keys and the audit record.

Pure logic and records; ``vigil.adapters.auth`` applies them to HTTP requests. A key is
``vgl_<id>_<secret>``: the id (public, listed, audited) finds the stored record, whose
``key_hash`` (SHA-256 of the whole key) is compared in constant time. Only the hash is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, get_args

from pydantic import Field

from vigil.wire.records import Record

__all__ = [
    "ALL_MODELS",
    "GRANTS",
    "KEY_PREFIX",
    "ROLES",
    "ApiKey",
    "AuditEvent",
    "Caller",
    "Permission",
    "Role",
    "hash_key",
    "key_id_of",
    "key_matches",
    "new_key",
]

Role = Literal["producer", "sme", "data_scientist", "oncall", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
ALL_MODELS = "*"
KEY_PREFIX = "vgl_"
_KEY = re.compile(r"^vgl_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


class Permission(StrEnum):
    """What an endpoint needs; roles grant sets of them (``GRANTS``)."""

    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    PREDICTIONS_WRITE = "predictions:write"
    FEEDBACK_TRUTH = "feedback:ground_truth"
    FEEDBACK_REVIEW = "feedback:review"
    PERFORMANCE_READ = "performance:read"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"
    SUBSCRIPTIONS_READ = "subscriptions:read"
    SUBSCRIPTIONS_WRITE = "subscriptions:write"
    AUDIT_READ = "audit:read"
    KEYS_ADMIN = "keys:admin"


P = Permission
_READS = frozenset(p for p in Permission if p.value.endswith(":read"))
GRANTS: dict[Role, frozenset[Permission]] = {
    "producer": frozenset({P.MODELS_READ, P.PREDICTIONS_WRITE, P.FEEDBACK_TRUTH}),
    "sme": frozenset({P.MODELS_READ, P.FEEDBACK_REVIEW, P.PERFORMANCE_READ, P.ALERTS_READ}),
    "data_scientist": frozenset({P.MODELS_READ, P.MODELS_WRITE, P.PERFORMANCE_READ, P.ALERTS_READ}),
    "oncall": frozenset(
        {P.MODELS_READ, P.ALERTS_READ, P.ALERTS_WRITE, P.SUBSCRIPTIONS_READ, P.SUBSCRIPTIONS_WRITE}
    ),
    "auditor": _READS,
    "admin": frozenset(Permission),
}


# GRANTS by any role name a stored key may carry (unknown names grant nothing).
_GRANTED: dict[str, frozenset[Permission]] = {role: grants for role, grants in GRANTS.items()}


class ApiKey(Record):
    """One key of a principal, as stored on ``vigil.keys.v1`` (never with its secret)."""

    id: str
    principal: str
    roles: list[str]
    models: list[str]
    key_hash: str
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    rotated_from: str | None = None

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class AuditEvent(Record):
    """One state-changing call, allowed or refused (``vigil.audit.v1``)."""

    event_id: str
    time: datetime
    service: str
    key_id: str | None = None
    principal: str | None = None
    roles: list[str] = Field(default_factory=list)
    action: str
    resource: str
    model_id: str | None = None
    status: int
    request_id: str
    detail: str | None = None


@dataclass(frozen=True)
class Caller:
    """The principal behind a request's key: its roles and the models it may act on."""

    key_id: str
    principal: str
    roles: frozenset[str]
    models: frozenset[str]

    @classmethod
    def of(cls, key: ApiKey) -> Caller:
        return cls(key.id, key.principal, frozenset(key.roles), frozenset(key.models))

    def may(self, permission: Permission) -> bool:
        return any(permission in _GRANTED.get(role, frozenset()) for role in self.roles)

    def covers(self, model_id: str) -> bool:
        """Whether ``model_id`` is in this caller's model scope."""
        return ALL_MODELS in self.models or model_id in self.models

    def covers_all(self, models: list[str]) -> bool:
        """Whether every model of ``models`` (which may be ["*"]) is in scope."""
        if ALL_MODELS in self.models:
            return True
        return ALL_MODELS not in models and all(m in self.models for m in models)

    def roles_with(self, permission: Permission) -> list[str]:
        """The roles that grant ``permission``, for a refusal's message."""
        return [role for role in ROLES if permission in GRANTS[role] and role != "admin"] or [
            "admin"
        ]


def new_key() -> tuple[str, str]:
    """A fresh (id, key): 64 random bits of id and 256 of secret."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str:
    """The id a key is stored under: its own for Vigil's keys, derived for any other string
    (e.g. an operator's ``VIGIL_BOOTSTRAP_ADMIN_KEY``)."""
    match = _KEY.match(key)
    if match is not None:
        return match.group(1)
    return "x" + hashlib.sha256(b"vigil-key-id:" + key.encode()).hexdigest()[:15]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored: ApiKey) -> bool:
    """Whether ``key`` is the one ``stored`` was made from, compared in constant time."""
    return hmac.compare_digest(hash_key(key), stored.key_hash)
