"""Signed-in sessions: the user's API key and CSRF token, kept server-side under a random id.

The browser holds only the session id (an HttpOnly, SameSite=Strict cookie); the key never
reaches the page. Redis keys are the SHA-256 of the id, so whoever reads Redis cannot replay
a browser's cookie from them.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

__all__ = ["RedisSessions", "Session", "SessionStore", "new_token"]


def new_token() -> str:
    """A random, URL-safe token of 256 bits (session ids, CSRF tokens)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    """One signed-in browser: the key it acts with and the token its forms must carry."""

    key: str
    csrf: str


class SessionStore(ABC):
    """Where sessions live; each expires after ``seconds`` without being loaded."""

    @abstractmethod
    async def save(self, session_id: str, session: Session, seconds: int) -> None:
        """Keep ``session`` under ``session_id``."""

    @abstractmethod
    async def load(self, session_id: str, seconds: int) -> Session | None:
        """The session, its expiry pushed ``seconds`` ahead; None when unknown or expired."""

    @abstractmethod
    async def drop(self, session_id: str) -> None:
        """Forget the session (signing out)."""


class RedisSessions(SessionStore):
    """Sessions in Redis, one string per session with its expiry."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    @classmethod
    async def open(cls, stack: AsyncExitStack, url: str, prefix: str) -> RedisSessions:
        """Sessions on a new Redis client, checked to answer, closed with ``stack``."""
        redis = Redis.from_url(url)
        stack.push_async_callback(redis.aclose)
        await redis.ping()
        return cls(redis, prefix)

    def _name(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return f"{self.prefix}:session:{digest}"

    async def save(self, session_id: str, session: Session, seconds: int) -> None:
        value = orjson.dumps({"key": session.key, "csrf": session.csrf})
        await self.redis.set(self._name(session_id), value, ex=seconds)

    async def load(self, session_id: str, seconds: int) -> Session | None:
        value = await self.redis.getex(self._name(session_id), ex=seconds)
        if value is None:
            return None
        data = orjson.loads(value)
        return Session(key=data["key"], csrf=data["csrf"])

    async def drop(self, session_id: str) -> None:
        await self.redis.delete(self._name(session_id))
