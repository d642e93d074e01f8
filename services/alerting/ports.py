"""The alerting service's own ports: where alerts and subscriptions are kept, who is told.

``store.RedisAlertStore`` and ``webhooks.WebhookSender`` implement them; unit tests use fakes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerting.handlers import Subscription
from vigil.wire.records import Alert

__all__ = ["AlertPage", "AlertStore", "Notifier"]


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
        self, position: int, limit: int, model_id: str | None = None, status: str | None = None
    ) -> AlertPage:
        """Up to ``limit`` alerts, most recently updated first, from ``position`` in that order.

        Only those of ``model_id`` and in ``status`` when given; raises Unavailable when the
        store does not answer.
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
    async def subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""

    @abstractmethod
    async def add_subscription(self, sub: Subscription) -> None:
        """Keep a new subscription."""

    @abstractmethod
    async def remove_subscription(self, sub_id: str) -> bool:
        """Forget a subscription; False if there was none with that id."""


class Notifier(ABC):
    """Tells a subscription about alerts."""

    @abstractmethod
    async def send(self, subscription: Subscription, alerts: Sequence[Alert]) -> bool:
        """Deliver one message listing ``alerts``; whether it was delivered."""
