"""Subscriptions: who is told about which alerts, on which channel, and what they receive.

Pure logic: the subscription records, their label matchers, routing, the ``Notification`` a
channel sends and the Alertmanager-compatible webhook body. No I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from alerting.handlers import SEVERITY_RANK
from alerting.matchers import MAX_MATCHERS, Matcher, alert_labels, matches
from vigil.wire.records import Alert, Severity
from vigil.wire.shapes import Name, is_identifier

__all__ = [
    "ALL_MODELS",
    "MAX_MODELS",
    "PAGERDUTY_EVENTS_URL",
    "Channel",
    "DeliveryResult",
    "ModelRef",
    "Notification",
    "Subscription",
    "SubscriptionCreated",
    "SubscriptionIn",
    "SubscriptionView",
    "am_labels",
    "rfc3339",
    "route",
    "webhook_body",
]

ALL_MODELS = "*"
MAX_MODELS = 1000  # model ids one subscription names
MAX_RECIPIENTS = 20
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# Alertmanager's "not ended yet": the zero time of Go.
NOT_ENDED = "0001-01-01T00:00:00Z"

Channel = Literal["webhook", "slack", "email", "pagerduty"]
_ADDRESS = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _model_ref(value: str) -> str:
    if value != ALL_MODELS and not is_identifier(value):
        raise ValueError(
            "a model id (1 to 128 characters of A-Z a-z 0-9 . _ : -, starting with a letter or"
            ' digit) or "*"'
        )
    return value


def _address(value: str) -> str:
    if len(value) > 254 or not _ADDRESS.fullmatch(value):
        raise ValueError("an e-mail address such as oncall@example.com")
    return value


def _routing_key(value: str) -> str:
    if not 1 <= len(value) <= 64 or not value.isascii() or not value.isprintable():
        raise ValueError("a PagerDuty integration key (1 to 64 printable ASCII characters)")
    return value


ModelRef = Annotated[str, AfterValidator(_model_ref)]
Address = Annotated[str, AfterValidator(_address)]
RoutingKey = Annotated[str, AfterValidator(_routing_key)]


class SubscriptionIn(BaseModel):
    """Who wants to hear about which models, from which severity up, on which channel."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    channel: Channel
    url: HttpUrl | None = Field(
        default=None,
        description="webhook and slack: where to POST; pagerduty: the Events API v2 URL "
        f"(default {PAGERDUTY_EVENTS_URL}).",
    )
    to: list[Address] | None = Field(
        default=None, max_length=MAX_RECIPIENTS, description="email: the recipients."
    )
    routing_key: RoutingKey | None = Field(default=None, description="pagerduty: the key.")
    models: list[ModelRef] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f'Model ids, or ["*"] for every model (at most {MAX_MODELS}).',
    )
    min_severity: Severity = "low"
    matchers: list[Matcher] = Field(
        default_factory=list,
        max_length=MAX_MATCHERS,
        description="Label conditions (Alertmanager's) every alert sent must meet.",
    )

    @model_validator(mode="after")
    def _channel_fields(self) -> Self:
        needs: dict[str, tuple[str, ...]] = {
            "webhook": ("url",),
            "slack": ("url",),
            "email": ("to",),
            "pagerduty": ("routing_key",),
        }
        for field in needs[self.channel]:
            if not getattr(self, field):
                raise ValueError(f"{field} is required for the {self.channel} channel")
        unused = {"url", "to", "routing_key"} - set(needs[self.channel])
        if self.channel == "pagerduty":
            unused.discard("url")
            if self.url is None:
                self.url = HttpUrl(PAGERDUTY_EVENTS_URL)
        for field in sorted(unused):
            if getattr(self, field) is not None:
                raise ValueError(f"{field} does not apply to the {self.channel} channel")
        return self


class Subscription(SubscriptionIn):
    """A stored subscription, read as it was written: one an earlier release stored with a
    longer name or model ids it did not check still loads (and matches real model ids only);
    one stored before webhooks were signed has no secret, and its webhook is sent unsigned."""

    name: str
    models: list[str]
    id: str
    created_at: datetime
    secret: str | None = None

    def wants(self, alert: Alert) -> bool:
        """Whether this subscription is told about ``alert``."""
        model_ok = ALL_MODELS in self.models or alert.model_id in self.models
        severe = SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]
        labels = alert_labels(alert)
        return model_ok and severe and all(matches(m, labels) for m in self.matchers)


