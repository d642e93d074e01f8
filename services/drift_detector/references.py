"""Production references, published as the registry publishes a change. No Kafka here.

A reference the merger built from a version's first events is written to ``vigil.models.v1``
under the registry's revision rule, so that no change made through the registry is lost:

1. the version's lock is taken: the registry's own (``RevisionLocks``, in Redis under
   ``vigil.adapters.revisions.MODEL_VERSION_LOCKS``). One try per flush, never a wait: while
   the registry holds it, or Redis does not answer, the publication is tried again a few
   seconds later, the reference being used by this worker meanwhile;
2. the catalog catches up, so that the record changed is the latest one, with every registry
   write made before the lock was taken;
3. if that record has a reference already (an upload won the race), nothing is published and
   the merger adopts it; otherwise the record is published with the built reference as its
   next one and a new revision (``published_record``), in the merger's transaction;
4. the lock is held until that transaction is over, committed or aborted, and given back at
   the start of the next flush: the registry's next change reads the record published.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from drift_detector.versions import Key, is_live
from vigil.adapters.ports import Catalog, RevisionLocks, Unavailable
from vigil.wire.records import ModelVersion, ReferenceChange, ReferenceProfile

__all__ = ["Decision", "ReferencePublisher", "published_record"]

log = logging.getLogger(__name__)

# "publish": the record to send; "adopt": the registry's record has a reference, which wins;
# "later": the lock or the catalog was not to be had now; "gone": the version was retired.
Outcome = Literal["publish", "adopt", "later", "gone"]


@dataclass(frozen=True)
class Decision:
    """What to do with a built reference now, and the record it concerns."""

    outcome: Outcome
    record: ModelVersion | None = None


LATER = Decision("later")


def published_record(
    latest: ModelVersion, reference: ReferenceProfile, now: datetime
) -> ModelVersion:
    """``latest`` with ``reference`` as its next reference, as the registry records one:
    numbered past every earlier one, in the history, and a new revision (``updated_at`` moves
    past the latest one's even if this worker's clock is behind)."""
    numbers = [h.version for h in latest.reference_history]
    if latest.reference is not None:
        numbers.append(latest.reference.version)
    number = max(numbers, default=0) + 1
    updated_at = max(now, latest.updated_at + timedelta(microseconds=1))
    history = [
        h if h.replaced_at is not None else h.model_copy(update={"replaced_at": updated_at})
        for h in latest.reference_history
    ]
    history.append(
        ReferenceChange(
            version=number,
            source=reference.source,
            row_count=reference.row_count,
            created_at=reference.created_at,
        )
    )
    update = {
        "reference": reference.model_copy(update={"version": number}),
        "reference_history": history,
        "updated_at": updated_at,
    }
    return latest.model_copy(update=update)


class ReferencePublisher:
    """Decides, under the version's lock, whether and how a built reference is published.

    ``counts``: references ``published`` (counted by the merger once committed), ``adopted``
    (the registry had one) and publications ``postponed`` (the lock held by the registry,
    Redis or Kafka not answering).
    """

    def __init__(
        self,
        versions: Catalog,
        locks: RevisionLocks,
        clock: Callable[[], float],
        lock_seconds: float = 30.0,
        retry_seconds: float = 5.0,
    ) -> None:
        self.versions = versions
        self.locks = locks
        self.clock = clock
        self.lock_seconds = lock_seconds
        self.retry_seconds = retry_seconds
        self.held: dict[Key, str] = {}  # locks of records in the flush being committed
        self.releasing: list[tuple[Key, str]] = []  # locks to give back at the next flush
        self.retry_at: dict[Key, float] = {}
        self.counts: Counter[str] = Counter()

    async def decide(self, key: Key, built: ReferenceProfile, moment: datetime) -> Decision:
        """Take the lock and read the latest record; what to do with ``built`` (the lock stays
        taken for "publish" until ``settle`` and ``release``)."""
        if self.clock() < self.retry_at.get(key, 0.0):
            return LATER
        token = uuid.uuid4().hex
        try:
            if not await self.locks.acquire(_lock_key(key), token, self.lock_seconds):
                return self._later(key, "the registry is changing the version")
        except Unavailable as exc:
            return self._later(key, str(exc))
        try:
            await self.versions.catch_up()
        except Exception as exc:  # Kafka not answering, or a timeout: nothing is decided
            await self._give_back(key, token)
            return self._later(key, f"the catalog did not catch up: {type(exc).__name__}")
        latest = self.versions.get(*key)
        if not is_live(latest):
            await self._give_back(key, token)
            return Decision("gone", latest)
        if latest.reference is not None:
            await self._give_back(key, token)
            self.counts["adopted"] += 1
            log.info(
                "%s/%s got reference %d (%s) meanwhile; the one built here is not published",
                *key,
                latest.reference.version,
                latest.reference.source,
            )
            return Decision("adopt", latest)
        self.held[key] = token
        self.retry_at.pop(key, None)
        return Decision("publish", published_record(latest, built, moment))

    def settle(self, key: Key | None = None) -> None:
        """The flush holding ``key``'s lock (every lock if None) is over: release it next."""
        keys = list(self.held) if key is None else [key] if key in self.held else []
        self.releasing.extend((k, self.held.pop(k)) for k in keys)

    async def release(self) -> None:
        """Give back the locks of flushes that are over (from the next flush: no await in
        ``StageLogic.committed``). A lock Redis does not take back expires by itself."""
        pending, self.releasing = self.releasing, []
        for key, token in pending:
            await self._give_back(key, token)

    async def _give_back(self, key: Key, token: str) -> None:
        try:
            await self.locks.release(_lock_key(key), token)
        except Unavailable:
            log.warning("could not release the lock of %s/%s; it expires by itself", *key)

    def _later(self, key: Key, why: str) -> Decision:
        self.retry_at[key] = self.clock() + self.retry_seconds
        self.counts["postponed"] += 1
        log.warning(
            "the production reference of %s/%s waits (%s); retrying in %g s",
            *key,
            why,
            self.retry_seconds,
        )
        return LATER


def _lock_key(key: Key) -> str:
    """The registry's lock key of a model version."""
    return f"{key[0]}/{key[1]}"
