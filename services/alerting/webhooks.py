"""Delivers alert notifications to webhook subscriptions, with retries: the Notifier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from alerting.handlers import Subscription, webhook_body
from alerting.ports import Notifier
from vigil.wire.records import Alert

__all__ = ["WebhookSender"]

log = logging.getLogger(__name__)


class WebhookSender(Notifier):
    """POSTs ``{"alerts": [...]}`` to a subscription's URL; retries with back-off on failure."""

    def __init__(self, client: httpx.AsyncClient, attempts: int) -> None:
        self.client = client
        self.attempts = attempts
        self.delivered = 0
        self.failed = 0

    async def send(self, subscription: Subscription, alerts: Sequence[Alert]) -> bool:
        body = webhook_body(alerts)
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.client.post(str(subscription.url), json=body)
                if response.status_code < 300:
                    self.delivered += 1
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            log.warning(
                "webhook %s (%s) attempt %d/%d failed: %s",
                subscription.name,
                subscription.url,
                attempt,
                self.attempts,
                problem,
            )
            if attempt < self.attempts:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
        self.failed += 1
        return False
