"""The topic catalogue: every Kafka topic Vigil uses, with its record, key and layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.wire.access import ApiKey, AuditEvent
from vigil.wire.alert_events import AlertEvent
from vigil.wire.drift_state import DriftPartial, DriftState
from vigil.wire.environments import EnvironmentReport
from vigil.wire.joins import JoinEntry
from vigil.wire.performance import PerformancePartial
from vigil.wire.records import (
    FeedbackEvent,
    ModelVersion,
    Outcome,
    PredictionEvent,
    Record,
    WindowReport,
)

__all__ = [
    "ALERTS",
    "AUDIT",
    "CATALOGUE",
    "DEADLETTER",
    "ENVIRONMENTS",
    "FEEDBACK",
    "JOINS",
    "KEYS",
    "METRICS",
    "MODELS",
    "OUTCOMES",
    "PERFORMANCE_PARTIALS",
    "PERFORMANCE_WINDOWS",
    "PREDICTIONS",
    "SCHEMAS",
    "Topic",
    "drift_topics",
]

# Predictions and feedback share a partition count so the feedback join is co-partitioned.
EVENT_PARTITIONS = 6


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    record: type[Record] | None
    config: dict[str, str] = field(default_factory=dict)


PREDICTIONS = Topic("vigil.predictions.v1", EVENT_PARTITIONS, "prediction_id", PredictionEvent)
FEEDBACK = Topic("vigil.feedback.v1", EVENT_PARTITIONS, "prediction_id", FeedbackEvent)
OUTCOMES = Topic("vigil.outcomes.v1", EVENT_PARTITIONS, "prediction_id", Outcome)
# The feedback joiner's state, partitioned as the events it joins: compacted, a tombstone
# once an id is past the label horizon. Read back into the joiner's local store on assignment.
JOINS = Topic(
    "vigil.joiner.changelog.v1",
    EVENT_PARTITIONS,
    "prediction_id",
    JoinEntry,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)
# The joiners' performance deltas, by model version, for the reporter that owns the version;
# and the reporter's merged windows (compacted, partitioned as the partials).
PERFORMANCE_PARTIALS = Topic(
    "vigil.performance.partials.v1", 3, "model_id/model_version", PerformancePartial
)
PERFORMANCE_WINDOWS = Topic(
    "vigil.performance.changelog.v1",
    3,
    "model_id/model_version/window start micros",
    PerformancePartial,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)
# Keyed by model version so its reports stay in order for alert state; report_id names each.
METRICS = Topic("vigil.metrics.v1", 3, "model_id/model_version", WindowReport)
# The record of alerting (state changes, notifications, silences, acknowledgements): Redis
# only caches it and is rebuilt from it, so it is kept forever. ensure_topics does not
# reconfigure a topic that exists: an older one needs `kafka-configs --alter` once.
ALERTS = Topic(
    "vigil.alerts.v1",
    3,
    "fingerprint (or silence/<id>)",
    AlertEvent,
    {"retention.ms": "-1", "retention.bytes": "-1"},
)
# One partition: every reader wants the whole, ordered history of the registry.
MODELS = Topic(
    "vigil.models.v1",
    1,
    "model_id/version",
    ModelVersion,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)
# Original bytes as the value; the reason and origin travel in headers.
DEADLETTER = Topic("vigil.deadletter.v1", 3, "original key", None)
# Writer schemas by fingerprint (hex), value the schema's JSON: a reader learns a newer
# producer's schema here. One partition, compacted: every reader wants all of it.
SCHEMAS = Topic("vigil.schemas.v1", 1, "fingerprint (hex)", None, {"cleanup.policy": "compact"})
# API keys by id (without secrets), written by the registry only. One partition, compacted:
# every service follows all of it to check keys locally.
KEYS = Topic(
    "vigil.keys.v1",
    1,
    "key id",
    ApiKey,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)
# The environment each host serves a model version in, as the SDK reports it when it starts
# logging for that version. One partition, compacted: the registry follows all of it.
ENVIRONMENTS = Topic(
    "vigil.environments.v1",
    1,
    "model_id/model_version/host",
    EnvironmentReport,
    {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
)
# Every state-changing API call, allowed or refused; kept forever. One partition: one order.
AUDIT = Topic(
    "vigil.audit.v1",
    1,
    "model_id (empty if none)",
    AuditEvent,
    {"retention.ms": "-1", "retention.bytes": "-1"},
)
CATALOGUE: tuple[Topic, ...] = (
    PREDICTIONS,
    FEEDBACK,
    OUTCOMES,
    JOINS,
    PERFORMANCE_PARTIALS,
    PERFORMANCE_WINDOWS,
    METRICS,
    ALERTS,
    MODELS,
    DEADLETTER,
    SCHEMAS,
    KEYS,
    AUDIT,
    ENVIRONMENTS,
)


_LARGE = {"max.message.bytes": str(64 * 1024 * 1024)}


def drift_topics(app_id: str) -> tuple[Topic, Topic]:
    """The drift detector's internal topics, one pair per detector application.

    ``<app_id>.partials.v1``: partial window profiles, from the workers that own prediction
    partitions to the worker that owns the model version, written in transactions with the
    offsets. ``<app_id>.state.v1`` (compacted, same partitioning): the merged open windows of
    each model version, so that a restarted worker resumes where it was.
    """
    partials = Topic(
        f"{app_id}.partials.v1", EVENT_PARTITIONS, "model_id/model_version", DriftPartial, _LARGE
    )
    state = Topic(
        f"{app_id}.state.v1",
        EVENT_PARTITIONS,
        "model_id/model_version",
        DriftState,
        {**_LARGE, "cleanup.policy": "compact"},
    )
    return partials, state