class SubscriptionView(BaseModel):
    """A subscription as the API lists it: never its secret, PagerDuty keys shortened."""

    id: str
    name: str
    channel: Channel
    url: str | None
    to: list[str] | None
    routing_key: str | None
    models: list[str]
    min_severity: Severity
    matchers: list[Matcher]
    created_at: datetime
    signed: bool = Field(description="Whether its webhook requests carry X-Vigil-Signature.")

    @classmethod
    def of(cls, sub: Subscription) -> Self:
        """What may be shown of ``sub``."""
        key = sub.routing_key
        return cls(
            id=sub.id,
            name=sub.name,
            channel=sub.channel,
            url=None if sub.url is None else str(sub.url),
            to=sub.to,
            routing_key=None if key is None else "\u2026" + key[-4:],
            models=sub.models,
            min_severity=sub.min_severity,
            matchers=sub.matchers,
            created_at=sub.created_at,
            signed=sub.secret is not None,
        )


class SubscriptionCreated(SubscriptionView):
    """The answer to a new subscription: a webhook's signing secret is shown this once."""

    secret: str | None = Field(
        description="webhook: the key of X-Vigil-Signature's HMAC; not shown again."
    )


def am_labels(alert: Alert) -> dict[str, str]:
    """An alert's labels as Alertmanager receivers expect them: ``alertname`` first."""
    labels = {"alertname": alert.rule, **alert_labels(alert)}
    return {k: v for k, v in labels.items() if v}


def route(
    subscriptions: Iterable[Subscription], alerts: Sequence[Alert]
) -> list[tuple[Subscription, list[Alert]]]:
    """Each subscription with the alerts it wants, grouped so it gets one message per report."""
    routed = []
    for sub in subscriptions:
        wanted = [a for a in alerts if sub.wants(a)]
        if wanted:
            routed.append((sub, wanted))
    return routed


@dataclass(frozen=True)
class Notification:
    """One message to one subscription; every retry of it carries the same ``delivery_id``."""

    delivery_id: str
    group_key: str
    status: Literal["firing", "resolved"]
    alerts: tuple[Alert, ...]
    receiver: str
    test: bool = False

    @classmethod
    def of(cls, subscription: Subscription, alerts: Sequence[Alert], test: bool = False) -> Self:
        """A new notification (new delivery id) of ``alerts`` to ``subscription``."""
        active = any(a.status != "resolved" for a in alerts)
        return cls(
            delivery_id=uuid.uuid4().hex,
            group_key=f'{{}}:{{subscription="{subscription.id}"}}',
            status="firing" if active else "resolved",
            alerts=tuple(alerts),
            receiver=subscription.name,
            test=test,
        )


@dataclass(frozen=True)
class DeliveryResult:
    """How sending a notification went: the last attempt's HTTP status, the time it took."""

    ok: bool
    status_code: int | None
    latency: float
    error: str | None = None
    attempts: int = 1


def rfc3339(moment: datetime | None) -> str:
    """``moment`` in UTC as Alertmanager writes times; None is its "not ended"."""
    if moment is None:
        return NOT_ENDED
    zoned = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return zoned.isoformat().replace("+00:00", "Z")


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every mapping shares."""
    if not maps:
        return {}
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def _webhook_alert(alert: Alert) -> dict[str, Any]:
    """One alert as Alertmanager sends it, with Vigil's own fields beside."""
    return {
        "status": "resolved" if alert.status == "resolved" else "firing",
        "labels": am_labels(alert),
        "annotations": {"summary": alert.summary},
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at),
        "generatorURL": "",
        "fingerprint": alert.fingerprint,
        "severity": alert.severity,
        "model_id": alert.model_id,
        "model_version": alert.model_version,
        "rule": alert.rule,
        "feature": alert.feature,
        "summary": alert.summary,
        "details": alert.details,
        "vigil_status": alert.status,
        "updated_at": rfc3339(alert.updated_at),
    }


def webhook_body(notification: Notification, external_url: str = "") -> dict[str, Any]:
    """The JSON a webhook receives: Alertmanager's version 4 body, plus Vigil's fields."""
    alerts = [_webhook_alert(a) for a in notification.alerts]
    labels = [a["labels"] for a in alerts]
    common = _common(labels)
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": 0,
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": {k: common[k] for k in ("model_id",) if k in common},
        "commonLabels": common,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
        "delivery_id": notification.delivery_id,
        "test": notification.test,
    }
