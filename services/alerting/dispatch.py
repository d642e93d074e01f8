"""The notification pipeline: alert changes into groups, due groups into the outbox, the
outbox to the receivers. Runs in every alerting replica; Redis makes them share it.

- ``absorb``: each change goes to the group of each subscription that wants it
  (``alerting.grouping``), which is scheduled to notify when its timing says.
- ``flush_due``: a due group's notification is decided, and stored in the outbox together with
  the group's new state (one Redis transaction, retried if another replica changed the group
  meanwhile: only one of them decides), then recorded as ``pending`` on the alerts topic.
- ``deliver_due``: each due delivery is claimed (in Redis, so only one replica sends it) and
  sent by its subscription's own task: a receiver that hangs or fails delays only its own
  notifications. Each attempt is recorded; failures are retried with back-off for up to an
  hour (``alerting.outbox``), then the notification is recorded as failed and counted.

A process killed between decision and delivery leaves the delivery in the outbox: the next
process (after the claim's lease runs out) sends it, with the same delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

from prometheus_client import Counter, Gauge, Histogram

from alerting.grouping import (
    Group,
    Timing,
    absorb,
    due_at,
    flush,
    groups_for,
    silenced_now,
    timing,
)
from alerting.history import AlertHistory, delivery_events, event
from alerting.outbox import Delivery, next_step
from alerting.ports import AlertStore, GroupChange, Notifier
from alerting.subscriptions import Subscription
from vigil.adapters.ports import Unavailable
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.records import Alert, utcnow

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "vigil_alerting_notifications_total",
    "Notifications settled, by channel and outcome (delivered, failed after an hour of "
    "retries, refused by the receiver or the egress guard).",
    ["channel", "outcome"],
)
OUTBOX = Gauge(
    "vigil_alerting_outbox_deliveries",
    "Notifications decided and not yet delivered nor given up (this replica's last look).",
)
DELIVERY_SECONDS = Histogram(
    "vigil_alerting_delivery_seconds",
    "From a notification's decision to its delivery (retries included).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 3600),
)


class Dispatcher:
    """Groups alert changes, decides notifications and delivers them (see the module)."""

    def __init__(
        self,
        store: AlertStore,
        history: AlertHistory,
        notifier: Notifier,
        defaults: Timing,
        give_up_after: timedelta = timedelta(hours=1),
        lease_seconds: float = 20.0,
        clock: Callable[[], datetime] = utcnow,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.history = history
        self.notifier = notifier
        self.defaults = defaults
        self.give_up_after = give_up_after
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.rng = rng
        self.owner = uuid.uuid4().hex  # this process, as the holder of delivery claims
        self.wake = asyncio.Event()
        self._sending: dict[str, asyncio.Task[None]] = {}  # by subscription id

    async def absorb(self, alerts: Sequence[Alert]) -> None:
        """Put alert changes (as recorded) into the groups of the subscriptions that want
        them, and schedule those groups."""
        if not alerts:
            return
        now = self.clock()
        silences = await self.store.silences()
        for key, (sub, wanted) in groups_for(await self.store.subscriptions(), alerts).items():
            rhythm = timing(sub, self.defaults)

            def change(
                group: Group | None,
                sub: Subscription = sub,
                wanted: list[Alert] = wanted,
                rhythm: Timing = rhythm,
            ) -> GroupChange:
                grown = absorb(group, sub, wanted, now)
                return _scheduled(grown, due_at(grown, rhythm, silences, now))

            await self.store.change_group(key, change)
        self.wake.set()

    async def flush_due(self) -> int:
        """Decide the notifications of every due group; how many were decided."""
        now = self.clock()
        keys = await self.store.due_groups(now, 500)
        if not keys:
            return 0
        subs = {s.id: s for s in await self.store.subscriptions()}
        silences = await self.store.silences()
        decided = 0
        for key in keys:
            applied = await self.store.change_group(
                key, lambda g: _flushed(g, subs, silences, self.defaults, now)
            )
            if applied.group is not None and applied.silenced:
                await self.history.record(_silenced(applied.group, applied.silenced, subs, now))
            if applied.delivery is not None:
                decided += 1
                sub = subs[applied.delivery.subscription_id]
                await self.history.record(
                    delivery_events(applied.delivery, sub.channel, "pending", now)
                )
        if decided:
            self.wake.set()
        return decided

    async def deliver_due(self) -> int:
        """Start sending every due delivery whose subscription is not busy here; how many."""
        now = self.clock()
        due = await self.store.due_deliveries(now, 500)
        subs = {s.id: s for s in await self.store.subscriptions()} if due else {}
        started = 0
        for found in due:
            if found.subscription_id in self._sending:
                continue  # one at a time per subscription; its queue waits, no one else does
            claimed = await self.store.claim_delivery(
                found.delivery_id, self.owner, now, self.lease_seconds
            )
            if claimed is None:
                continue  # another replica has it, or it was settled meanwhile
            task = asyncio.create_task(self._send(claimed, subs.get(claimed.subscription_id)))
            self._sending[claimed.subscription_id] = task
            task.add_done_callback(partial(self._done, claimed.subscription_id))
            started += 1
        return started

    def sending(self) -> list[asyncio.Task[None]]:
        """The attempts in flight here, one per subscription at most."""
        return list(self._sending.values())

    def _done(self, sub_id: str, _: asyncio.Task[None]) -> None:
        self._sending.pop(sub_id, None)
        self.wake.set()  # its subscription's next delivery may be due

    async def _send(self, delivery: Delivery, sub: Subscription | None) -> None:
        """One attempt of ``delivery``, recorded; then out of the outbox or rescheduled."""
        try:
            if sub is None:  # unsubscribed since: nobody to tell
                await self.store.settle_delivery(delivery.delivery_id, None)
                return
            result = await self.notifier.attempt(sub, delivery.notification(sub))
            now = self.clock()
            step = next_step(delivery, result, now, self.give_up_after, self.rng)
            await self.history.record(
                delivery_events(delivery, sub.channel, step.outcome, now, result)
            )
            await self.store.settle_delivery(delivery.delivery_id, step.retry)
            if step.retry is None:
                NOTIFICATIONS.labels(sub.channel, step.outcome).inc()
                if step.outcome == "delivered":
                    DELIVERY_SECONDS.observe((now - delivery.decided_at).total_seconds())
                else:
                    log.error(
                        "notification %s to subscription %s %s: %s",
                        delivery.delivery_id,
                        sub.id,
                        step.outcome,
                        result.error,
                    )
        except asyncio.CancelledError:
            raise
        except Exception:
            # Kafka or Redis away: the claim runs out and the attempt is made again.
            log.exception("delivery %s: attempt not settled; retried later", delivery.delivery_id)

    async def run(self, tick_seconds: float = 0.25) -> None:
        """Flush due groups and deliver due notifications, on a tick and whenever woken."""
        ticks = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick_seconds):  # not wait_for: see stop_tasks
                    await self.wake.wait()
            self.wake.clear()
            ticks += 1
            try:
                await self.flush_due()
                await self.deliver_due()
                if ticks % 20 == 1:  # every few seconds: the outbox is read whole
                    OUTBOX.set(len(await self.store.deliveries()))
            except asyncio.CancelledError:
                raise
            except Unavailable as exc:
                log.warning("notifications wait for %s", exc)
                await asyncio.sleep(1)
            except Exception:
                log.exception("notification dispatch failed; trying again")
                await asyncio.sleep(1)


def _flushed(
    group: Group | None,
    subs: dict[str, Subscription],
    silences: Sequence[Silence],
    defaults: Timing,
    now: datetime,
) -> GroupChange:
    """A due group after it notifies, and the notification decided (if any)."""
    if group is None:
        return GroupChange(None, None)
    sub = subs.get(group.subscription_id)
    if sub is None:
        return GroupChange(None, None)  # unsubscribed: the group goes with it
    rhythm = timing(sub, defaults)
    group, newly = silenced_now(group, silences, now)
    due = due_at(group, rhythm, silences, now)
    if due is None or due > now:  # not due (another replica flushed it, or it changed)
        return _scheduled(group, due, newly)
    flushed = flush(group, silences, now)
    delivery = None
    if flushed.alerts is not None:
        delivery = Delivery.decide(sub.id, flushed.alerts, now, group.key, group.labels)
    if flushed.done:
        return GroupChange(None, None, delivery, newly)
    after = flushed.group
    return GroupChange(after, due_at(after, rhythm, silences, now), delivery, newly)


def _scheduled(
    group: Group, due: datetime | None, newly: dict[str, str] | None = None
) -> GroupChange:
    """``group`` kept until ``due``; forgotten when it has nothing to tell and no alert that
    may need telling (only resolutions nobody was told of)."""
    if due is None and all(a.status == "resolved" for a in group.alerts.values()):
        return GroupChange(None, None, silenced=newly or {})
    return GroupChange(group, due, silenced=newly or {})


def _silenced(
    group: Group, newly: dict[str, str], subs: dict[str, Subscription], now: datetime
) -> list[AlertEvent]:
    """A ``silenced`` notification event for each alert a silence kept from ``group``."""
    sub = subs.get(group.subscription_id)
    return [
        event(
            "notification",
            now,
            fingerprint=fp,
            alert=group.alerts[fp],
            subscription_id=group.subscription_id,
            channel=sub.channel if sub else None,
            outcome="silenced",
            silence_id=silence_id,
        )
        for fp, silence_id in newly.items()
        if fp in group.alerts
    ]
