"""The ports services depend on: a bus of topics, idempotency keys and the model catalog.

Each is implemented by the adapter beside it (``bus``, ``idempotency``, ``catalog``) and, in
unit tests, by an in-memory fake; none of them imports a client library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from vigil.adapters.stage_logic import Incoming
from vigil.wire.access import ApiKey, AuditEvent
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, Record
from vigil.wire.topics import Topic

__all__ = [
    "AuditLog",
    "AuditPage",
    "Bus",
    "Catalog",
    "Claim",
    "IdempotencyStore",
    "Keyring",
    "RevisionLocks",
    "Unavailable",
    "keyed",
]

R = TypeVar("R", bound=Record)
# What claiming an id found: free (now the caller's), stored already, or being stored elsewhere.
Claim = Literal["new", "stored", "pending"]


class Unavailable(Exception):
    """A back-end (Kafka, Redis) did not do what was asked: nothing is known to be stored."""

    def __init__(self, backend: str, cause: str) -> None:
        super().__init__(f"{backend} is unavailable ({cause})")
        self.backend = backend
        self.cause = cause


def keyed(
    codec: Codec[R], records: Sequence[R], key: Callable[[R], str]
) -> list[tuple[bytes, bytes]]:
    """Records as (key, value) messages: the key as UTF-8, the value encoded by ``codec``."""
    return [(key(r).encode(), codec.encode(r)) for r in records]


class Bus(ABC):
    """Where records are published: Kafka topics in production, lists in unit tests."""

    @abstractmethod
    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Write (key, value) messages; return once each is stored, else raise Unavailable."""

    @abstractmethod
    async def dead_letter(self, message: Incoming, reason: str) -> None:
        """Store a message that cannot be read, untouched, on the dead-letter topic with why."""

    @abstractmethod
    async def ping(self) -> None:
        """Return if the bus answers; raise the client's own error if it does not."""

    async def publish(
        self, topic: Topic, codec: Codec[R], records: Sequence[R], key: Callable[[R], str]
    ) -> None:
        """Write records keyed by ``key``; return once each is stored, else raise Unavailable."""
        await self.send(topic.name, keyed(codec, records, key))


class IdempotencyStore(ABC):
    """Ids stored at most once within a window: claim them, then confirm or release them."""

    @abstractmethod
    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        """Claim each id; "new" ones are now the caller's to store, then confirm or release."""

    @abstractmethod
    async def confirm(self, ids: Sequence[str]) -> None:
        """Mark ids stored for the whole window."""

    @abstractmethod
    async def release(self, ids: Sequence[str]) -> None:
        """Give claims back after a failed write, so a retry is not taken for a duplicate."""

    @abstractmethod
    async def ping(self) -> None:
        """Return if the store answers; raise the client's own error if it does not."""


class Catalog(ABC):
    """The latest record of every model version, by (model_id, version)."""

    @abstractmethod
    def get(self, model_id: str, version: str) -> ModelVersion | None:
        """The version as known now, or None."""

    @abstractmethod
    def versions(self, model_id: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""

    @abstractmethod
    def model_ids(self) -> list[str]:
        """Every model with at least one version, sorted."""

    @abstractmethod
    def apply(self, record: ModelVersion) -> None:
        """Take a newer record of a version (read-your-writes after publishing it)."""

    @abstractmethod
    async def catch_up(self) -> None:
        """Return once every version published before the call is known."""

    async def lookup(self, model_id: str, version: str) -> ModelVersion | None:
        """The version, catching up first if it is not known yet (it may be a moment old)."""
        found = self.get(model_id, version)
        if found is None:
            await self.catch_up()
            found = self.get(model_id, version)
        return found


class Keyring(ABC):
    """Every API key by id (hashes, never secrets), as the registry published them."""

    @abstractmethod
    def get(self, key_id: str) -> ApiKey | None:
        """The key's latest record, or None."""

    @abstractmethod
    def every_key(self) -> list[ApiKey]:
        """Every key, oldest first."""

    @abstractmethod
    def apply(self, key: ApiKey) -> None:
        """Take a newer record of a key (read-your-writes after publishing it)."""

    @abstractmethod
    async def catch_up(self) -> None:
        """Return once every key published before the call is known."""


@dataclass(frozen=True)
class AuditPage:
    """Audit events newest first, and the cursor of the next (older) page, None after the last."""

    events: list[AuditEvent]
    next_before: int | None


class AuditLog(ABC):
    """The audit trail as written to ``vigil.audit.v1``, read newest first."""

    @abstractmethod
    async def page(
        self,
        before: int | None,
        limit: int,
        since: datetime | None,
        match: Callable[[AuditEvent], bool],
    ) -> AuditPage:
        """Up to ``limit`` events that ``match``, newest first, older than cursor ``before``
        (from the newest when None) and not older than ``since``."""


class RevisionLocks(ABC):
    """Short locks shared by every replica of a writer, one per key (a model version).

    They serialise read-modify-write updates of one record; they hold no state that cannot be
    lost: the record's revision lives with the record.
    """

    @abstractmethod
    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``token`` for at most ``ttl_seconds``; False if another holds it."""

    @abstractmethod
    async def release(self, key: str, token: str) -> None:
        """Give ``key`` back if ``token`` still holds it (an expired lock is left alone)."""
