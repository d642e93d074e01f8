"""Notification groups, with Alertmanager's timing: which alerts a subscription hears about
together, and when. Pure logic; ``alerting.dispatch`` keeps the groups in Redis and runs them.

A subscription's alerts are grouped by the values of its ``group_by`` labels (default the
model id and version). A new group notifies ``group_wait`` after its first alert (at once when
one is critical); after that, at most every ``group_interval``, with what changed since the last
notification; and, while alerts are still firing and nobody acknowledged them, again every
``repeat_interval``. An acknowledgement is told at once, so everyone in the group knows who
took it. An alert that is silenced, or inhibited, when its group notifies is left out.

What a notification said about each alert is the group's memory (``sent``): the next one is
due only when that changes, and a resolved alert is told once, only to those told it fired.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from alerting.silences import silencing
from alerting.subscriptions import Subscription
from vigil.wire.alert_events import Silence
from vigil.wire.matchers import alert_labels
from vigil.wire.records import Alert

__all__ = [
    "DEFAULT_TIMING",
    "Flush",
    "Group",
    "Timing",
    "absorb",
    "due_at",
    "flush",
    "group_of",
    "groups_for",
    "said",
    "silenced_now",
    "timing",
]


@dataclass(frozen=True)
class Timing:
    """A subscription's group timing, in seconds."""

    group_wait: float
    group_interval: float
    repeat_interval: float


# Alertmanager's defaults: 30 s before a new group's first message, 5 min between updates,
# 4 h between repeats.
DEFAULT_TIMING = Timing(group_wait=30.0, group_interval=300.0, repeat_interval=4 * 3600.0)


class Group(BaseModel):
    """One subscription's alerts that share the values of its ``group_by`` labels."""

    key: str
    subscription_id: str
    labels: dict[str, str]
    alerts: dict[str, Alert] = Field(default_factory=dict)
    # What the last notification said of each alert it listed (see ``said``).
    sent: dict[str, str] = Field(default_factory=dict)
    # The active alerts a silence keeps out of its notifications, with the silence's id.
    silenced: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    flushed_at: datetime | None = None


def group_of(subscription: Subscription, alert: Alert) -> tuple[str, dict[str, str]]:
    """The key and labels of the group ``alert`` belongs to for ``subscription``."""
    labels = alert_labels(alert)
    grouped = {name: labels.get(name, "") for name in subscription.group_by}
    text = json.dumps([subscription.id, sorted(grouped.items())], separators=(",", ":"))
    return f"{subscription.id}:{hashlib.sha256(text.encode()).hexdigest()[:24]}", grouped


def absorb(
    group: Group | None,
    subscription: Subscription,
    alerts: Sequence[Alert],
    now: datetime,
) -> Group:
    """``group`` (a new one when None) with ``alerts``, which belong to it, as they now are."""
    if group is None:
        key, labels = group_of(subscription, alerts[0])
        group = Group(key=key, subscription_id=subscription.id, labels=labels, created_at=now)
    merged = dict(group.alerts)
    for alert in alerts:
        before = merged.get(alert.fingerprint)
        if before is None or before.updated_at <= alert.updated_at:
            merged[alert.fingerprint] = alert
    return group.model_copy(update={"alerts": merged})


def said(alert: Alert, silences: Iterable[Silence], now: datetime) -> str | None:
    """What a notification would say of ``alert`` now: ``firing:<severity>``,
    ``acknowledged:<principal>`` or ``resolved``; None when it says nothing (silenced or
    inhibited while active)."""
    if alert.status == "resolved":
        return "resolved"
    if alert.silenced_by is not None or alert.inhibited_by is not None:
        return None
    if silencing(list(silences), alert, now) is not None:
        return None
    if alert.status == "acknowledged":
        return f"acknowledged:{alert.acknowledged_by or ''}"
    return f"firing:{alert.severity}"


def _views(group: Group, silences: Sequence[Silence], now: datetime) -> dict[str, str]:
    """What a notification now would say of each alert of ``group`` worth telling: active
    ones not silenced nor inhibited, and resolutions of alerts it was told fired."""
    views = {}
    for fp, alert in group.alerts.items():
        view = said(alert, silences, now)
        if view is None:
            continue
        if view == "resolved" and not group.sent.get(fp, "").startswith(("firing", "ack")):
            continue  # nobody was told it fired
        if view.startswith("acknowledged") and fp not in group.sent:
            continue  # acknowledged before anyone was told: nothing to tell
        views[fp] = view
    return views


