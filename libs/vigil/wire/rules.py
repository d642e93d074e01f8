"""Alert rules as data: the signals a rule may watch, the defaults of each risk tier, and a
model's overrides merged over them. No I/O.

A signal reads (subject, value) pairs out of a ``WindowReport``: the subject is a feature (or
output) name for a per-feature signal, None for a signal of the whole window. ``SIGNALS`` is
the plug-in point: a new kind of report value (performance, business, fairness) becomes
alertable by adding an entry here and rules that name it, without touching the evaluation.

>>> [(r.name, r.severity) for r in default_rules("high")][:3]
[('feature_drift', 'high'), ('output_drift', 'high'), ('dataset_drift', 'critical')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from vigil.wire.records import AlertRule, FeatureDrift, Severity, WindowReport
from vigil.wire.validation import FieldError, describe

__all__ = [
    "SEVERITIES",
    "SIGNALS",
    "Reading",
    "Signal",
    "default_rules",
    "effective_rules",
    "escalated",
    "rule_errors",
]

SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
# (subject, value, what else an alert about it should say)
Reading = tuple[str | None, float, dict[str, str]]


@dataclass(frozen=True)
class Signal:
    """A value of a window report a rule can watch."""

    description: str
    read: Callable[[WindowReport], Iterable[Reading]]
    per_feature: bool = False


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _valid(f: FeatureDrift) -> int:
    return f.count - f.missing - f.type_violations


def _verdict(f: FeatureDrift) -> Reading:
    statistic = f.statistics.get(f.drift_statistic, float("nan"))
    notes = {
        "statistic": f.drift_statistic,
        "statistic_value": f"{statistic:.4f}",
        "statistic_threshold": f"{f.threshold:.4f}",
    }
    return f.feature, float(f.drifted), notes


def _per_feature(
    rate: Callable[[FeatureDrift], float | None],
) -> Callable[[WindowReport], Iterator[Reading]]:
    """A signal of each feature; a feature without data for it (no values) says nothing."""

    def read(report: WindowReport) -> Iterator[Reading]:
        for f in report.features:
            value = rate(f)
            if value is not None:
                yield f.feature, value, {}

    return read


def _whole(
    value: Callable[[WindowReport], float | None],
) -> Callable[[WindowReport], Iterator[Reading]]:
    def read(report: WindowReport) -> Iterator[Reading]:
        found = value(report)
        if found is not None:
            yield None, found, {}

    return read


def _feature_drift(report: WindowReport) -> Iterator[Reading]:
    return (_verdict(f) for f in report.features)


def _output_drift(report: WindowReport) -> Iterator[Reading]:
    return (_verdict(f) for f in report.outputs)


def _sequential(report: WindowReport) -> Iterator[Reading]:
    return ((f.feature, float(f.sequential_drift), {}) for f in report.features)


def _multivariate(report: WindowReport) -> float | None:
    return float(report.multivariate.drifted) if report.multivariate is not None else None


SIGNALS: dict[str, Signal] = {
    "feature_drift": Signal("1 when a feature drifted in the window, else 0", _feature_drift, True),
    "output_drift": Signal("1 when an output (prediction, score) drifted", _output_drift, True),
    "dataset_drift": Signal(
        "1 when the dataset drifted (share of drifted features, or multivariate)",
        _whole(lambda r: float(r.dataset_drift)),
    ),
    "drift_share": Signal(
        "share of the judged features that drifted", _whole(lambda r: r.drift_share)
    ),
    "multivariate_drift": Signal(
        "1 when the PCA reconstruction error drifted", _whole(_multivariate)
    ),
    "sequential_drift": Signal("1 when a feature's PSI drifts slowly (ADWIN)", _sequential, True),
    "missing_rate": Signal(
        "missing values / events", _per_feature(lambda f: _rate(f.missing, f.count)), True
    ),
    "out_of_range_rate": Signal(
        "values outside the reference's (or spec's) range / usable values",
        _per_feature(lambda f: _rate(f.out_of_range, _valid(f))),
        True,
    ),
    "unseen_rate": Signal(
        "categories the reference never saw / usable values",
        _per_feature(lambda f: _rate(f.unseen_categories, _valid(f))),
        True,
    ),
    "type_violation_rate": Signal(
        "values of the wrong type / events",
        _per_feature(lambda f: _rate(f.type_violations, f.count)),
        True,
    ),
    "event_count": Signal("events in the window", _whole(lambda r: float(r.event_count))),
    "late_rate": Signal(
        "events too late for their window / all the window's events",
        _whole(lambda r: _rate(r.late_events, r.event_count + r.late_events)),
    ),
}


def escalated(tier: Severity, steps: int) -> Severity:
    """``tier`` moved ``steps`` levels up (down if negative), within low..critical."""
    rank = min(max(SEVERITIES.index(tier) + steps, 0), len(SEVERITIES) - 1)
    return SEVERITIES[rank]


# Thresholds by tier (low, medium, high, critical): riskier models alert earlier.
_MISSING = (0.05, 0.03, 0.02, 0.01)
_OUT_OF_DOMAIN = (0.10, 0.05, 0.03, 0.02)  # a sample's range and categories are noisier
_LATE = (0.20, 0.10, 0.05, 0.05)


def default_rules(tier: Severity) -> list[AlertRule]:
    """The rules every model of risk tier ``tier`` has unless it overrides them."""
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
    ]


def effective_rules(tier: Severity, overrides: Sequence[AlertRule]) -> list[AlertRule]:
    """The tier's defaults with ``overrides`` applied (same name: replaced; new names: added),
    disabled rules left out, and every severity filled in (none given: the tier's)."""
    merged = {r.name: r for r in default_rules(tier)}
    merged.update({r.name: r for r in overrides})
    return [
        r if r.severity is not None else r.model_copy(update={"severity": tier})
        for r in merged.values()
        if r.enabled
    ]


def rule_errors(rules: Sequence[AlertRule], subjects: Iterable[str]) -> list[FieldError]:
    """Why ``rules`` cannot be a model's rules: unknown signals, repeated names, ``features``
    on a whole-window signal or naming no feature or output of the model."""
    known = set(subjects)
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, r in enumerate(rules):
        signal = SIGNALS.get(r.signal)
        if signal is None:
            expected = "one of " + ", ".join(sorted(SIGNALS))
            errors.append(FieldError(f"[{i}].signal", expected, describe(r.signal)))
        elif r.features is not None and not signal.per_feature:
            errors.append(
                FieldError(
                    f"[{i}].features", f"null for the signal {r.signal}", describe(r.features)
                )
            )
        elif r.features is not None:
            errors += [
                FieldError(f"[{i}].features", "a feature or output of the model", describe(name))
                for name in r.features
                if name not in known
            ]
        if r.name in seen:
            errors.append(FieldError(f"[{i}].name", "a name not used by another rule", r.name))
        seen.add(r.name)
    return errors
