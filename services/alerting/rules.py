"""Alert rules evaluated over reports: the state they keep, the alerts they change. No I/O.

A report of any type (``vigil.wire.rules.Report``: window, traffic, ...) is judged by the rules
whose signal reads its type; the streaks of the other rules are kept as they are. Per
(rule, subject) the state keeps how many consecutive reports the rule's condition held,
the trailing values a ``change_*`` condition compares with, and the last window it saw. An
alert fires when the condition held ``for_windows`` reports in a row and resolves at the first
report where it no longer holds. A report for a window not after the last one seen (a stale or
repeated report) changes neither the state nor the alerts, so a report handled twice after an
outage counts once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from vigil.wire.base import as_utc
from vigil.wire.records import Alert, AlertRule, Severity
from vigil.wire.rules import SIGNALS, Reading, Report

__all__ = [
    "Finding",
    "RuleState",
    "Streak",
    "condition_holds",
    "evaluate_rules",
    "fingerprint",
    "in_utc",
    "resolved",
    "watched",
    "window_of",
]

log = logging.getLogger(__name__)
_SEP = "\x1f"
R = TypeVar("R", bound=Report)


class Streak(BaseModel):
    """What one rule remembers about one subject."""

    window: datetime
    held: int = 0
    history: list[float] = Field(default_factory=list)
    # A revised report of the same window (performance, as labels land) is judged again:
    # the revision last judged, and the streak before that window.
    revision: int = 0
    before: int = 0


class RuleState(BaseModel):
    """The rules' memory of one model version, by ``rule<US>subject``; stored as JSON."""

    streaks: dict[str, Streak] = Field(default_factory=dict)

    @classmethod
    def load(cls, stored: Mapping[str, Any] | None) -> RuleState:
        """The state as stored; empty when there is none, or it cannot be read any more."""
        if stored is None:
            return cls()
        try:
            return cls.model_validate(stored)
        except ValidationError as exc:
            log.warning("rule state unreadable, starting afresh: %s", exc)
            return cls()


def fingerprint(model_id: str, model_version: str, rule: str, feature: str | None) -> str:
    """Stable id of what an alert is about; repeats of the same problem share it."""
    text = _SEP.join([model_id, model_version, rule, feature or ""])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def in_utc(report: R) -> R:
    """``report`` with every time zone-aware: a JSON report may omit the zone, meaning UTC."""
    times = {n: as_utc(v) for n, v in vars(report).items() if isinstance(v, datetime)}
    return report.model_copy(update=times)


def watched(report: Report, rules: Sequence[AlertRule]) -> Iterator[tuple[AlertRule, Reading]]:
    """Each rule with each value of ``report`` it watches; rules of unknown signals (a newer
    release's, read by this one) and of signals of other report types watch nothing."""
    for rule in rules:
        signal = SIGNALS.get(rule.signal)
        if signal is None or not rule.enabled:
            continue
        for reading in signal.readings(report):
            subject = reading[0]
            if rule.features is None or subject in rule.features:
                yield rule, reading


def condition_holds(rule: AlertRule, value: float, baseline: float | None) -> bool:
    """Whether ``value`` meets ``rule``'s condition (a change against ``baseline``)."""
    if rule.condition == "above":
        return value > rule.threshold
    if rule.condition == "below":
        return value < rule.threshold
    if baseline is None:
        return False
    change = (value - baseline) / abs(baseline)
    if rule.condition == "change_beyond":
        return abs(change) > rule.threshold
    return change > rule.threshold if rule.condition == "change_above" else change < rule.threshold


def _baseline(rule: AlertRule, previous: list[float]) -> float | None:
    """Mean of the previous ``baseline_windows`` values: None until there are that many, or
    when it is 0 (no relative change from nothing)."""
    if not rule.condition.startswith("change") or len(previous) < rule.baseline_windows:
        return None
    trailing = previous[-rule.baseline_windows :]
    mean = sum(trailing) / len(trailing)
    return mean if mean != 0 else None


def _step(
    rule: AlertRule, before: Streak | None, window: datetime, value: float, revision: int = 0
) -> tuple[Streak, bool, float | None] | None:
    """The streak after ``value`` of ``window``, whether the condition held, and the baseline.

    None for a window older than the last one seen. The last window again (a report handled
    twice) gives the same answer and the same streak, whether or not the alerts it changed
    were stored the first time; unless it is a later ``revision`` of that window's report,
    which is judged again in its place.
    """
    if before is not None and as_utc(before.window) > window:
        return None
    again = before is not None and as_utc(before.window) == window
    if before is not None and again and revision <= before.revision:
        return before, before.held > 0, _baseline(rule, before.history[:-1])
    if before is not None and again:
        previous, streak = before.history[:-1], before.before
    else:
        previous = before.history if before is not None else []
        streak = before.held if before is not None else 0
    baseline = _baseline(rule, previous)
    holds = condition_holds(rule, value, baseline)
    held = streak + 1 if holds else 0
    history = [*previous, value][-(rule.baseline_windows + 1) :]
    kept = history if rule.condition.startswith("change") else []
    return (
        Streak(window=window, held=held, history=kept, revision=revision, before=streak),
        holds,
        baseline,
    )


