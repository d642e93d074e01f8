"""What each channel sends for a notification: Slack blocks, PagerDuty events, e-mail, and the
webhook's signature. Pure logic; ``channels.delivery`` sends them."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from alerting.subscriptions import ALL_MODELS, Notification, Subscription, rfc3339
from vigil.wire.records import Alert

__all__ = [
    "MAX_LISTED",
    "PAGERDUTY_SEVERITY",
    "email_message",
    "pagerduty_events",
    "probe_alert",
    "signature",
    "slack_body",
]

MAX_LISTED = 10  # alerts spelled out in one Slack message or e-mail subject; the rest counted
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
PAGERDUTY_ACTION = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}
_ICON = {"firing": "\U0001f534", "acknowledged": "\U0001f7e1", "resolved": "\u2705"}
_LINE_BREAKS = re.compile(r"[\r\n\t]+")


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """``X-Vigil-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    signed = str(timestamp).encode() + b"." + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def probe_alert(subscription: Subscription, now: datetime) -> Alert:
    """A made-up firing alert that ``POST /v1/subscriptions/{id}/test`` sends."""
    models = [m for m in subscription.models if m != ALL_MODELS]
    return Alert(
        fingerprint=f"test-{uuid.uuid4().hex[:15]}",
        status="firing",
        severity=subscription.min_severity,
        model_id=models[0] if models else "example-model",
        model_version="0.0.0",
        rule="test",
        summary=f"Test notification from Vigil to {subscription.name!r}: delivery works",
        details={"note": "sent on request; no model is affected"},
        labels={"test": "true"},
        starts_at=now,
        updated_at=now,
    )


def _one_line(text: str, limit: int) -> str:
    flat = _LINE_BREAKS.sub(" ", text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _headline(notification: Notification) -> str:
    """``FIRING (2): credit-risk`` — what the message is about, in a few words."""
    alerts = notification.alerts
    models = sorted({a.model_id for a in alerts})
    about = models[0] if len(models) == 1 else f"{len(models)} models"
    prefix = "TEST " if notification.test else ""
    return f"{prefix}{notification.status.upper()} ({len(alerts)}): {about}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_alert(alert: Alert) -> dict[str, Any]:
    about = f"`{alert.model_id}` {alert.model_version} \u00b7 {alert.rule}"
    if alert.feature:
        about += f" \u00b7 {alert.feature}"
    text = (
        f"{_ICON[alert.status]} *{alert.severity.upper()}* {alert.status}\n{about}\n{alert.summary}"
    )
    return {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(text)[:2900]}}


def slack_body(notification: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook payload (Block Kit): a header, one short section per alert."""
    alerts = notification.alerts
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _one_line(_headline(notification), 150)},
        }
    ]
    blocks += [_slack_alert(a) for a in alerts[:MAX_LISTED]]
    if len(alerts) > MAX_LISTED:
        more = f"\u2026and {len(alerts) - MAX_LISTED} more"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
    context = f"Vigil \u00b7 {notification.receiver} \u00b7 delivery {notification.delivery_id}"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(context)}]}
    )
    return {"text": _one_line(_headline(notification), 150), "blocks": blocks}


def pagerduty_events(notification: Notification, routing_key: str) -> list[dict[str, Any]]:
    """One PagerDuty Events API v2 event per alert, de-duplicated on the alert's fingerprint."""
    events = []
    for alert in notification.alerts:
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": PAGERDUTY_ACTION[alert.status],
            "dedup_key": alert.fingerprint,
            "client": "Vigil",
        }
        if event["event_action"] == "trigger":
            event["payload"] = {
                "summary": _one_line(alert.summary, 1024),
                "source": f"vigil/{alert.model_id}",
                "severity": PAGERDUTY_SEVERITY[alert.severity],
                "timestamp": rfc3339(alert.starts_at),
                "component": alert.model_id,
                "group": alert.model_version,
                "class": alert.rule,
                "custom_details": {
                    "feature": alert.feature,
                    "model_version": alert.model_version,
                    "delivery_id": notification.delivery_id,
                    "test": notification.test,
                    **alert.details,
                },
            }
        events.append(event)
    return events


def _text_alert(alert: Alert) -> str:
    lines = [
        f"[{alert.status.upper()}] {alert.severity}: {alert.summary}",
        f"  model {alert.model_id} {alert.model_version}, rule {alert.rule}"
        + (f", feature {alert.feature}" if alert.feature else ""),
        f"  since {rfc3339(alert.starts_at)}"
        + (f", ended {rfc3339(alert.ends_at)}" if alert.ends_at else ""),
    ]
    lines += [f"  {k}: {v}" for k, v in alert.details.items()]
    return "\n".join(lines)


def _html_alert(alert: Alert) -> str:
    e = html.escape
    details = "".join(f"<li>{e(k)}: {e(v)}</li>" for k, v in alert.details.items())
    feature = f", feature <b>{e(alert.feature)}</b>" if alert.feature else ""
    return (
        f"<h3>{_ICON[alert.status]} {e(alert.severity.upper())} \u00b7 {e(alert.status)}</h3>"
        f"<p>{e(alert.summary)}</p>"
        f"<p>model <b>{e(alert.model_id)}</b> {e(alert.model_version)}, rule {e(alert.rule)}"
        f"{feature}; since {e(rfc3339(alert.starts_at))}</p><ul>{details}</ul>"
    )


def email_message(
    notification: Notification, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    """The e-mail for a notification: plain text, and the same as HTML."""
    alerts = notification.alerts
    message = EmailMessage()
    message["Subject"] = _one_line(f"[Vigil] {_headline(notification)}", 200)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["X-Vigil-Delivery"] = notification.delivery_id
    footer = f"Vigil, subscription {notification.receiver}, delivery {notification.delivery_id}"
    text = "\n\n".join(_text_alert(a) for a in alerts)
    message.set_content(f"{_headline(notification)}\n\n{text}\n\n-- \n{footer}\n")
    body = "".join(_html_alert(a) for a in alerts)
    message.add_alternative(
        f"<html><body><h2>{html.escape(_headline(notification))}</h2>{body}"
        f"<hr><p><small>{html.escape(footer)}</small></p></body></html>",
        subtype="html",
    )
    return message
