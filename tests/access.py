"""API keys for the tests: fixed keys of every role, a guard on fakes, keys on the real topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from aiokafka import AIOKafkaProducer

from vigil.adapters.auth import AuditTrail, Guard
from vigil.adapters.keyring import MemoryKeyring
from vigil.adapters.ports import AuditLog, AuditPage, Bus
from vigil.wire.access import ALL_MODELS, ApiKey, AuditEvent, hash_key, key_id_of, new_key
from vigil.wire.codec import Codec
from vigil.wire.records import utcnow
from vigil.wire.topics import AUDIT, KEYS

ADMIN_KEY = "vgl_00000000000000ad_" + "A" * 43
AUDIT_CODEC = Codec(AuditEvent)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(ADMIN_KEY)


def api_key(
    principal: str,
    roles: Sequence[str],
    models: Sequence[str] = (ALL_MODELS,),
    key: str | None = None,
) -> tuple[str, ApiKey]:
    """A key (the secret) and its stored record."""
    secret = key if key is not None else new_key()[1]
    record = ApiKey(
        id=key_id_of(secret),
        principal=principal,
        roles=list(roles),
        models=list(models),
        key_hash=hash_key(secret),
        created_at=utcnow(),
    )
    return secret, record


ADMIN_RECORD = api_key("admin", ["admin"], key=ADMIN_KEY)[1]
# The admin key of one run of the tests against real services: random, stored on the keys
# topic while the run lasts and revoked at its end (tests/conftest.py ``session_admin``).
SESSION_KEY, _RECORD = api_key("tests", ["admin"])
SESSION_RECORD = _RECORD.model_copy(update={"expires_at": utcnow() + timedelta(hours=3)})
SESSION = bearer(SESSION_KEY)


class FakeAuditLog(AuditLog):
    """The audit events a FakeBus holds, read newest first like the real trail."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def page(
        self,
        before: int | None,
        limit: int,
        since: datetime | None,
        match: Callable[[AuditEvent], bool],
    ) -> AuditPage:
        messages = self.bus.messages[AUDIT.name]  # type: ignore[attr-defined]
        cursor = len(messages) if before is None else min(before, len(messages))
        found: list[AuditEvent] = []
        while cursor > 0 and len(found) < limit:
            cursor -= 1
            event = AUDIT_CODEC.decode(messages[cursor][1])
            if since is not None and event.time < since:
                cursor = 0
                break
            if match(event):
                found.append(event)
        return AuditPage(found, cursor if cursor > 0 else None)


def fake_guard(*keys: ApiKey, audit: Bus | None = None) -> Guard:
    """A guard that knows the admin key and ``keys``, auditing onto ``audit`` (a FakeBus of
    its own by default)."""
    from tests.unit.fakes import FakeBus

    bus = audit if audit is not None else FakeBus()
    return Guard(MemoryKeyring([ADMIN_RECORD, *keys]), AuditTrail(bus, "tests"))


async def publish_keys(bootstrap: str, *keys: ApiKey) -> None:
    """Store key records on the real ``vigil.keys.v1``, as the registry does."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        codec = Codec(ApiKey)
        for key in keys:
            await producer.send_and_wait(KEYS.name, codec.encode(key), key=key.id.encode())
    finally:
        await producer.stop()


def unique_admin() -> tuple[str, ApiKey]:
    """An admin key of its own for one test on the shared broker; it expires within the hour,
    so that none outlives its test (and stops `make up` from writing .run/admin.key)."""
    secret, record = api_key(f"tests-{uuid.uuid4().hex[:6]}", ["admin"])
    return secret, record.model_copy(update={"expires_at": utcnow() + timedelta(hours=1)})


def revoked(key: ApiKey) -> ApiKey:
    return key.model_copy(update={"revoked_at": utcnow(), "revoked_by": "tests"})
