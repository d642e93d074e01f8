"""Notifications decided and not yet delivered: the outbox. Pure logic; ``alerting.dispatch``
keeps it in Redis and sends from it.

A decided notification is a ``Delivery``: written to the outbox (and recorded as ``pending`` on
the alerts topic) before its first attempt, so a crash between decision and delivery still
sends it after a restart, with the same delivery id. A failed attempt is tried again after a
back-off with jitter (1 s doubling to 5 min), for up to an hour; then the notification is
given up as ``failed``. A receiver that refuses for good (an address Vigil may not send to, a
4xx other than 408/425/429) is not tried again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from alerting.subscriptions import DeliveryResult, Notification, Subscription
from vigil.wire.records import Alert

__all__ = [
    "FIRST_BACKOFF_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "Delivery",
    "Next",
    "backoff",
    "next_step",
]

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0

Outcome = Literal["delivered", "retrying", "failed", "refused"]


class Delivery(BaseModel):
    """One decided notification to one subscription, until it is delivered or given up."""

    delivery_id: str
    subscription_id: str
    group_key: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict)
    alerts: list[Alert]
    decided_at: datetime
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None

    @classmethod
    def decide(
        cls,
        subscription_id: str,
        alerts: Sequence[Alert],
        now: datetime,
        group_key: str = "",
        group_labels: dict[str, str] | None = None,
    ) -> Delivery:
        """A new notification of ``alerts``, due at once."""
        return cls(
            delivery_id=uuid.uuid4().hex,
            subscription_id=subscription_id,
            group_key=group_key,
            group_labels=group_labels or {},
            alerts=list(alerts),
            decided_at=now,
            next_attempt_at=now,
        )

    def notification(self, subscription: Subscription) -> Notification:
        """What the subscription's channel sends (every attempt the same delivery id)."""
        return Notification.of(
            subscription,
            self.alerts,
            group_labels=self.group_labels,
            delivery_id=self.delivery_id,
        )


def backoff(attempts: int, rng: Callable[[], float]) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 1 s doubling to 5 min, of which a
    random half (``rng`` in [0, 1)) so that retries of many notifications spread out."""
    ceiling = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0))
    return float(ceiling / 2 + rng() * ceiling / 2)


@dataclass(frozen=True)
class Next:
    """What follows an attempt: its outcome, and the delivery to try again (None when done)."""

    outcome: Outcome
    retry: Delivery | None


def next_step(
    delivery: Delivery,
    result: DeliveryResult,
    now: datetime,
    give_up_after: timedelta,
    rng: Callable[[], float],
) -> Next:
    """The outcome of one attempt of ``delivery`` that went as ``result``."""
    if result.ok:
        return Next("delivered", None)
    if not result.retryable:
        return Next("refused", None)
    attempts = delivery.attempts + 1
    retry_at = now + timedelta(seconds=backoff(attempts, rng))
    if retry_at - delivery.decided_at > give_up_after:
        return Next("failed", None)
    retry = delivery.model_copy(
        update={"attempts": attempts, "next_attempt_at": retry_at, "last_error": result.error}
    )
    return Next("retrying", retry)
