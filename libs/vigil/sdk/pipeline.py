"""The SDK's delivery loop: batches from the in-memory queue to the destination, with retries,
spilling to the spool while the destination is unreachable and replaying it once it is back.

A batch may mix predictions and feedback: the transport sends each kind where it belongs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from vigil.sdk.spool import Spool
from vigil.sdk.transport import EnvironmentReporter, Rejected, Transport
from vigil.wire.environments import EnvironmentReport

__all__ = ["Delivery", "DeliveryPolicy", "LoggerStats"]

log = logging.getLogger("vigil.sdk")


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int = 5000
    linger_seconds: float = 0.02
    attempts: int = 3
    backoff_seconds: float = 0.2
    send_timeout_seconds: float = 15.0
    retry_interval_seconds: float = 2.0


@dataclass(frozen=True)
class LoggerStats:
    """What the SDK has done so far."""

    sent: int
    queued: int
    spooled: int
    dropped: int
    sampled_out: int
    last_error: str | None


class Delivery:
    """Drains ``queue`` to ``transport``; runs as one asyncio task, in any event loop."""

    def __init__(
        self,
        transport: Transport,
        queue: deque[dict[str, Any]],
        spool: Spool | None,
        policy: DeliveryPolicy,
        environments: deque[EnvironmentReport] | None = None,
    ) -> None:
        self.transport = transport
        # Reports of the environment served in, sent before the next batch; never spooled.
        self.environments: deque[EnvironmentReport] = (
            deque() if environments is None else environments
        )
        self._report_after = 0.0
        self.queue = queue
        self.spool = spool
        self.policy = policy
        self.sent = 0
        self.dropped = 0
        self.in_flight = 0
        # Counting lines, not parsing them: this runs in the app's thread.
        self.spooled = spool.count() if spool else 0
        self.last_error: str | None = None
        self.stopping = False
        self._down_until = 0.0

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight or spooled (and no environment report pending)."""
        return (
            not self.queue and self.in_flight == 0 and self.spooled == 0 and not self.environments
        )

    async def run(self) -> None:
        """Deliver until ``stopping`` is set and the queue is empty."""
        try:
            while True:
                if self.environments:
                    await self._report()
                batch = self._take()
                if batch:
                    await self._deliver(batch)
                elif self.stopping:
                    break
                else:
                    await self._replay()
                    await asyncio.sleep(self.policy.linger_seconds)
            await self._replay()
        finally:
            try:
                await asyncio.wait_for(self.transport.stop(), self.policy.send_timeout_seconds)
            except Exception as exc:  # the destination may be gone; nothing is pending here
                log.debug("transport did not stop cleanly: %s", exc)

    async def _report(self) -> None:
        """Send the pending environment reports; on failure try again after the retry
        interval. Reports the destination refuses, or a transport that cannot carry them,
        drop them, saying so."""
        if time.monotonic() < self._report_after:
            return
        transport = self.transport
        if not isinstance(transport, EnvironmentReporter):
            log.info("vigil: this transport carries no environment reports; not reported")
            self.environments.clear()
            return
        reports = list(self.environments)
        try:
            await asyncio.wait_for(transport.report(reports), self.policy.send_timeout_seconds)
        except Rejected as exc:
            self.last_error = f"environment report refused: {exc}"
            log.warning("vigil: %s", self.last_error)
            self.environments.clear()
            return
        except Exception as exc:
            self._report_after = time.monotonic() + self.policy.retry_interval_seconds
            self.last_error = f"environment report: {type(exc).__name__}: {exc}"
            log.warning("vigil: %s", self.last_error)
            return
        for _ in reports:
            self.environments.popleft()

    def _take(self) -> list[dict[str, Any]]:
        # Only this task takes from the queue, so it holds at least ``n`` events meanwhile.
        n = min(len(self.queue), self.policy.batch_size)
        popleft = self.queue.popleft
        batch = [popleft() for _ in range(n)]
        self.in_flight = len(batch)
        return batch

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        try:
            if time.monotonic() < self._down_until or not await self._send(batch):
                self._spill(batch)
            else:
                await self._replay()
        finally:
            self.in_flight = 0

    async def _send(self, batch: list[dict[str, Any]]) -> bool:
        """True once delivered (or refused for good: counted as dropped); False if unreachable."""
        for attempt in range(self.policy.attempts):
            try:
                refused = await asyncio.wait_for(
                    self.transport.send(batch), self.policy.send_timeout_seconds
                )
                self.sent += len(batch) - len(refused)
                if refused:
                    self.dropped += len(refused)
                    self.last_error = f"{len(refused)} refused by the destination: {refused[0]}"
                    log.error("vigil: %s", self.last_error)
                return True
            except Rejected as exc:
                self.dropped += len(batch)
                self.last_error = f"rejected by the destination: {exc}"
                log.error("vigil: %d events rejected: %s", len(batch), exc)
                return True
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < self.policy.attempts:
                    await asyncio.sleep(self.policy.backoff_seconds * 2**attempt)
        self._down_until = time.monotonic() + self.policy.retry_interval_seconds
        log.warning("vigil: destination unreachable (%s); spooling", self.last_error)
        return False

    def _spill(self, batch: list[dict[str, Any]]) -> None:
        if self.spool is not None and self.spool.append(batch):
            self.spooled += len(batch)
        else:
            self.dropped += len(batch)
            self.last_error = f"spool full or disabled: {len(batch)} events dropped"
            log.error("vigil: %s", self.last_error)

    async def _replay(self) -> None:
        """Send spooled segments, oldest first, while the destination answers."""
        if self.spool is None or self.spooled == 0 or time.monotonic() < self._down_until:
            return
        for segment in self.spool.segments():
            events, lines = self.spool.read_counted(segment)
            for start in range(0, len(events), self.policy.batch_size):
                if not await self._send(events[start : start + self.policy.batch_size]):
                    # The segment is replayed whole next time: at-least-once, never lost.
                    return
            self.spool.remove(segment)
            self.spooled -= lines
