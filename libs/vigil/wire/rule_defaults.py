"""The alert rules every model version has unless it overrides them, by risk tier. No I/O.

Riskier tiers alert earlier (lower thresholds) and louder (their own, higher severity); some
rules sit a level above or below the tier. The signals they name are ``vigil.wire.rules``'s.

>>> rules = {r.name: r for r in default_rules("low")}
>>> rules["dead_letter_rate"].threshold, rules["dead_letter_rate"].for_windows
(0.05, 3)
>>> {r.name: r for r in default_rules("critical")}["dead_letter_rate"].severity
'critical'
"""

from __future__ import annotations

from vigil.wire.records import AlertRule, Severity

__all__ = ["SEVERITIES", "default_rules", "escalated"]

SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")


def escalated(tier: Severity, steps: int) -> Severity:
    """``tier`` moved ``steps`` levels up (down if negative), within low..critical."""
    rank = min(max(SEVERITIES.index(tier) + steps, 0), len(SEVERITIES) - 1)
    return SEVERITIES[rank]


# Thresholds by tier (low, medium, high, critical): riskier models alert earlier.
_MISSING = (0.05, 0.03, 0.02, 0.01)
_OUT_OF_DOMAIN = (0.10, 0.05, 0.03, 0.02)  # a sample's range and categories are noisier
_LATE = (0.20, 0.10, 0.05, 0.05)
# Events the drift detector could not profile are events no drift or quality check sees.
_DEAD_LETTERS = (0.05, 0.03, 0.02, 0.01)
_HARMFUL_FROM = SEVERITIES.index("high")


def default_rules(tier: Severity, expected_interval: float = 600.0) -> list[AlertRule]:
    """The rules every model of risk tier ``tier`` has unless it overrides them;
    ``expected_interval`` is the version's (seconds of silence that fire ``model_silent``)."""
    at = SEVERITIES.index(tier)

    def rule(name: str, condition: str, threshold: float, up: int = 0, **more: object) -> AlertRule:
        return AlertRule.model_validate(
            {
                "name": name,
                "signal": more.pop("signal", name),
                "condition": condition,
                "threshold": threshold,
                "severity": escalated(tier, up),
                **more,
            }
        )

    return [
        rule("feature_drift", "above", 0.5),
        rule("output_drift", "above", 0.5),
        rule("dataset_drift", "above", 0.5, up=1),
        rule("multivariate_drift", "above", 0.5, for_windows=2),
        rule("sequential_drift", "above", 0.5, up=-1),
        rule("missing_rate", "above", _MISSING[at]),
        rule("type_violation_rate", "above", _MISSING[at]),
        rule("out_of_range_rate", "above", _OUT_OF_DOMAIN[at], for_windows=2),
        rule("unseen_rate", "above", _OUT_OF_DOMAIN[at], for_windows=2),
        rule("event_count_drop", "change_below", -0.5, signal="event_count", for_windows=2),
        rule("late_rate", "above", _LATE[at], up=-1, for_windows=2),
        rule(
            "traffic_anomaly",
            "change_beyond",
            0.5,
            signal="traffic_rate",
            baseline_windows=20,
            for_windows=3,
        ),
        rule("model_silent", "above", expected_interval, signal="silent_seconds"),
        # Three traffic intervals in a row (about 90 s): a single odd batch does not page.
        rule("dead_letter_rate", "above", _DEAD_LETTERS[at], for_windows=3),
        # Outcomes: a metric 10 % below its last 10 windows, for 2 windows (each revision of a
        # window's report is judged again as its labels land); the estimate likewise.
        rule(
            "performance_drop",
            "change_below",
            -0.1,
            signal="performance",
            for_windows=2,
            features=["accuracy", "f1", "roc_auc"],
        ),
        rule(
            "estimated_performance_drop",
            "change_below",
            -0.1,
            up=-1,
            for_windows=2,
            signal="estimated_performance",
            features=["accuracy", "roc_auc"],
        ),
        rule("label_coverage_drop", "change_below", -0.5, signal="label_coverage", for_windows=3),
        # A metric worse than the reference's beyond the tier's tolerance, over its whole
        # interval: small windows cannot fire it.
        rule("performance_degraded", "above", 0.5),
        # A group treated worse, beyond the tolerance over the whole interval: small groups
        # are never judged.
        rule("fairness_violation", "above", 0.5),
        # Experts' flags (flag reports, one per interval with flags): the share of incorrect
        # or harmful ones half again above its last 10 intervals', twice in a row.
        rule(
            "flag_rate_rise",
            "change_above",
            0.5,
            signal="flag_rate",
            for_windows=2,
            features=["incorrect", "harmful"],
        ),
        # Any harmful flag on a high- or critical-tier model pages at once (other tiers may
        # enable it as an override).
        rule("harmful_flag", "above", 0, signal="harmful_flags", enabled=at >= _HARMFUL_FROM),
        # A host serving the version in another environment than it was validated in (the
        # SDK's report; versions that record a validated environment only).
        rule("environment_mismatch", "above", 0, up=-1),
    ]