def evaluate_rules(
    report: Report,
    rules: Sequence[AlertRule],
    state: RuleState,
    current: Mapping[str, Alert],
    now: datetime,
) -> tuple[list[Alert], RuleState]:
    """The alerts ``report`` changes under ``rules`` (their severities filled in), and the new
    state. ``current`` holds the version's existing alerts by fingerprint."""
    report = in_utc(report)
    names = {r.name for r in rules}
    # Streaks of rules that are gone are forgotten; those of subjects not in this report kept.
    streaks = {k: v for k, v in state.streaks.items() if k.split(_SEP, 1)[0] in names}
    changes: list[Alert] = []
    for rule, (subject, value, notes) in watched(report, rules):
        key = _SEP.join([rule.name, subject or ""])
        revision = int(getattr(report, "revision", 0))
        stepped = _step(rule, streaks.get(key), report.window_start, value, revision)
        if stepped is None:
            continue
        streaks[key], holds, baseline = stepped
        fp = fingerprint(report.model_id, report.model_version, rule.name, subject)
        existing = current.get(fp)
        if existing is not None and window_of(existing) > report.window_start:
            continue
        active = existing is not None and existing.status != "resolved"
        found = Finding(report, rule, subject, value, baseline, notes)
        if holds and not active and streaks[key].held >= rule.for_windows:
            changes.append(found.fired(fp, now))
        elif not holds and active and existing is not None:
            changes.append(found.resolved(existing, now))
    return changes, RuleState(streaks=streaks)


def window_of(alert: Alert) -> datetime:
    """Start of the window whose report last changed ``alert``."""
    return as_utc(datetime.fromisoformat(alert.details["window_start"]))


def resolved(existing: Alert, now: datetime, details: dict[str, str], summary: str) -> Alert:
    """``existing`` resolved at ``now``, saying why."""
    update = {
        "status": "resolved",
        "ends_at": now,
        "updated_at": now,
        "details": details,
        "summary": summary,
    }
    return existing.model_copy(update=update)


class Finding:
    """What a rule found about one subject of one report, as alert fields."""

    def __init__(
        self,
        report: Report,
        rule: AlertRule,
        subject: str | None,
        value: float,
        baseline: float | None,
        notes: dict[str, str],
    ) -> None:
        self.report, self.rule, self.subject = report, rule, subject
        self.value, self.baseline, self.notes = value, baseline, notes

    @property
    def what(self) -> str:
        r = self.report
        on = f" on {self.subject!r}" if self.subject is not None else ""
        return f"{r.model_id} {r.model_version}: {self.rule.name}{on}"

    def details(self) -> dict[str, str]:
        """What an alert says about the window that changed it."""
        r, rule = self.report, self.rule
        details = {
            "signal": rule.signal,
            "condition": rule.condition,
            "value": f"{self.value:.6g}",
            "threshold": f"{rule.threshold:g}",
            "for_windows": str(rule.for_windows),
            "window_start": r.window_start.isoformat(),
            "window_end": r.window_end.isoformat(),
            "events": str(r.event_count),
            "report_id": r.report_id,
            **self.notes,
        }
        if self.baseline is not None:
            details["baseline"] = f"{self.baseline:.6g}"
        return details

    def fired(self, fp: str, now: datetime, summary: str | None = None) -> Alert:
        """The alert this finding fires (``summary``: instead of the rule's own words)."""
        r, rule = self.report, self.rule
        severity: Severity = rule.severity or "medium"
        labels = {
            "model_id": r.model_id,
            "model_version": r.model_version,
            "rule": rule.name,
            "signal": rule.signal,
            "severity": severity,
        }
        if self.subject is not None:
            labels["feature"] = self.subject
        against = f" vs baseline {self.baseline:.4g}" if self.baseline is not None else ""
        if "statistic" in self.notes:  # a drift verdict: say what it was judged on
            n = self.notes
            against += f" ({n['statistic']} {n['statistic_value']} > {n['statistic_threshold']})"
        return Alert(
            fingerprint=fp,
            status="firing",
            severity=severity,
            model_id=r.model_id,
            model_version=r.model_version,
            rule=rule.name,
            feature=self.subject,
            summary=summary
            or f"{self.what}: {rule.signal} {self.value:.4g} {rule.condition} "
            f"{rule.threshold:g}{against} for {rule.for_windows} window(s)",
            details=self.details(),
            labels=labels,
            starts_at=now,
            updated_at=now,
        )

    def resolved(self, existing: Alert, now: datetime) -> Alert:
        rule = self.rule
        summary = (
            f"{self.what}: {rule.signal} {self.value:.4g} no longer "
            f"{rule.condition} {rule.threshold:g}"
        )
        return resolved(existing, now, self.details(), summary)
