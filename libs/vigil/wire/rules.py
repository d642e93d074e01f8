"""Alert rules as data: the signals a rule may watch, and a model's overrides merged over the
defaults of its risk tier (``vigil.wire.rule_defaults``, whose names are re-exported here).
No I/O.

A signal reads (subject, value) pairs out of one type of ``Report``: the subject is a feature
(output, metric, host...) for a per-subject signal, None for the whole report. ``SIGNALS`` is
the plug-in point: a new kind of value becomes alertable by an entry here and rules naming it.
``silent_seconds`` reads a ``SilenceCheck`` alerting makes from its clock.

>>> [(r.name, r.severity) for r in default_rules("high")][:3]
[('feature_drift', 'high'), ('output_drift', 'high'), ('dataset_drift', 'critical')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self, TypeVar

from vigil.wire.checks import Check
from vigil.wire.environments import EnvironmentCheck, environment_readings
from vigil.wire.flag_reports import FlagReport, flag_rates, harmful_flags, kind_errors
from vigil.wire.performance import METRICS, PerformanceReport
from vigil.wire.records import AlertRule, FeatureDrift, Severity, TrafficReport, WindowReport
from vigil.wire.rule_defaults import SEVERITIES, default_rules, escalated
from vigil.wire.validation import FieldError, describe

__all__ = [
    "SEVERITIES",
    "SIGNALS",
    "Reading",
    "Report",
    "Signal",
    "SilenceCheck",
    "default_rules",
    "effective_rules",
    "escalated",
    "rule_errors",
]

# (subject, value, what else an alert about it should say)
Reading = tuple[str | None, float, dict[str, str]]


class Report(Protocol):
    """What every report rules read has: the model version and the window it is about."""

    @property
    def report_id(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    @property
    def model_version(self) -> str: ...
    @property
    def window_start(self) -> datetime: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def event_count(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """The report with ``update`` applied (pydantic's)."""
        ...


R = TypeVar("R")


class SilenceCheck(Check):
    """How long a version has had no traffic, on alerting's clock. Its window runs from the
    end of the version's last traffic to now."""

    silent_seconds: float

    @classmethod
    def since(cls, model_id: str, model_version: str, last: datetime, now: datetime) -> Self:
        """The check at ``now`` of a version whose last traffic ended at ``last``."""
        return cls(
            report_id=f"{model_id}/{model_version}/silence/{last.isoformat()}",
            model_id=model_id,
            model_version=model_version,
            window_start=last,
            window_end=now,
            created_at=now,
            silent_seconds=(now - last).total_seconds(),
        )


@dataclass(frozen=True)
class Signal:
    """A value of one type of report (``reads``) a rule can watch."""

    description: str
    read: Callable[[Any], Iterable[Reading]]
    per_feature: bool = False
    reads: type[Report] = WindowReport

    def readings(self, report: Report) -> Iterable[Reading]:
        """The signal's values in ``report``; none in a report of another type."""
        return self.read(report) if isinstance(report, self.reads) else ()


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


def _whole(value: Callable[[R], float | None]) -> Callable[[R], Iterator[Reading]]:
    """A signal of the whole window (no subject)."""

    def read(report: R) -> Iterator[Reading]:
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


def _traffic_rate(report: TrafficReport) -> Iterator[Reading]:
    """Events received per minute, dead-lettered ones included (rejects are the dead-letter
    rate's to page, not a traffic drop); an interval of no length says nothing."""
    seconds = (report.window_end - report.window_start).total_seconds()
    if seconds > 0:
        yield None, (report.event_count + report.dead_lettered) / seconds * 60, {}


def _dead_letter_rate(report: TrafficReport) -> Iterator[Reading]:
    """Dead-lettered / received events; an interval that received none says nothing."""
    received = report.event_count + report.dead_lettered
    if received > 0:
        notes = {"dead_lettered": str(report.dead_lettered), "received": str(received)}
        yield None, report.dead_lettered / received, notes


def _silence(check: SilenceCheck) -> Iterator[Reading]:
    notes = {
        "last_traffic_at": check.window_start.isoformat(),
        "silent_seconds": f"{check.silent_seconds:.0f}",
    }
    yield None, check.silent_seconds, notes


def _by_name(
    metrics: Callable[[PerformanceReport], Mapping[str, float]],
) -> Callable[[PerformanceReport], Iterator[Reading]]:
    """A signal of each metric of a performance report (the subject is the metric's name)."""

    def read(report: PerformanceReport) -> Iterator[Reading]:
        for name, value in sorted(metrics(report).items()):
            yield name, value, {"revision": str(report.revision), "labelled": str(report.labelled)}

    return read


# Metrics a report judges against its reference (``vigil.performance.degradation``).
_JUDGED = frozenset(
    {"accuracy", "precision", "recall", "f1", "roc_auc", "brier", "mae", "rmse", "mean_error"}
)


def _degraded(report: PerformanceReport) -> Iterator[Reading]:
    """1 for each metric the report says degraded from the reference's, 0 for each judged one
    that did not; a report without a reference says nothing."""
    for name in sorted(_JUDGED & report.metrics_low.keys() & report.reference_metrics.keys()):
        notes = {
            "value": f"{report.metrics[name]:.4f}",
            "reference": f"{report.reference_metrics[name]:.4f}",
            "interval": f"{report.metrics_low[name]:.4f}..{report.metrics_high[name]:.4f}",
            "revision": str(report.revision),
            "labelled": str(report.labelled),
        }
        yield name, float(name in report.degraded), notes


def _fairness(report: PerformanceReport) -> Iterator[Reading]:
    """Per sensitive attribute: 1 when any fairness measure of its judged groups is beyond the
    model's tolerance over its whole interval, else 0; nothing without a judged measure."""
    for f in sorted(report.fairness, key=lambda f: f.attribute):
        if not f.measures:
            continue
        notes = {
            name: f"{m.value:.4f} [{m.low:.4f}, {m.high:.4f}] ({m.lowest} vs {m.highest})"
            for name, m in sorted(f.measures.items())
        }
        notes["violations"] = ", ".join(f.violations) or "none"
        yield f.attribute, float(bool(f.violations)), notes


SIGNALS: dict[str, Signal] = {
    "feature_drift": Signal("1 when a feature drifted in the window, else 0", _feature_drift, True),
    "output_drift": Signal("1 when an output (prediction, score) drifted", _output_drift, True),
    "dataset_drift": Signal(
        "1 when the dataset drifted (share of drifted features, or multivariate)",
        _whole(lambda r: float(r.dataset_drift)),
    ),
    "drift_share": Signal("share of judged features drifted", _whole(lambda r: r.drift_share)),
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
    "traffic_rate": Signal(
        "events per minute received (traffic reports)", _traffic_rate, reads=TrafficReport
    ),
    "dead_letter_rate": Signal(
        "events the drift detector dead-lettered / events received (traffic reports)",
        _dead_letter_rate,
        reads=TrafficReport,
    ),
    "silent_seconds": Signal(
        "seconds since the version's last traffic (alerting's clock; above only)",
        _silence,
        reads=SilenceCheck,
    ),
    "performance": Signal(
        "each realised metric of a performance report (features: the metric names)",
        _by_name(lambda r: r.metrics),
        True,
        PerformanceReport,
    ),
    "estimated_performance": Signal(
        "each metric estimated from the scores alone (binary models, before labels)",
        _by_name(lambda r: r.estimated),
        True,
        PerformanceReport,
    ),
    "label_coverage": Signal(
        "labelled / predictions of the window",
        _whole(lambda r: r.label_coverage),
        reads=PerformanceReport,
    ),
    "value_per_prediction": Signal(
        "realised business value per labelled prediction",
        _whole(lambda r: r.value_per_prediction),
        reads=PerformanceReport,
    ),
    "performance_degraded": Signal(
        "1 when a metric is worse than the reference's beyond the tier's tolerance over its"
        " whole 95 % interval, else 0 (features: the metric names)",
        _degraded,
        True,
        PerformanceReport,
    ),
    "fairness_violation": Signal(
        "1 when a sensitive attribute's disparate impact or a parity/odds difference is beyond"
        " the model's tolerance over its whole 95 % interval (features: the attributes)",
        _fairness,
        True,
        PerformanceReport,
    ),
    "orphaned_rate": Signal(
        "feedback whose prediction never came / all feedback of the window",
        _whole(lambda r: _rate(r.orphaned, r.orphaned + r.labelled)),
        reads=PerformanceReport,
    ),
    "flag_rate": Signal(
        "each kind's share of experts' flags (features: the kinds)", flag_rates, True, FlagReport
    ),
    "harmful_flags": Signal("flags saying harmful (count)", harmful_flags, reads=FlagReport),
    "environment_mismatch": Signal(
        "ways a serving host differs from the validated environment (subject: the host)",
        environment_readings,
        True,
        EnvironmentCheck,
    ),
}


def effective_rules(
    tier: Severity, overrides: Sequence[AlertRule], expected_interval: float = 600.0
) -> list[AlertRule]:
    """The tier's defaults with ``overrides`` applied (same name: replaced; new names: added),
    disabled rules left out, and every severity filled in (none given: the tier's)."""
    merged = {r.name: r for r in default_rules(tier, expected_interval)}
    merged.update({r.name: r for r in overrides})
    return [
        r if r.severity is not None else r.model_copy(update={"severity": tier})
        for r in merged.values()
        if r.enabled
    ]


def rule_errors(rules: Sequence[AlertRule], subjects: Iterable[str]) -> list[FieldError]:
    """Why ``rules`` cannot be a model's rules: unknown signals, repeated names, ``features``
    on a whole-window signal or naming no feature or output of the model, a ``change_*``
    condition on a signal read from the clock (it has no trailing windows)."""
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
        elif signal.reads is SilenceCheck and r.condition.startswith("change"):
            expected = f"above or below for the signal {r.signal}"
            errors.append(FieldError(f"[{i}].condition", expected, describe(r.condition)))
        elif r.features is not None and r.signal == "fairness_violation":
            pass  # sensitive attributes: features, or tags the registry has no list of
        elif r.features is not None and signal.reads is FlagReport:
            errors += kind_errors(f"[{i}].features", r.features)
        elif r.features is not None and signal.reads is PerformanceReport:
            errors += [
                FieldError(f"[{i}].features", "a metric: " + ", ".join(METRICS), describe(name))
                for name in r.features
                if name not in METRICS
            ]
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
