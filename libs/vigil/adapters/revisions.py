"""Revision locks: one writer at a time per record, across every replica of a service.

``RedisRevisionLocks`` is the production one: ``SET key token NX PX ttl`` to take a lock and a
compare-and-delete script to give it back, so a writer whose lock expired never frees another
writer's. Redis holds nothing that cannot be lost: after a flush or a restart the locks are
simply free, and the revision each writer checks is read from the record itself.
``LocalRevisionLocks`` serves a single process (one replica, tests).

Model versions are locked under ``MODEL_VERSION_LOCKS`` with the key ``<model_id>/<version>``
by every writer of ``vigil.models.v1``: the registry, and the drift detector when it publishes
a production reference it built.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vigil.adapters.ports import RevisionLocks, Unavailable

__all__ = [
    "MODEL_VERSION_LOCKS",
    "LocalRevisionLocks",
    "LockBusy",
    "RedisRevisionLocks",
    "held",
]

log = logging.getLogger(__name__)

# The Redis key prefix of the model versions' locks, shared by every writer of the models topic.
MODEL_VERSION_LOCKS = "vigil:registry:lock"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockBusy(Exception):
    """Another writer held the lock for longer than the caller would wait."""

    def __init__(self, key: str, waited: float) -> None:
        super().__init__(f"{key} was held by another writer for {waited:g} s")
        self.key = key
        self.waited = waited


class RedisRevisionLocks(RevisionLocks):
    """Locks as Redis keys with an expiry; Redis not answering raises Unavailable."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._release = redis.register_script(_RELEASE)

    @classmethod
    async def open(cls, stack: AsyncExitStack, url: str, prefix: str) -> RedisRevisionLocks:
        """Locks on a new Redis client (not checked now: only writes need it), closed with stack."""
        redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        stack.push_async_callback(redis.aclose)
        return cls(redis, prefix)

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        try:
            taken = await self.redis.set(
                f"{self.prefix}:{key}", token, nx=True, px=max(1, int(ttl_seconds * 1000))
            )
        except RedisError as exc:
            raise Unavailable("Redis", type(exc).__name__) from exc
        return bool(taken)

    async def release(self, key: str, token: str) -> None:
        try:
            await self._release(keys=[f"{self.prefix}:{key}"], args=[token])
        except RedisError as exc:
            raise Unavailable("Redis", type(exc).__name__) from exc


class LocalRevisionLocks(RevisionLocks):
    """Locks in a dict, for one process: they serialise nothing across replicas."""

    def __init__(self) -> None:
        self.holders: dict[str, tuple[str, float]] = {}  # key -> (token, expiry)

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        holder = self.holders.get(key)
        if holder is not None and holder[1] > now:
            return False
        self.holders[key] = (token, now + ttl_seconds)
        return True

    async def release(self, key: str, token: str) -> None:
        if self.holders.get(key, ("", 0.0))[0] == token:
            del self.holders[key]


@asynccontextmanager
async def held(
    locks: RevisionLocks, key: str, ttl_seconds: float, wait_seconds: float
) -> AsyncIterator[None]:
    """Hold ``key`` for the block, waiting up to ``wait_seconds`` for it; else LockBusy."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    delay = 0.005
    while not await locks.acquire(key, token, ttl_seconds):
        if time.monotonic() >= deadline:
            raise LockBusy(key, wait_seconds)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    try:
        yield
    finally:
        try:
            await locks.release(key, token)
        except Unavailable:
            # What the block did stands; the lock frees itself when its ttl runs out.
            log.warning("could not release %s; it expires in %g s", key, ttl_seconds)
