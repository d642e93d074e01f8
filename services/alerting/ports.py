"""The alerting service's own ports: where alerts and subscriptions are kept, who is told.

``store.RedisAlertStore`` and ``channels.ChannelNotifier`` implement them; unit tests use fakes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerting.subscriptions import DeliveryResult, Notification, Subscription
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.records import Alert

__all__ = ["HISTORY_LIMIT", "AlertPage", "AlertStore", "Notifier"]


# Events of one fingerprint the cache keeps; the topic keeps them all.
HISTORY_LIMIT = 500


@dataclass(frozen=True)
class AlertPage:
    """Alerts newest first, and where the next page starts (None after the last page)."""

    alerts: list[Alert]
    next_position: int | None


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
    async def subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""

    @abstractmethod
    async def add_subscription(self, sub: Subscription) -> None:
        """Keep a new subscription."""

    @abstractmethod
    async def remove_subscription(self, sub_id: str) -> bool:
        """Forget a subscription; False if there was none with that id."""


class Notifier(ABC):
    """Tells a subscription about alerts, on the subscription's channel."""

    @abstractmethod
    async def send(self, subscription: Subscription, notification: Notification) -> DeliveryResult:
        """Deliver ``notification`` (retrying as the channel allows); how it went."""