def due_at(
    group: Group, timing: Timing, silences: Sequence[Silence], now: datetime
) -> datetime | None:
    """When ``group`` next notifies; None when it has nothing to say (until it changes)."""
    views = _views(group, silences, now)
    firing = [fp for fp, v in views.items() if v.startswith("firing")]
    if group.flushed_at is None:
        if not firing:
            return _recheck(group, timing, now)
        critical = any(views[fp] == "firing:critical" for fp in firing)
        wait = 0.0 if critical else timing.group_wait
        return group.created_at + timedelta(seconds=wait)
    changed = {fp for fp, v in views.items() if group.sent.get(fp) != v}
    if changed and all(views[fp].startswith("acknowledged") for fp in changed):
        return group.flushed_at  # who acknowledged is told at once
    if changed:
        return group.flushed_at + timedelta(seconds=timing.group_interval)
    if firing:
        return group.flushed_at + timedelta(seconds=timing.repeat_interval)
    return _recheck(group, timing, now)


def _recheck(group: Group, timing: Timing, now: datetime) -> datetime | None:
    """Active alerts with nothing to say now (silenced, inhibited, acknowledged) are looked
    at again every ``group_interval``: a silence ends, an acknowledged alert may worsen."""
    if any(a.status != "resolved" for a in group.alerts.values()):
        return now + timedelta(seconds=timing.group_interval)
    return None


def silenced_now(
    group: Group, silences: Sequence[Silence], now: datetime
) -> tuple[Group, dict[str, str]]:
    """``group`` with the silences now keeping its active alerts out, and those newly kept
    out (fingerprint -> silence id), to be recorded once each."""
    current: dict[str, str] = {}
    for fp, alert in group.alerts.items():
        silence = silencing(list(silences), alert, now) if alert.status != "resolved" else None
        if silence is not None:
            current[fp] = silence.id
    newly = {fp: i for fp, i in current.items() if group.silenced.get(fp) != i}
    return group.model_copy(update={"silenced": current}), newly


@dataclass(frozen=True)
class Flush:
    """A group's notification: the alerts it lists (None: nothing to send), the group after
    it, and whether the group is done (nothing left in it to tell or watch)."""

    alerts: list[Alert] | None
    group: Group
    done: bool


def flush(group: Group, silences: Sequence[Silence], now: datetime) -> Flush:
    """Notify ``group`` now: every alert firing in it, those acknowledged or resolved since
    the last notification; resolved alerts leave the group once told."""
    views = _views(group, silences, now)
    listed = [
        group.alerts[fp]
        for fp, view in views.items()
        if view.startswith("firing") or group.sent.get(fp) != view
    ]
    keep = {fp: a for fp, a in group.alerts.items() if a.status != "resolved"}
    sent = {fp: views[fp] for fp in views if views[fp] != "resolved"}
    after = group.model_copy(
        update={"alerts": keep, "sent": sent, "flushed_at": now if listed else group.flushed_at}
    )
    return Flush(listed or None, after, not keep)


def groups_for(
    subscriptions: Iterable[Subscription], alerts: Sequence[Alert]
) -> dict[str, tuple[Subscription, list[Alert]]]:
    """The alerts each subscription wants, by the key of the group they go to."""
    grouped: dict[str, tuple[Subscription, list[Alert]]] = {}
    for sub in subscriptions:
        for alert in alerts:
            if sub.wants(alert):
                key, _ = group_of(sub, alert)
                grouped.setdefault(key, (sub, []))[1].append(alert)
    return grouped


def timing(subscription: Subscription, defaults: Timing) -> Timing:
    """A subscription's timing: its own where it sets it, else the service's defaults."""
    return Timing(
        defaults.group_wait
        if subscription.group_wait_seconds is None
        else subscription.group_wait_seconds,
        subscription.group_interval_seconds or defaults.group_interval,
        subscription.repeat_interval_seconds or defaults.repeat_interval,
    )
