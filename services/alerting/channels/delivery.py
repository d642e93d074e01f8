"""Sends notifications on their subscription's channel, with retries: the Notifier.

HTTP channels (webhook, Slack, PagerDuty) go through the egress guard (the target's address is
checked at every send, redirects are not followed); e-mail goes to the operator's SMTP server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from email.message import EmailMessage

import httpx
from prometheus_client import Counter

from alerting.channels.formats import email_message, pagerduty_events, signature, slack_body
from alerting.config import Settings
from alerting.egress import EgressGuard, EgressPolicy, EgressRefused
from alerting.ports import Notifier
from alerting.subscriptions import DeliveryResult, Notification, Subscription, webhook_body

__all__ = ["ChannelNotifier", "open_notifier"]

log = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "vigil_alerting_notification_attempts_total",
    "Attempts to send a notification, by channel and outcome (delivered, failed, refused).",
    ["channel", "outcome"],
)
# Worth another attempt: the receiver may recover. Any other 4xx (or a redirect) will not.
_RETRY_STATUS = frozenset({408, 425, 429})


class Refused(Exception):
    """A notification that no retry can deliver (refused target, no SMTP server)."""


class ChannelNotifier(Notifier):
    """Delivers a notification on its subscription's channel; retries with back-off."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        guard: EgressGuard,
        settings: Settings,
        backoff_seconds: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.guard = guard
        self.settings = settings
        self.backoff_seconds = backoff_seconds
        self.clock = clock

    async def send(self, subscription: Subscription, notification: Notification) -> DeliveryResult:
        """Up to ``alerting_webhook_attempts`` attempts, 0.5 s apart and doubling (a test
        notification: the outbox retries the others over an hour, see ``alerting.outbox``)."""
        attempts = max(1, self.settings.alerting_webhook_attempts)
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            result = await self.attempt(subscription, notification)
            if result.ok or not result.retryable or attempt == attempts:
                break
            await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        latency = time.monotonic() - started
        return replace(result, latency=latency, attempts=attempt)

    async def attempt(
        self, subscription: Subscription, notification: Notification
    ) -> DeliveryResult:
        started = time.monotonic()
        status: int | None = None
        outcome, problem, retry = "failed", "", True
        try:
            status = await self._deliver(subscription, notification)
            if status is None or status < 300:
                outcome = "delivered"
            else:
                problem = f"HTTP {status}"
                retry = status >= 500 or status in _RETRY_STATUS
        except (EgressRefused, Refused) as exc:
            outcome, problem, retry = "refused", str(exc), False
        except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if outcome != "delivered":
            log.warning(
                "%s notification %s to subscription %s failed: %s",
                subscription.channel,
                notification.delivery_id,
                subscription.id,
                problem,
            )
        ATTEMPTS.labels(subscription.channel, outcome).inc()
        ok = outcome == "delivered"
        return DeliveryResult(
            ok=ok,
            status_code=status,
            latency=time.monotonic() - started,
            error=None if ok else problem,
            retryable=retry,
        )

    async def _deliver(self, sub: Subscription, notification: Notification) -> int | None:
        """One attempt; the HTTP status (None for e-mail, which raises when it fails)."""
        if sub.channel == "email":
            sender = self.settings.alerting_smtp_from
            await self._mail(email_message(notification, sender, sub.to or []))
            return None
        url = str(sub.url)
        if sub.channel == "pagerduty":
            status = 0
            for event in pagerduty_events(notification, sub.routing_key or ""):
                status = await self._post(url, _json(event), {})
                if status >= 300:
                    break
            return status
        if sub.channel == "slack":
            return await self._post(url, _json(slack_body(notification)), {})
        body = _json(webhook_body(notification, self.settings.alerting_external_url))
        headers = {"X-Vigil-Delivery": notification.delivery_id}
        if sub.secret is not None:  # subscriptions from before signing have no secret
            headers["X-Vigil-Signature"] = signature(sub.secret, body, int(self.clock()))
        return await self._post(url, body, headers)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        target = await self.guard.pin(url)
        response = await self.client.post(
            target.url,
            content=body,
            headers={
                **headers,
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": "Vigil-Alerting",
            },
            extensions=target.extensions(),
        )
        return response.status_code

    async def _mail(self, message: EmailMessage) -> None:
        if not self.settings.alerting_smtp_host:
            raise Refused("no SMTP server is configured (VIGIL_ALERTING_SMTP_HOST)")
        # smtplib blocks; a worker thread keeps the event loop (and the consumer) going.
        await asyncio.to_thread(_send_mail, self.settings, message)


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _send_mail(settings: Settings, message: EmailMessage) -> None:
    host, port = settings.alerting_smtp_host or "", settings.alerting_smtp_port
    timeout = settings.alerting_webhook_timeout_seconds
    context = ssl.create_default_context()
    smtp = (
        smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        if settings.alerting_smtp_ssl
        else smtplib.SMTP(host, port, timeout=timeout)
    )
    with smtp:
        if settings.alerting_smtp_starttls and not settings.alerting_smtp_ssl:
            smtp.starttls(context=context)
        if settings.alerting_smtp_username:
            password = settings.alerting_smtp_password
            smtp.login(
                settings.alerting_smtp_username,
                password.get_secret_value() if password else "",
            )
        smtp.send_message(message)


def open_notifier(stack: AsyncExitStack, settings: Settings) -> ChannelNotifier:
    """A notifier on a new HTTP client (closed with ``stack``) and the settings' egress rules."""
    client = httpx.AsyncClient(
        timeout=settings.alerting_webhook_timeout_seconds,
        follow_redirects=False,
        # A proxy from the environment would connect on Vigil's behalf, around the guard.
        trust_env=False,
    )
    stack.push_async_callback(client.aclose)
    policy = EgressPolicy(tuple(settings.alerting_allowed_networks))
    return ChannelNotifier(client, EgressGuard(policy), settings)
