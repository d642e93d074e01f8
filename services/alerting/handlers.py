"""Alerting logic: window reports -> alert state changes. No I/O.

The rule engine is ``alerting.rules``; ``evaluate`` is its simplest use, the feature-drift rule
alone (which holds from one window, so needs no memory of earlier ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from alerting.rules import RuleState, evaluate_rules, fingerprint, in_utc
from vigil.wire.records import Alert, AlertRule, Severity, WindowReport

__all__ = [
    "FEATURE_DRIFT",
    "SEVERITY_RANK",
    "evaluate",
    "fingerprint",
    "in_utc",
]

FEATURE_DRIFT = "feature_drift"
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def evaluate(
    report: WindowReport,
    severity: Severity,
    current: Mapping[str, Alert],
    now: datetime,
) -> list[Alert]:
    """The feature-drift alerts that change because of ``report``: new drift fires, ended
    drift resolves.

    A feature that keeps drifting keeps its one firing (or acknowledged) alert: no repeat.
    A report older than the one an alert last changed on is stale and changes nothing.
    ``current`` holds the existing alerts of the report's model version by fingerprint.
    """
    rule = AlertRule(
        name=FEATURE_DRIFT,
        signal=FEATURE_DRIFT,
        condition="above",
        threshold=0.5,
        severity=severity,
    )
    changes, _ = evaluate_rules(report, [rule], RuleState(), current, now)
    return changes
