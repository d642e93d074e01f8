"""Subscription targets are not a way into the network: refused on subscribe (literal addresses)
and at every send (what the name resolves to then), unless an allowed network holds them.
Fake resolvers and an in-memory HTTP transport: no I/O."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from alerting.channels.delivery import ChannelNotifier
from alerting.config import Settings
from alerting.egress import EgressGuard, EgressPolicy, EgressRefused
from alerting.subscriptions import Notification, Subscription
from vigil.wire.records import Alert

NOW = datetime(2026, 5, 1, tzinfo=UTC)
ALERT = Alert(
    fingerprint="fp1",
    status="firing",
    severity="high",
    model_id="credit-risk",
    model_version="1.0.0",
    rule="feature_drift",
    feature="income",
    summary="income drifted",
    starts_at=NOW,
    updated_at=NOW,
)


def _resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such name {host}")
        return table[host]

    return resolve


PUBLIC = _resolver(
    {
        "hooks.example.com": ["93.184.215.14"],
        "inside.example.com": ["93.184.215.14", "10.1.2.3"],
        "rebound.example.com": ["192.168.0.10"],
        "v6.example.com": ["2606:4700::1111"],
    }
)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://localhost:9000/hook", "loopback"),
        ("http://app.localhost/hook", "loopback"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://100.64.0.1/hook", "not publicly routable"),
    ],
)
async def test_an_internal_address_is_refused_on_subscribe_and_at_send_time(
    url: str, kind: str
) -> None:
    policy = EgressPolicy()
    problem = policy.check_url(url)
    assert problem is not None and kind in problem
    assert "VIGIL_ALERTING_ALLOWED_NETWORKS" in problem
    with pytest.raises(EgressRefused, match=kind):
        await EgressGuard(policy, _resolver({})).pin(url)


@pytest.mark.parametrize("host", ["inside.example.com", "rebound.example.com"])
async def test_a_name_resolving_to_private_space_is_refused_at_send_time(host: str) -> None:
    url = f"https://{host}/hook"
    assert EgressPolicy().check_url(url) is None  # a name: nothing known before it resolves
    with pytest.raises(EgressRefused, match=f"{host} resolves to .* private"):
        await EgressGuard(EgressPolicy(), PUBLIC).pin(url)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(EgressRefused, match="does not resolve"):
        await EgressGuard(EgressPolicy(), PUBLIC).pin("https://nowhere.example.com/")


async def test_allowed_networks_open_chosen_ranges_only() -> None:
    policy = EgressPolicy((ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))
    assert policy.check_url("http://127.0.0.1:9000/hook") is None
    assert policy.check_url("http://localhost:9000/hook") is None
    assert policy.check_url("http://[::1]/hook") is None
    assert policy.check_url("http://169.254.169.254/") is not None
    assert policy.check_url("http://10.0.0.1/") is not None


def test_the_setting_reads_a_comma_separated_cidr_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ALERTING_ALLOWED_NETWORKS", "127.0.0.0/8, 10.20.0.0/16")
    assert [str(n) for n in Settings().alerting_allowed_networks] == [
        "127.0.0.0/8",
        "10.20.0.0/16",
    ]


async def test_a_public_name_is_pinned_to_the_address_that_was_checked() -> None:
    target = await EgressGuard(EgressPolicy(), PUBLIC).pin("https://hooks.example.com:8443/a?b=1")
    assert str(target.url) == "https://93.184.215.14:8443/a?b=1"
    assert (target.host_header, target.server_name) == (
        "hooks.example.com:8443",
        "hooks.example.com",
    )
    v6 = await EgressGuard(EgressPolicy(), PUBLIC).pin("http://v6.example.com/")
    assert v6.url.host == "2606:4700::1111" and v6.host_header == "v6.example.com"


class Receiver:
    """An in-memory HTTP receiver answering each request with the next status."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []
        self.headers = headers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return httpx.Response(status, headers=self.headers)


