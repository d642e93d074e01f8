"""Vigil's own health from each process's Prometheus text: what the health page shows (no I/O).

The numbers are those ``deploy/prometheus/`` scrapes (``vigil_*`` names, see
``vigil.adapters.metrics``), summed over the labels a page does not need; quantiles are
estimated from histogram buckets as Prometheus's ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["Latency", "ServiceHealth", "TopicLag", "down", "quantile", "summarise_metrics"]

# Counters of events taken in, beyond the stages' records (``stage`` label).
_ACCEPTED = {
    "vigil_predictions_accepted_total": "predictions accepted",
    "vigil_feedback_accepted_total": "feedback accepted",
}
_DEAD_LETTERS = ("vigil_stage_dead_lettered_total", "vigil_alerting_reports_dead_lettered_total")


@dataclass(frozen=True)
class TopicLag:
    """A stage's consumer lag on one topic: summed over its partitions, and the worst one."""

    stage: str
    topic: str
    total: float
    worst_partition: str
    worst: float


@dataclass(frozen=True)
class Latency:
    """How many observations a histogram holds and its estimated 95th percentile (seconds)."""

    count: float
    p95: float | None


@dataclass(frozen=True)
class ServiceHealth:
    """One process as its ``/metrics`` shows it; ``up`` False with ``error`` when unread."""

    name: str
    url: str
    up: bool
    error: str = ""
    events_in: dict[str, float] = field(default_factory=dict)
    events_out: dict[str, float] = field(default_factory=dict)
    lag: list[TopicLag] = field(default_factory=list)
    dead_letters: float = 0.0
    notifications: dict[str, float] = field(default_factory=dict)
    http: Latency | None = None
    window_close: Latency | None = None


def down(name: str, url: str, error: str) -> ServiceHealth:
    """A process whose metrics could not be read."""
    return ServiceHealth(name=name, url=url, up=False, error=error)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile from cumulative bucket counts (upper bound -> count), interpolated
    linearly within its bucket; None without observations. In the ``+Inf`` bucket it is the
    highest finite bound, as Prometheus answers.

    >>> quantile(0.5, {0.1: 0.0, 0.2: 10.0, math.inf: 10.0})
    0.15
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


def _latency(samples: Iterable[Sample], name: str) -> Latency | None:
    """A histogram's count and p95, every label set (route, status…) added together."""
    buckets: dict[float, float] = defaultdict(float)
    count = 0.0
    seen = False
    for s in samples:
        if s.name == f"{name}_bucket":
            buckets[float(s.labels["le"])] += s.value
            seen = True
        elif s.name == f"{name}_count":
            count += s.value
    if not seen:
        return None
    return Latency(count=count, p95=quantile(0.95, buckets))


def _lags(samples: Iterable[Sample]) -> list[TopicLag]:
    by_topic: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for s in samples:
        if s.name == "vigil_stage_consumer_lag":
            where = (s.labels.get("stage", ""), s.labels.get("topic", ""))
            by_topic[where][s.labels.get("partition", "")] = s.value
    lags = []
    for (stage, topic), partitions in sorted(by_topic.items()):
        worst = max(partitions, key=lambda p: partitions[p])
        lags.append(TopicLag(stage, topic, sum(partitions.values()), worst, partitions[worst]))
    return lags


def summarise_metrics(name: str, url: str, text: str) -> ServiceHealth:
    """The health page's numbers from one process's Prometheus exposition text; a text that
    cannot be parsed reads as the process being down, with the parser's reason."""
    try:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except (ValueError, KeyError, IndexError) as exc:
        return down(name, url, f"unreadable metrics: {exc}")
    events_in: dict[str, float] = defaultdict(float)
    events_out: dict[str, float] = defaultdict(float)
    notifications: dict[str, float] = defaultdict(float)
    dead = 0.0
    for s in samples:
        if s.name == "vigil_stage_records_in_total":
            events_in[s.labels.get("stage", "")] += s.value
        elif s.name == "vigil_stage_records_out_total":
            events_out[s.labels.get("stage", "")] += s.value
        elif s.name in _ACCEPTED:
            events_in[_ACCEPTED[s.name]] += s.value
        elif s.name in _DEAD_LETTERS:
            dead += s.value
        elif s.name == "vigil_alerting_notifications_total":
            notifications[s.labels.get("outcome", "")] += s.value
    return ServiceHealth(
        name=name,
        url=url,
        up=True,
        events_in=dict(sorted(events_in.items())),
        events_out=dict(sorted(events_out.items())),
        lag=_lags(samples),
        dead_letters=dead,
        notifications=dict(sorted(notifications.items())),
        http=_latency(samples, "vigil_http_request_seconds"),
        window_close=_latency(samples, "vigil_drift_window_close_seconds"),
    )
