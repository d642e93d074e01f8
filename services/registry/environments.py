"""Where each model version is served: the SDK's environment reports, followed from the
compacted ``vigil.environments.v1`` and kept in memory (the newest report of each host)."""

from __future__ import annotations

from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.follower import RecordFollower
from vigil.adapters.kafka_security import Kafka
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport
from vigil.wire.topics import ENVIRONMENTS

__all__ = ["EnvironmentBook", "EnvironmentFollower"]

IGNORED = PrometheusCounter(
    "vigil_environment_records_ignored_total",
    "Records of the environments topic the registry ignored, by reason.",
    ["reason"],
)


class EnvironmentBook:
    """The newest environment report of every (model, version, host)."""

    def __init__(self) -> None:
        self._reports: dict[str, EnvironmentReport] = {}

    def put(self, report: EnvironmentReport) -> None:
        """Keep ``report`` unless the book holds a newer one of the same host."""
        held = self._reports.get(report.key)
        if held is None or held.reported_at <= report.reported_at:
            self._reports[report.key] = report

    def remove(self, key: str) -> None:
        self._reports.pop(key, None)

    def of(self, model_id: str, version: str) -> list[EnvironmentReport]:
        """The hosts serving a version, by host name."""
        found = [
            r
            for r in self._reports.values()
            if r.model_id == model_id and r.model_version == version
        ]
        return sorted(found, key=lambda r: r.host)

    async def catch_up(self) -> None:
        """Nothing to wait for: this book holds what was put in it."""


class EnvironmentFollower(RecordFollower[EnvironmentReport], EnvironmentBook):
    """Keeps an EnvironmentBook in step with ``vigil.environments.v1`` from its beginning."""

    def __init__(self, kafka: Kafka, topic: str = ENVIRONMENTS.name) -> None:
        EnvironmentBook.__init__(self)
        codec = Codec(EnvironmentReport)
        RecordFollower.__init__(self, kafka, topic, "environments", IGNORED, codec)

    def record_key(self, record: EnvironmentReport) -> str:
        return record.key

    def _put(self, record: EnvironmentReport) -> None:
        self.put(record)

    def _remove(self, key: str) -> None:
        self.remove(key)