def _notifier(receiver: Receiver, resolver: Any = PUBLIC, **settings: Any) -> ChannelNotifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver), follow_redirects=False)
    config = Settings(alerting_webhook_attempts=3, **{"alerting_allowed_networks": []} | settings)
    policy = EgressPolicy(tuple(config.alerting_allowed_networks))
    return ChannelNotifier(client, EgressGuard(policy, resolver), config, backoff_seconds=0)


def _sub(**fields: Any) -> Subscription:
    base = {
        "id": "s1",
        "name": "risk",
        "channel": "webhook",
        "url": "https://hooks.example.com/hook",
        "models": ["*"],
        "created_at": NOW,
        "secret": "k" * 64,
    }
    return Subscription.model_validate(base | fields)


async def test_every_retry_of_a_webhook_carries_the_same_delivery_id_and_a_signature() -> None:
    receiver = Receiver(503, 502, 204)
    notification = Notification.of(_sub(), [ALERT])
    result = await _notifier(receiver).send(_sub(), notification)
    assert (result.ok, result.status_code, result.attempts) == (True, 204, 3)
    assert {r.headers["X-Vigil-Delivery"] for r in receiver.requests} == {notification.delivery_id}
    first = receiver.requests[0]
    assert first.url.host == "93.184.215.14" and first.headers["Host"] == "hooks.example.com"
    assert first.extensions["sni_hostname"] == "hooks.example.com"
    assert first.headers["X-Vigil-Signature"].startswith("t=")
    assert json.loads(first.content)["alerts"][0]["fingerprint"] == "fp1"


async def test_a_subscription_without_a_secret_is_sent_unsigned() -> None:
    receiver = Receiver(200)
    await _notifier(receiver).send(_sub(secret=None), Notification.of(_sub(), [ALERT]))
    assert "X-Vigil-Signature" not in receiver.requests[0].headers


async def test_a_redirect_is_not_followed_and_not_retried() -> None:
    receiver = Receiver(302, headers={"Location": "http://169.254.169.254/"})
    result = await _notifier(receiver).send(_sub(), Notification.of(_sub(), [ALERT]))
    assert (result.ok, result.status_code, len(receiver.requests)) == (False, 302, 1)


async def test_a_target_refused_at_send_time_is_not_contacted_or_retried() -> None:
    receiver = Receiver(200)
    sub = _sub(url="https://rebound.example.com/hook")
    result = await _notifier(receiver).send(sub, Notification.of(sub, [ALERT]))
    assert not result.ok and result.attempts == 1 and receiver.requests == []
    assert result.error is not None and "private" in result.error


async def test_an_allowed_network_is_sent_to() -> None:
    receiver = Receiver(200)
    sub = _sub(url="https://rebound.example.com/hook")
    notifier = _notifier(receiver, alerting_allowed_networks=["192.168.0.0/16"])
    assert (await notifier.send(sub, Notification.of(sub, [ALERT]))).ok


async def test_pagerduty_and_slack_post_their_own_payloads() -> None:
    receiver = Receiver(202)
    pd = _sub(channel="pagerduty", url=None, routing_key="R", secret=None)
    assert (
        await _notifier(receiver, _resolver({"events.pagerduty.com": ["3.3.3.3"]})).send(
            pd, Notification.of(pd, [ALERT])
        )
    ).ok
    (event,) = [json.loads(r.content) for r in receiver.requests]
    assert (event["routing_key"], event["event_action"]) == ("R", "trigger")
    slack = _sub(channel="slack", secret=None)
    await _notifier(receiver).send(slack, Notification.of(slack, [ALERT]))
    assert "blocks" in json.loads(receiver.requests[-1].content)
    assert "X-Vigil-Signature" not in receiver.requests[-1].headers


async def test_email_without_an_smtp_server_is_refused_without_retrying() -> None:
    sub = _sub(channel="email", url=None, to=["oncall@example.com"], secret=None)
    result = await _notifier(Receiver(200)).send(sub, Notification.of(sub, [ALERT]))
    assert not result.ok and result.attempts == 1
    assert result.error is not None and "VIGIL_ALERTING_SMTP_HOST" in result.error
