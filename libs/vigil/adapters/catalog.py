"""Every service's view of the model registry, materialised from the compacted models topic.

A record the follower cannot trust is ignored and counted by reason (``ignored`` and the
Prometheus counter ``vigil_catalog_records_ignored_total{reason}``): ``key_not_utf8`` (e.g. a
tombstone with a binary key), ``undecodable`` (not a ``ModelVersion``), ``key_mismatch`` (the
Kafka key is not the record's ``model_id/version``: such a record would survive compaction and
shadow the real one) and ``unprocessable`` (anything else). The follower always goes on.

A retired version is kept only as a marker (``retirement_marker``): its record without the
features, reference profile and reference history that make up nearly all of its size, so
that every service can still tell "retired" from "never registered" while the memory goes.
The registry, which serves and changes full records, keeps them (``keep_retired``). A
tombstone removes a version altogether.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.follower import RecordFollower
from vigil.adapters.kafka_security import Kafka
from vigil.adapters.ports import Catalog
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import MODELS

__all__ = ["ModelCatalog", "ModelCatalogFollower", "retirement_marker"]

log = logging.getLogger(__name__)

IGNORED = PrometheusCounter(
    "vigil_catalog_records_ignored_total",
    "Records of the models topic the model catalog ignored, by reason.",
    ["reason"],
)


def retirement_marker(record: ModelVersion) -> ModelVersion:
    """What a catalog keeps of a retired version: its record without features, reference
    profile or reference history (status, risk, owner and drift settings stay)."""
    return record.model_copy(update={"features": [], "reference": None, "reference_history": []})


class ModelCatalog(Catalog):
    """The latest record of every model version, by (model_id, version), in memory.

    Retired versions are kept as markers (``retirement_marker``) unless ``keep_retired``.
    """

    def __init__(self, keep_retired: bool = False) -> None:
        self._versions: dict[tuple[str, str], ModelVersion] = {}
        self.keep_retired = keep_retired

    def apply(self, record: ModelVersion) -> None:
        if record.status == "retired" and not self.keep_retired:
            record = retirement_marker(record)
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


class ModelCatalogFollower(RecordFollower[ModelVersion], Catalog):
    """Keeps a ModelCatalog in step with ``vigil.models.v1``, reading it from the beginning."""

    def __init__(
        self, kafka: Kafka, catalog: ModelCatalog | None = None, topic: str = MODELS.name
    ) -> None:
        # The drift detector publishes references it builds in transactions.
        codec = Codec(ModelVersion)
        super().__init__(kafka, topic, "model-catalog", IGNORED, codec, read_committed=True)
        self.catalog = ModelCatalog() if catalog is None else catalog

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        return self.catalog.get(model_id, version)

    def versions(self, model_id: str) -> list[ModelVersion]:
        return self.catalog.versions(model_id)

    def model_ids(self) -> list[str]:
        return self.catalog.model_ids()

    def apply(self, record: ModelVersion) -> None:
        self.catalog.apply(record)

    def record_key(self, record: ModelVersion) -> str:
        return record.key

    def _put(self, record: ModelVersion) -> None:
        self.catalog.apply(record)

    def _remove(self, key: str) -> None:
        self.catalog.remove(key)
