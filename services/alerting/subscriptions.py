"""Subscriptions: who is told about which alerts, on which channel, and what they receive.

Pure logic: the subscription records, their label matchers, routing, the ``Notification`` a
channel sends and the Alertmanager-compatible webhook body. No I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from alerting.handlers import SEVERITY_RANK
from vigil.wire.matchers import MAX_MATCHERS, Matcher, alert_labels, matches
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
    "webhook_body",
]

ALL_MODELS = "*"
# Alertmanager's default grouping here: one group per model version.
DEFAULT_GROUP_BY = ("model_id", "model_version")
MAX_GROUP_BY = 10
MAX_INTERVAL = 7 * 24 * 3600.0  # a week, in seconds
MAX_MODELS = 1000  # model ids one subscription names
MAX_RECIPIENTS = 20
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# Alertmanager's "not ended yet": the zero time of Go.
NOT_ENDED = "0001-01-01T00:00:00Z"

Channel = Literal["webhook", "slack", "email", "pagerduty"]
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
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


def _label_name(value: str) -> str:
    if not _LABEL.fullmatch(value):
        raise ValueError("a label name such as model_id, rule, feature or severity")
    return value


def _routing_key(value: str) -> str:
    if not 1 <= len(value) <= 64 or not value.isascii() or not value.isprintable():
        raise ValueError("a PagerDuty integration key (1 to 64 printable ASCII characters)")
    return value


ModelRef = Annotated[str, AfterValidator(_model_ref)]
Address = Annotated[str, AfterValidator(_address)]
RoutingKey = Annotated[str, AfterValidator(_routing_key)]
LabelName = Annotated[str, AfterValidator(_label_name)]


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
    group_by: list[LabelName] = Field(
        default_factory=lambda: list(DEFAULT_GROUP_BY),
        min_length=1,
        max_length=MAX_GROUP_BY,
        description="Labels whose values make a group: its alerts are sent together.",
    )
    group_wait_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_INTERVAL,
        description="How long a new group waits for more alerts before its first "
        "notification (default the server's, 30 s; a critical alert is sent at once).",
    )
    group_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_INTERVAL,
        description="Least time between two notifications of a group's changes (default 300).",
    )
    repeat_interval_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_INTERVAL,
        description="How often alerts still firing, unacknowledged, are sent again "
        "(default 14400).",
    )

    @model_validator(mode="after")
    def _channel_fields(self) -> Self:
        needs: dict[str, tuple[str, ...]] = {
            "webhook": ("url",),
            "slack": ("url",),
            "email": ("to",),
            "pagerduty": ("routing_key",),
        }
        for name in needs[self.channel]:
            if not getattr(self, name):
                raise ValueError(f"{name} is required for the {self.channel} channel")
        unused = {"url", "to", "routing_key"} - set(needs[self.channel])
        if self.channel == "pagerduty":
            unused.discard("url")
            if self.url is None:
                self.url = HttpUrl(PAGERDUTY_EVENTS_URL)
        for name in sorted(unused):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} does not apply to the {self.channel} channel")
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
    group_by: list[str]
    group_wait_seconds: float | None
    group_interval_seconds: float | None
    repeat_interval_seconds: float | None
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
            group_by=sub.group_by,
            group_wait_seconds=sub.group_wait_seconds,
            group_interval_seconds=sub.group_interval_seconds,
            repeat_interval_seconds=sub.repeat_interval_seconds,
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


@dataclass(frozen=True)
class Notification:
    """One message to one subscription; every retry of it carries the same ``delivery_id``."""

    delivery_id: str
    group_key: str
    status: Literal["firing", "resolved"]
    alerts: tuple[Alert, ...]
    receiver: str
    test: bool = False
    group_labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        subscription: Subscription,
        alerts: Sequence[Alert],
        test: bool = False,
        group_labels: Mapping[str, str] | None = None,
        delivery_id: str | None = None,
    ) -> Self:
        """A notification of ``alerts`` to ``subscription``, about the group with
        ``group_labels`` (a new delivery id unless given)."""
        labels = dict(group_labels or {})
        active = any(a.status != "resolved" for a in alerts)
        inner = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
        return cls(
            delivery_id=delivery_id or uuid.uuid4().hex,
            group_key=f'{{}}/{{subscription="{subscription.id}"}}:{{{inner}}}',
            status="firing" if active else "resolved",
            alerts=tuple(alerts),
            receiver=subscription.name,
            test=test,
            group_labels=labels,
        )


@dataclass(frozen=True)
class DeliveryResult:
    """How sending a notification went: the last attempt's HTTP status, the time it took."""

    ok: bool
    status_code: int | None
    latency: float
    error: str | None = None
    attempts: int = 1
    retryable: bool = True  # False: no later attempt can deliver it (refused target, 4xx)


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
        "groupLabels": dict(notification.group_labels),
        "commonLabels": common,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url,
        "alerts": alerts,
        "delivery_id": notification.delivery_id,
        "test": notification.test,
    }
