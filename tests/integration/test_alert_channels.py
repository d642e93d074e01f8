"""The channels against real servers: e-mail through an SMTP server (aiosmtpd) started here, and
a signed webhook to a real HTTP receiver through ``POST /v1/subscriptions/{id}/test``."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from fastapi.testclient import TestClient
from pydantic import SecretStr
from redis import Redis

from alerting.api import create_app
from alerting.channels import open_notifier
from alerting.config import Settings
from alerting.subscriptions import Notification, Subscription
from tests.access import SESSION
from tests.webhook import readme_verifier, webhook_inbox
from vigil.adapters.settings import VigilSettings
from vigil.wire.records import Alert

NOW = datetime(2026, 5, 1, tzinfo=UTC)
# aiosmtpd warns about a login without TLS, which is what these tests try on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _login(server: Any, session: Session, envelope: Envelope, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (b"vigil", b"pw")
    return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(login: bool) -> Iterator[tuple[Mailbox, Settings]]:
    """A real SMTP server on a free loopback port, asking for a login or not."""
    mailbox, port = Mailbox(), _free_port()
    options: dict[str, Any] = (
        {"authenticator": _login, "auth_require_tls": False, "auth_required": True} if login else {}
    )
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    settings = Settings(
        alerting_smtp_host="127.0.0.1",
        alerting_smtp_port=port,
        alerting_smtp_from="vigil@example.com",
        alerting_smtp_username="vigil" if login else None,
        alerting_smtp_password="pw" if login else None,
    )
    try:
        yield mailbox, settings
    finally:
        controller.stop()


def _alert() -> Alert:
    return Alert(
        fingerprint="fp-mail",
        status="firing",
        severity="critical",
        model_id="credit-risk",
        model_version="1.0.0",
        rule="feature_drift",
        feature="income",
        summary="credit-risk 1.0.0: feature 'income' drifted",
        details={"statistic": "psi", "value": "0.4000"},
        starts_at=NOW,
        updated_at=NOW,
    )


async def _send_mail(settings: Settings, sub: Subscription) -> Any:
    async with AsyncExitStack() as stack:
        notifier = open_notifier(stack, settings)
        return await notifier.send(sub, Notification.of(sub, [_alert()]))


@pytest.mark.parametrize("login", [False, True], ids=["plain", "login"])
def test_email_reaches_a_real_smtp_server_with_text_and_html(login: bool) -> None:
    sub = Subscription.model_validate(
        {
            "id": "m1",
            "name": "risk mail",
            "channel": "email",
            "to": ["oncall@example.com", "lead@example.com"],
            "models": ["*"],
            "created_at": NOW,
        }
    )
    with smtp_server(login) as (mailbox, settings):
        result = asyncio.run(_send_mail(settings, sub))
    assert result.ok, result.error
    ((recipients, message),) = mailbox.received
    assert recipients == ["oncall@example.com", "lead@example.com"]
    assert message["Subject"] == "[Vigil] FIRING (1): credit-risk"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and "feature 'income' drifted" in plain.get_content()
    assert rich is not None and "<b>credit-risk</b>" in rich.get_content()


def test_a_wrong_smtp_password_is_a_failed_delivery() -> None:
    sub = Subscription.model_validate(
        {"id": "m2", "name": "m", "channel": "email", "to": ["a@example.com"], "models": ["*"]}
        | {"created_at": NOW}
    )
    with smtp_server(login=True) as (mailbox, settings):
        wrong = settings.model_copy(
            update={"alerting_smtp_password": SecretStr("guess"), "alerting_webhook_attempts": 1}
        )
        result = asyncio.run(_send_mail(wrong, sub))
    assert not result.ok and result.error and mailbox.received == []


def test_a_signed_test_notification_reaches_a_real_receiver(infra: VigilSettings) -> None:
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        alerting_group_id=f"test-channels-{run}",
        alerting_redis_prefix=f"test:channels:{run}",
        alerting_allowed_networks=["127.0.0.0/8"],
    )
    with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
        created = client.post(
            "/v1/subscriptions",
            json={"name": "risk", "channel": "webhook", "url": inbox.url, "models": ["*"]},
        )
        assert created.status_code == 201, created.text
        sub_id, secret = created.json()["id"], created.json()["secret"]
        tested = client.post(f"/v1/subscriptions/{sub_id}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["ok"] is True and tested.json()["status_code"] == 204
        ((headers, raw),) = inbox.requests
        (body,) = inbox.bodies
        assert readme_verifier()(secret, headers["X-Vigil-Signature"], raw)
        assert not readme_verifier()(secret, headers["X-Vigil-Signature"], raw + b"x")
        assert headers["X-Vigil-Delivery"] == tested.json()["delivery_id"] == body["delivery_id"]
        assert (body["version"], body["status"], body["test"]) == ("4", "firing", True)
        assert "secret" not in client.get("/v1/subscriptions").text

        private = {"name": "x", "channel": "webhook", "url": "http://10.0.0.1/", "models": ["*"]}
        assert client.post("/v1/subscriptions", json=private).status_code == 422
    _forget(settings)


def _forget(settings: Settings) -> None:
    """Remove the keys this test's alerting service wrote to Redis."""
    redis = Redis.from_url(settings.redis_url)
    try:
        keys = list(redis.scan_iter(f"{settings.alerting_redis_prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            redis.delete(*keys[start : start + 500])
    finally:
        redis.close()
