"""Every service's view of the model registry, materialised from the compacted models topic.

A record the follower cannot trust is ignored and counted by reason (``ignored`` and the
Prometheus counter ``vigil_catalog_records_ignored_total{reason}``): ``key_not_utf8`` (e.g. a
tombstone with a binary key), ``undecodable`` (not a ``ModelVersion``), ``key_mismatch`` (the
Kafka key is not the record's ``model_id/version``: such a record would survive compaction and
shadow the real one) and ``unprocessable`` (anything else). The follower always goes on.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.follower import TopicFollower
from vigil.adapters.ports import Catalog
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import ModelVersion
from vigil.wire.topics import MODELS

__all__ = ["ModelCatalog", "ModelCatalogFollower"]

log = logging.getLogger(__name__)

IGNORED = PrometheusCounter(
    "vigil_catalog_records_ignored_total",
    "Records of the models topic the model catalog ignored, by reason.",
    ["reason"],
)


class ModelCatalog(Catalog):
    """The latest record of every model version, by (model_id, version), in memory."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], ModelVersion] = {}

    def apply(self, record: ModelVersion) -> None:
        self._versions[(record.model_id, record.version)] = record

    def remove(self, key: str) -> None:
        model_id, _, version = key.rpartition("/")
        self._versions.pop((model_id, version), None)

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        return self._versions.get((model_id, version))

    def versions(self, model_id: str) -> list[ModelVersion]:
        return sorted(
            (v for (m, _), v in self._versions.items() if m == model_id),
            key=lambda v: v.created_at,
        )

    def model_ids(self) -> list[str]:
        return sorted({m for m, _ in self._versions})

    async def catch_up(self) -> None:
        """Nothing to wait for: this catalog holds what was applied to it."""

    def __len__(self) -> int:
        return len(self._versions)


class ModelCatalogFollower(TopicFollower, Catalog):
    """Keeps a ModelCatalog in step with ``vigil.models.v1``, reading it from the beginning."""

    def __init__(
        self, bootstrap: str, catalog: ModelCatalog | None = None, topic: str = MODELS.name
    ) -> None:
        # The drift detector publishes references it builds in transactions.
        super().__init__(bootstrap, topic, "model-catalog", IGNORED, read_committed=True)
        self.catalog = ModelCatalog() if catalog is None else catalog
        self._codec = Codec(ModelVersion)

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        return self.catalog.get(model_id, version)

    def versions(self, model_id: str) -> list[ModelVersion]:
        return self.catalog.versions(model_id)

    def model_ids(self) -> list[str]:
        return self.catalog.model_ids()

    def apply(self, record: ModelVersion) -> None:
        self.catalog.apply(record)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            reason = self._take(key, value)
        except Exception:  # one record must never stop the catalog of every service
            log.exception("ignoring a record of %s it could not apply", self._tp.topic)
            reason = "unprocessable"
        if reason is not None:
            self._ignore(reason)

    def _take(self, key: bytes | None, value: bytes | None) -> str | None:
        """Apply one record; the reason it was ignored, or None."""
        try:
            text = None if key is None else key.decode()
        except UnicodeDecodeError:
            log.warning("ignoring a record of %s whose key is not UTF-8", self._tp.topic)
            return "key_not_utf8"
        if value is None:  # a tombstone: the version was deleted
            if text:
                self.catalog.remove(text)
            return None
        try:
            record = self._codec.decode(value)
        except DecodeError as exc:
            log.error("skipping an unreadable record on %s: %s", self._tp.topic, exc.reason)
            return "undecodable"
        if text != record.key:
            log.warning("ignoring %s keyed %r on %s", record.key, text, self._tp.topic)
            return "key_mismatch"
        self.catalog.apply(record)
        return None
