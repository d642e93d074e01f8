"""Idempotency keys in Redis: an id resent within the window is stored once.

An id is first claimed as ``pending`` for a short time, and marked ``stored`` for the whole
window only after Kafka acknowledged its event. A crash between the two leaves a pending claim
that expires, so a retry is stored rather than lost; a resend while the first request is still
in flight sees ``pending`` and is asked to retry. Callers scope ids (``scoped_id``) so that
one producer's ids cannot claim another's: the prediction logger scopes them per model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vigil.adapters.ports import Claim, IdempotencyStore, Unavailable

__all__ = ["Claim", "IdempotencyKeys", "scoped_id"]

_CLAIMS: tuple[Claim, ...] = ("new", "stored", "pending")

# One digit per key, as one string (far cheaper to read back than an array): 0 if the key was
# free (now pending), 1 if stored, 2 if pending elsewhere.
_CLAIM = """
local states = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, 'pending', 'NX', 'EX', ARGV[1]) then
    states[i] = '0'
  elseif redis.call('GET', key) == 'stored' then
    states[i] = '1'
  else
    states[i] = '2'
  end
end
return table.concat(states)
"""
_CONFIRM = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'stored', 'EX', ARGV[1])
end
return #KEYS
"""


def scoped_id(scope: str, id_: str) -> str:
    """An id as claimed within a scope (a model): another scope's claims never collide with it.

    The scope is length-prefixed, so no pair of (scope, id) strings maps to the same key.
    """
    return f"{len(scope)}:{scope}:{id_}"


@asynccontextmanager
async def _redis_unavailable() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise Unavailable("Redis", type(exc).__name__) from exc


class IdempotencyKeys(IdempotencyStore):
    """The IdempotencyStore in Redis: one key per id, claimed and confirmed by Lua scripts."""

    def __init__(
        self, redis: Redis, prefix: str, window_seconds: int, pending_seconds: int = 30
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.window_seconds = window_seconds
        self.pending_seconds = pending_seconds
        self._claim_script = redis.register_script(_CLAIM)
        self._confirm_script = redis.register_script(_CONFIRM)

    def _key(self, id_: str) -> str:
        return f"{self.prefix}:{id_}"

    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        """Claim each id; "new" ones are now this caller's to store, then confirm or release."""
        if not ids:
            return []
        # One round trip for the whole batch, atomic per key.
        async with _redis_unavailable():
            states: bytes | str = await self._claim_script(
                keys=[self._key(i) for i in ids], args=[self.pending_seconds]
            )
        if isinstance(states, str):  # a client with decode_responses=True
            states = states.encode()
        return [_CLAIMS[state - 48] for state in states]  # 48 is ord("0")

    async def confirm(self, ids: Sequence[str]) -> None:
        """Mark ids stored for the whole window."""
        if ids:
            async with _redis_unavailable():
                await self._confirm_script(
                    keys=[self._key(i) for i in ids], args=[self.window_seconds]
                )

    async def release(self, ids: Sequence[str]) -> None:
        """Give claims back after a failed write, so a retry is not taken for a duplicate."""
        if ids:
            async with _redis_unavailable():
                await self.redis.delete(*[self._key(i) for i in ids])

    async def ping(self) -> None:
        await self.redis.ping()
