"""Liveness: a model version that had traffic and then none for too long fires ``model_silent``;
its next traffic resolves it. No I/O.

``seen`` keeps, per version, the end of its newest traffic report with events.
``check_silence`` runs on alerting's clock: each rule whose signal reads a ``SilenceCheck``
(by default ``model_silent``, threshold the version's ``expected_interval``) fires at most once
per silence. A silence is named by the traffic it follows: an alert whose window starts there
is that silence's, whatever its status now. ``traffic_resumed`` resolves such an alert when a
traffic report with events, newer than the silence, arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator

from alerting.rules import Finding, condition_holds, fingerprint, in_utc, resolved, watched
from alerting.rules import window_of as silence_start
from vigil.wire.base import as_utc
from vigil.wire.records import Alert, AlertRule, TrafficReport
from vigil.wire.rules import SIGNALS, SilenceCheck

__all__ = [
    "MODEL_SILENT",
    "TrafficSeen",
    "check_silence",
    "seen",
    "silence_fingerprints",
    "traffic_resumed",
]

log = logging.getLogger(__name__)
MODEL_SILENT = "model_silent"


class TrafficSeen(BaseModel):
    """The newest traffic of one model version; stored as JSON."""

    last_traffic_at: datetime | None = None  # end of its newest interval with events
    last_report_id: str | None = None

    @field_validator("last_traffic_at")
    @classmethod
    def _aware(cls, moment: datetime | None) -> datetime | None:
        return as_utc(moment) if moment is not None else None

    @classmethod
    def load(cls, stored: Mapping[str, Any] | None) -> TrafficSeen | None:
        """What was stored; None when nothing was, or it cannot be read any more."""
        if stored is None:
            return None
        try:
            return cls.model_validate(stored)
        except ValidationError as exc:
            log.warning("traffic seen unreadable, waiting for traffic: %s", exc)
            return None


def seen(before: TrafficSeen | None, report: TrafficReport) -> TrafficSeen:
    """``before`` moved on to ``report`` when it has events and ends later (a replayed report
    moves nothing back)."""
    before = before or TrafficSeen()
    end = in_utc(report).window_end
    last = before.last_traffic_at
    if report.event_count <= 0 or (last is not None and last >= end):
        return before
    return TrafficSeen(last_traffic_at=end, last_report_id=report.report_id)


def silence_fingerprints(model_id: str, model_version: str, rules: Sequence[AlertRule]) -> set[str]:
    """The fingerprints of the version's silence alerts: of ``rules`` reading the clock, and
    ``model_silent``'s always (an alert it fired before it was disabled still resolves)."""
    names = {r.name for r in rules if _reads_the_clock(r)} | {MODEL_SILENT}
    return {fingerprint(model_id, model_version, name, None) for name in names}


def check_silence(
    model_id: str,
    model_version: str,
    seen: TrafficSeen,
    rules: Sequence[AlertRule],
    current: Mapping[str, Alert],
    now: datetime,
) -> list[Alert]:
    """The silence alerts of the version at ``now`` (timezone-aware): fired when it has been
    silent past a rule's threshold and this silence has none yet. An active alert about an
    earlier silence (traffic came since, but its resolution was lost) is resolved instead.
    ``current`` holds the version's alerts by fingerprint (``silence_fingerprints``)."""
    if seen.last_traffic_at is None:
        return []
    check = SilenceCheck.since(model_id, model_version, seen.last_traffic_at, now)
    changes: list[Alert] = []
    for rule, (_, value, notes) in watched(check, rules):
        fp = fingerprint(model_id, model_version, rule.name, None)
        existing = current.get(fp)
        if existing is not None and silence_start(existing) >= check.window_start:
            continue  # this silence (or a later one) has had its alert
        if existing is not None and existing.status != "resolved":
            changes.append(_resumed(existing, check.window_start, seen.last_report_id, now))
        elif condition_holds(rule, value, None):
            expected = f"expected every {_duration(rule.threshold)}"
            summary = (
                f"{model_id} {model_version}: no predictions for {_duration(value)} ({expected})"
            )
            changes.append(Finding(check, rule, None, value, None, notes).fired(fp, now, summary))
    return changes


def traffic_resumed(
    report: TrafficReport,
    rules: Sequence[AlertRule],
    current: Mapping[str, Alert],
    now: datetime,
) -> list[Alert]:
    """The version's active silence alerts that ``report`` resolves: it has events and comes
    after the traffic the silence followed. ``current`` as for ``check_silence``."""
    report = in_utc(report)
    if report.event_count <= 0:
        return []
    fps = silence_fingerprints(report.model_id, report.model_version, rules)
    return [
        _resumed(existing, report.window_start, report.report_id, now)
        for fp in sorted(fps)
        if (existing := current.get(fp)) is not None
        and existing.status != "resolved"
        and silence_start(existing) < report.window_end
    ]


def _reads_the_clock(rule: AlertRule) -> bool:
    signal = SIGNALS.get(rule.signal)
    return signal is not None and signal.reads is SilenceCheck


def _resumed(existing: Alert, at: datetime, report_id: str | None, now: datetime) -> Alert:
    """``existing`` resolved by traffic seen again at ``at``; its window stays the silence's."""
    since = silence_start(existing)
    silent = max((at - since).total_seconds(), 0.0)
    details = {
        **existing.details,
        "window_end": at.isoformat(),
        "resumed_at": at.isoformat(),
        "silent_seconds": f"{silent:.0f}",
        "report_id": report_id or existing.details.get("report_id", ""),
    }
    who = f"{existing.model_id} {existing.model_version}"
    return resolved(existing, now, details, f"{who}: traffic resumed after {_duration(silent)}")


def _duration(seconds: float) -> str:
    if seconds < 600:  # minutes would round a short interval away
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
