"""What each channel sends: the signed, Alertmanager-compatible webhook body, Slack blocks,
PagerDuty events and e-mail; and which subscriptions the channels accept. No I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from alerting.channels.formats import email_message, pagerduty_events, signature, slack_body
from alerting.grouping import groups_for
from alerting.subscriptions import (
    PAGERDUTY_EVENTS_URL,
    Notification,
    Subscription,
    SubscriptionIn,
    SubscriptionView,
    webhook_body,
)
from tests.webhook import readme_verifier
from vigil.wire.records import Alert

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _alert(status: str = "firing", severity: str = "high", feature: str = "income") -> Alert:
    return Alert(
        fingerprint=f"fp-{feature}",
        status=status,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        model_id="credit-risk",
        model_version="1.0.0",
        rule="feature_drift",
        feature=feature,
        summary=f"credit-risk 1.0.0: feature '{feature}' drifted <psi 0.31>",
        details={"statistic": "psi", "value": "0.3100"},
        labels={"team": "risk"},
        starts_at=NOW,
        ends_at=NOW if status == "resolved" else None,
        updated_at=NOW,
    )


def _sub(**fields: Any) -> Subscription:
    base: dict[str, Any] = {
        "id": "s1",
        "name": "risk on-call",
        "channel": "webhook",
        "url": "https://hooks.example.com/x",
        "models": ["credit-risk"],
        "created_at": NOW,
    }
    return Subscription.model_validate(base | fields)


def test_the_readme_snippet_verifies_a_signature_and_rejects_a_changed_body() -> None:
    body = json.dumps({"alerts": []}).encode()
    header = signature("s3cret", body, int(datetime.now(UTC).timestamp()))
    verified = readme_verifier()
    assert verified("s3cret", header, body)
    assert not verified("s3cret", header, body + b" ")
    assert not verified("other", header, body)
    assert not verified("s3cret", signature("s3cret", body, 1_000_000_000), body)  # too old


def test_the_webhook_body_is_alertmanagers_version_4_with_vigils_fields() -> None:
    firing, resolved = _alert(), _alert("resolved", feature="age")
    notification = Notification.of(
        _sub(), [firing, resolved], group_labels={"model_id": "credit-risk"}
    )
    body = webhook_body(notification, "https://vigil.example")
    assert body["version"] == "4"
    assert (body["status"], body["receiver"], body["externalURL"]) == (
        "firing",
        "risk on-call",
        "https://vigil.example",
    )
    assert body["groupKey"] and body["groupLabels"] == {"model_id": "credit-risk"}
    assert body["commonLabels"]["team"] == "risk" and "feature" not in body["commonLabels"]
    one, two = body["alerts"]
    assert one["labels"]["alertname"] == "feature_drift"
    assert one["annotations"]["summary"] == firing.summary
    assert (one["startsAt"], one["endsAt"]) == ("2026-05-01T12:00:00Z", "0001-01-01T00:00:00Z")
    assert (two["status"], two["endsAt"]) == ("resolved", "2026-05-01T12:00:00Z")
    for key in ("severity", "model_id", "model_version", "rule", "feature", "summary", "details"):
        assert one[key] == getattr(firing, key)
    assert one["fingerprint"] == firing.fingerprint
    assert body["delivery_id"] and body["test"] is False


def test_a_notification_of_only_resolved_alerts_is_resolved() -> None:
    notification = Notification.of(_sub(), [_alert("resolved")])
    assert notification.status == "resolved"
    assert Notification.of(_sub(), [_alert()]).delivery_id != notification.delivery_id


def test_slack_gets_a_header_and_one_short_section_per_alert_escaped() -> None:
    alerts = [_alert(feature=f"f{i}") for i in range(12)]
    body = slack_body(Notification.of(_sub(), alerts))
    header, *sections, context = body["blocks"]
    assert header["type"] == "header" and "FIRING (12): credit-risk" in header["text"]["text"]
    assert len(sections) == 11  # ten alerts, then how many more
    assert "&lt;psi 0.31&gt;" in sections[0]["text"]["text"]
    assert "*HIGH*" in sections[0]["text"]["text"]
    assert sections[-1]["text"]["text"] == "\u2026and 2 more"
    assert context["type"] == "context"
    assert body["text"]  # what a phone's notification shows


def test_pagerduty_gets_one_event_per_alert_deduplicated_on_its_fingerprint() -> None:
    acked = _alert(feature="b").model_copy(update={"status": "acknowledged"})
    alerts = [_alert(severity="critical"), acked, _alert("resolved", feature="c")]
    trigger, ack, resolve = pagerduty_events(Notification.of(_sub(), alerts), "R0UTING")
    assert [e["event_action"] for e in (trigger, ack, resolve)] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert [e["dedup_key"] for e in (trigger, ack, resolve)] == ["fp-income", "fp-b", "fp-c"]
    assert {e["routing_key"] for e in (trigger, ack, resolve)} == {"R0UTING"}
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "vigil/credit-risk"
    assert trigger["payload"]["summary"] == alerts[0].summary
    assert "payload" not in resolve


def test_email_has_plain_text_and_html_parts() -> None:
    message = email_message(Notification.of(_sub(), [_alert()]), "vigil@example.com", ["a@x.io"])
    assert message["Subject"] == "[Vigil] FIRING (1): credit-risk"
    assert (message["From"], message["To"]) == ("vigil@example.com", "a@x.io")
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    assert "drifted <psi 0.31>" in plain.get_content()
    assert "drifted &lt;psi 0.31&gt;" in rich.get_content()


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"channel": "webhook"}, "url is required"),
        ({"channel": "slack"}, "url is required"),
        ({"channel": "email"}, "to is required"),
        ({"channel": "email", "to": ["not an address"]}, "e-mail address"),
        ({"channel": "email", "to": ["a@x.io"], "url": "https://x.io"}, "url does not apply"),
        ({"channel": "pagerduty"}, "routing_key is required"),
        ({"channel": "sms", "url": "https://x.io"}, "channel"),
        ({"channel": "webhook", "url": "ftp://x.io/h"}, "url"),
        ({"channel": "webhook", "url": "https://x.io", "routing_key": "k"}, "routing_key"),
    ],
)
def test_each_channel_needs_its_own_fields(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        SubscriptionIn.model_validate({"name": "n", "models": ["*"]} | fields)


def test_pagerduty_goes_to_the_events_api_unless_told_otherwise() -> None:
    sub = SubscriptionIn.model_validate(
        {"name": "n", "channel": "pagerduty", "routing_key": "k", "models": ["*"]}
    )
    assert str(sub.url) == PAGERDUTY_EVENTS_URL


def test_a_subscription_stored_by_the_previous_release_loads_and_is_unsigned() -> None:
    stored = {
        "id": "old",
        "name": "risk on-call",
        "channel": "webhook",
        "url": "http://127.0.0.1:9000/hook",
        "models": ["credit-risk"],
        "min_severity": "low",
        "created_at": "2026-01-01T00:00:00Z",
    }
    old = Subscription.model_validate_json(json.dumps(stored))
    assert (old.secret, old.matchers) == (None, [])
    assert SubscriptionView.of(old).signed is False


def test_the_view_never_shows_a_secret_and_shortens_pagerduty_keys() -> None:
    view = SubscriptionView.of(_sub(secret="abc" * 20)).model_dump()
    assert "secret" not in view and view["signed"] is True
    pd = _sub(channel="pagerduty", url=None, routing_key="0123456789abcdef")
    assert SubscriptionView.of(pd).routing_key == "\u2026cdef"


@pytest.mark.parametrize(
    ("matchers", "wanted"),
    [
        ([{"name": "team", "value": "risk"}], True),
        ([{"name": "team", "value": "fraud"}], False),
        ([{"name": "feature", "value": "inc.*", "op": "=~"}], True),
        ([{"name": "feature", "value": "inc", "op": "=~"}], False),  # anchored
        ([{"name": "feature", "value": "income|age", "op": "!~"}], False),
        ([{"name": "region", "value": "", "op": "="}], True),  # missing label is ""
        ([{"name": "team", "value": "risk"}, {"name": "severity", "value": "low"}], False),
    ],
)
def test_label_matchers_choose_the_alerts_a_subscription_gets(
    matchers: list[dict[str, str]], wanted: bool
) -> None:
    routed = groups_for([_sub(matchers=matchers)], [_alert()])
    assert bool(routed) is wanted


@pytest.mark.parametrize("value", ["(unclosed", "a" * 300])
def test_a_matcher_regex_that_does_not_compile_or_is_too_long_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="value"):
        _sub(matchers=[{"name": "feature", "value": value, "op": "=~"}])
