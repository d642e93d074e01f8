"""Inhibition: an active alert keeps others it explains from being sent. No I/O.

An ``InhibitRule`` has Alertmanager's semantics: an alert matching its ``target`` matchers is
inhibited by an active alert matching its ``source`` matchers when both have the same value
(``""`` when missing) for every label named in ``equal``. An alert never inhibits itself (its
earlier state has the same fingerprint), and an alert matching both sides of a rule is not
inhibited by another that does too. Labels are those of ``alert_labels``, so ``model_id``,
``model_version``, ``rule``, ``feature`` and ``severity`` are always there.

Inhibited changes are still recorded, with ``inhibited_by`` naming the inhibiting alert, but
not sent; a resolution is never inhibited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from alerting.rules import fingerprint
from vigil.wire.matchers import Matcher, alert_labels, matches_all
from vigil.wire.records import Alert

__all__ = [
    "DATA_QUALITY_RULES",
    "DEFAULT_INHIBITIONS",
    "DRIFT_RULES",
    "TRAFFIC_RULES",
    "InhibitRule",
    "active_sources",
    "inhibited_by",
    "source_fingerprints",
]

DRIFT_RULES = (
    "feature_drift",
    "output_drift",
    "dataset_drift",
    "drift_share",
    "multivariate_drift",
    "sequential_drift",
)
DATA_QUALITY_RULES = ("missing_rate", "out_of_range_rate", "unseen_rate", "type_violation_rate")
TRAFFIC_RULES = ("event_count_drop", "traffic_anomaly")
_VERSION = ("model_id", "model_version")
_SAME_SUBJECT = (*_VERSION, "rule", "feature")
_SEVERITIES = ("low", "medium", "high", "critical")
# Whole-window rules whose alerts inhibit others of their version (the other default sources
# are about the same subject as what they inhibit).
_WINDOW_SOURCES = ("dataset_drift", "model_silent")


class InhibitRule(BaseModel):
    """Alerts matching ``target`` are not sent while an active alert matching ``source`` and
    equal to them in the ``equal`` labels exists."""

    model_config = ConfigDict(frozen=True)

    name: str
    source: list[Matcher] = Field(min_length=1)
    target: list[Matcher] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


def _one_of(names: Sequence[str]) -> str:
    return "|".join(names)


def _rule(name: str, source: Matcher, target: Matcher, equal: Sequence[str]) -> InhibitRule:
    return InhibitRule(name=name, source=[source], target=[target], equal=list(equal))


def _by_severity() -> list[InhibitRule]:
    """A more severe alert inhibits less severe ones about the same subject of the same rule."""
    return [
        _rule(
            f"{higher}_over_lower",
            Matcher(name="severity", value=higher),
            Matcher(name="severity", value=_one_of(_SEVERITIES[:rank]), op="=~"),
            _SAME_SUBJECT,
        )
        for rank, higher in enumerate(_SEVERITIES)
        if rank > 0
    ]


DEFAULT_INHIBITIONS: tuple[InhibitRule, ...] = (
    _rule(
        "dataset_drift_over_feature_drift",
        Matcher(name="rule", value="dataset_drift"),
        Matcher(name="rule", value="feature_drift|sequential_drift", op="=~"),
        _VERSION,
    ),
    _rule(
        "model_silent_over_drift_quality_traffic",
        Matcher(name="rule", value="model_silent"),
        Matcher(
            name="rule",
            value=_one_of([*DRIFT_RULES, *DATA_QUALITY_RULES, *TRAFFIC_RULES]),
            op="=~",
        ),
        _VERSION,
    ),
    *_by_severity(),
)


def _equal(rule: InhibitRule, a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return all(a.get(name, "") == b.get(name, "") for name in rule.equal)


def inhibited_by(
    alert: Alert,
    active_alerts: Iterable[Alert],
    rules: Sequence[InhibitRule] = DEFAULT_INHIBITIONS,
) -> str | None:
    """The fingerprint of an alert of ``active_alerts`` inhibiting ``alert``, or None.

    ``active_alerts`` are the possible sources: those resolved, and ``alert``'s own earlier
    states, inhibit nothing. A resolution is never inhibited.
    """
    if alert.status == "resolved":
        return None
    labels = alert_labels(alert)
    sources = [
        (a, alert_labels(a))
        for a in active_alerts
        if a.status != "resolved" and a.fingerprint != alert.fingerprint
    ]
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        both_sides = matches_all(rule.source, labels)
        for source, source_labels in sources:
            if (
                matches_all(rule.source, source_labels)
                and _equal(rule, labels, source_labels)
                and not (both_sides and matches_all(rule.target, source_labels))
            ):
                return source.fingerprint
    return None


def active_sources(current: Iterable[Alert], changes: Iterable[Alert]) -> list[Alert]:
    """The alerts that may inhibit a report's changes: the version's stored alerts with the
    report's changes applied over them (by fingerprint), those still active."""
    latest = {a.fingerprint: a for a in current}
    latest.update({a.fingerprint: a for a in changes})
    return [a for a in latest.values() if a.status != "resolved"]


def source_fingerprints(model_id: str, model_version: str) -> set[str]:
    """Fingerprints of the version's whole-window alerts the default rules inhibit with, to
    look up besides those of the subjects a report is about."""
    return {fingerprint(model_id, model_version, rule, None) for rule in _WINDOW_SOURCES}
