"""Alerting's records: the events of ``vigil.alerts.v1`` and the silences they carry
(pydantic mirrors of ``schemas/vigil.AlertEvent.avsc`` and ``vigil.Silence.avsc``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from vigil.wire.records import Alert, Record

__all__ = ["AlertEvent", "AlertEventKind", "LabelMatcher", "Silence"]


class LabelMatcher(Record):
    """One label test of a silence (Alertmanager's: ``=``, ``!=``, ``=~``, ``!~``)."""

    name: str
    value: str
    op: str = "="


class Silence(Record):
    id: str
    matchers: list[LabelMatcher]
    starts_at: datetime
    ends_at: datetime
    comment: str = ""
    created_by: str
    expired_at: datetime | None = None


AlertEventKind = Literal[
    "state", "notification", "silence", "silence_expired", "ack", "subscribed", "unsubscribed"
]


class AlertEvent(Record):
    """One change to alerting's state: the record on ``vigil.alerts.v1``."""

    event_id: str
    time: datetime
    kind: AlertEventKind
    fingerprint: str | None = None
    alert: Alert | None = None
    silence: Silence | None = None
    subscription_id: str | None = None
    channel: str | None = None
    delivery_id: str | None = None
    outcome: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    actor: str | None = None
    comment: str | None = None
    silence_id: str | None = None
    subscription: str | None = None
    attempt: int | None = None

    @property
    def key(self) -> str:
        """Key on the alerts topic: one alert's (or one silence's) events stay in order."""
        if self.fingerprint is not None:
            return self.fingerprint
        if self.subscription_id is not None:
            return f"subscription/{self.subscription_id}"
        return f"silence/{self.silence.id if self.silence else ''}"
