"""The alerting service's own ports: where alerts and subscriptions are kept, who is told.

``store.RedisAlertStore`` and ``channels.ChannelNotifier`` implement them; unit tests use fakes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerting.grouping import Group
from alerting.outbox import Delivery
from alerting.subscriptions import DeliveryResult, Notification, Subscription
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.records import Alert

__all__ = ["HISTORY_LIMIT", "AlertPage", "AlertStore", "GroupChange", "Notifier"]


# Events of one fingerprint the cache keeps; the topic keeps them all.
HISTORY_LIMIT = 500


@dataclass(frozen=True)
class AlertPage:
    """Alerts newest first, and where the next page starts (None after the last page)."""

    alerts: list[Alert]
    next_position: int | None


@dataclass(frozen=True)
class GroupChange:
    """A notification group as a change leaves it (None: forgotten), when it next notifies
    (None: not until it changes), and the notification the change decided, if any."""

    group: Group | None
    due: datetime | None
    delivery: Delivery | None = None
    # Alerts a silence now keeps from the group's notifications, newly (fingerprint -> id).
    silenced: dict[str, str] = field(default_factory=dict)


class AlertStore(ABC):
    """Current alerts by fingerprint, and subscriptions by id."""

    @abstractmethod
    async def alerts(self, fingerprints: Iterable[str] | None = None) -> dict[str, Alert]:
        """The stored alerts with these fingerprints (every alert when None), by fingerprint."""

    @abstractmethod
    async def alerts_page(
        self,
        position: int,
        limit: int,
        model_id: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
    ) -> AlertPage:
        """Up to ``limit`` alerts, most recently updated first, from ``position`` in that order.

        Only those of ``model_id``, in ``status``, of ``severity`` and updated at or after
        ``since`` when given; raises Unavailable when the store does not answer.
        """

    @abstractmethod
    async def save_alerts(self, alerts: Iterable[Alert]) -> None:
        """Store alerts, replacing those with the same fingerprints."""

    @abstractmethod
    async def prune(self, before: datetime) -> int:
        """Forget resolved alerts last updated before ``before``; how many were forgotten.

        Firing and acknowledged alerts are kept however old they are.
        """

    @abstractmethod
    async def rule_state(self, key: str) -> dict[str, Any] | None:
        """The alert rules' state of one model version (``model_id/version``), as saved."""

    @abstractmethod
    async def save_rule_state(self, key: str, state: dict[str, Any]) -> None:
        """Keep the alert rules' state of one model version (JSON-compatible)."""

    @abstractmethod
    async def traffic(self) -> dict[str, dict[str, Any]]:
        """The liveness clock's input, by model version (``model_id/version``), as saved."""

    @abstractmethod
    async def save_traffic(self, key: str, seen: dict[str, Any]) -> None:
        """Keep what the traffic of one model version was last seen to be (JSON-compatible)."""

    @abstractmethod
    async def forget_traffic(self, key: str) -> None:
        """Stop watching one model version's traffic (it was retired)."""

    @abstractmethod
    async def cache(self, events: Sequence[AlertEvent]) -> None:
        """Apply events (already on the alerts topic) to the cached state: alerts, silences,
        and each fingerprint's recent history."""

    @abstractmethod
    async def silences(self) -> list[Silence]:
        """Every cached silence, expired ones included."""

    @abstractmethod
    async def history(self, fingerprint: str) -> list[AlertEvent]:
        """The cached events of one alert, oldest first (the most recent HISTORY_LIMIT)."""

    @abstractmethod
    async def is_rebuilt(self) -> bool:
        """Whether the cache holds the alerts topic (False when Redis lost or never had it)."""

    @abstractmethod
    async def mark_rebuilt(self) -> None:
        """Note that the cache now holds the alerts topic."""

    @abstractmethod
    async def change_group(
        self, key: str, change: Callable[[Group | None], GroupChange]
    ) -> GroupChange:
        """Apply ``change`` to the group ``key`` (None when there is none) and store what it
        gives, with its delivery in the outbox, at once; ``change`` is called again when
        another process changed the group meanwhile. Returns the change stored."""

    @abstractmethod
    async def groups(self) -> list[Group]:
        """Every notification group."""

    @abstractmethod
    async def due_groups(self, now: datetime, limit: int) -> list[str]:
        """Keys of groups due to notify at ``now``, the most overdue first."""

    @abstractmethod
    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Deliveries of the outbox due for an attempt at ``now``, the most overdue first."""

    @abstractmethod
    async def deliveries(self) -> list[Delivery]:
        """Every delivery in the outbox."""

    @abstractmethod
    async def put_delivery(self, delivery: Delivery) -> None:
        """Put a delivery (back) into the outbox, due at its ``next_attempt_at``."""

    @abstractmethod
    async def claim_delivery(
        self, delivery_id: str, owner: str, now: datetime, ttl_seconds: float
    ) -> Delivery | None:
        """The delivery, now claimed by ``owner`` for ``ttl_seconds``; None when it is not in
        the outbox, not due at ``now``, or claimed by someone else (another replica)."""

    @abstractmethod
    async def settle_delivery(self, delivery_id: str, retry: Delivery | None) -> None:
        """Take a delivery out of the outbox (``retry`` None) or reschedule it as ``retry``,
        and drop its claim."""

    @abstractmethod
    async def take_turn(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Whether ``owner`` may do the periodic job ``name`` now: one replica per period."""

    @abstractmethod
    async def subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""

    @abstractmethod
    async def add_subscription(self, sub: Subscription) -> None:
        """Cache a subscription (the API records it on the alerts topic first)."""

    @abstractmethod
    async def remove_subscription(self, sub_id: str) -> bool:
        """Forget a subscription; False if there was none with that id."""


class Notifier(ABC):
    """Tells a subscription about alerts, on the subscription's channel."""

    @abstractmethod
    async def send(self, subscription: Subscription, notification: Notification) -> DeliveryResult:
        """Deliver ``notification`` (retrying a few times at once); how it went."""

    @abstractmethod
    async def attempt(
        self, subscription: Subscription, notification: Notification
    ) -> DeliveryResult:
        """One attempt to deliver ``notification``; how it went (``retryable`` says whether
        another attempt could do better)."""
