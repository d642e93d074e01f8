"""Registry HTTP API: model versions in, the compacted ``vigil.models.v1`` topic out."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, Request, status

from registry.config import Settings
from registry.handlers import ModelRegistration, new_version, with_drift_config, with_reference
from registry.reference import parse_reference
from vigil.adapters.bus import new_producer, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected, adapters, create_api, request_body
from vigil.wire.codec import Codec
from vigil.wire.records import DriftConfig, ModelVersion, utcnow
from vigil.wire.topics import MODELS
from vigil.wire.validation import FieldError, describe

CODEC = Codec(ModelVersion)


class Registry:
    """The registry's adapters: a producer to the models topic and a follower of it."""

    def __init__(self, producer: AIOKafkaProducer, follower: ModelCatalogFollower) -> None:
        self.producer = producer
        self.follower = follower

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Registry:
        return cls(
            await started(stack, new_producer(settings.kafka_bootstrap, "vigil-registry")),
            await started(stack, ModelCatalogFollower(settings.kafka_bootstrap)),
        )

    async def publish(self, version: ModelVersion) -> None:
        """Store ``version`` on the models topic, then in the local view (read-your-writes)."""
        await self.producer.send_and_wait(
            MODELS.name, key=version.key.encode(), value=CODEC.encode(version)
        )
        self.follower.catalog.apply(version)

    async def version(self, model_id: str, version: str) -> ModelVersion:
        found = self.follower.catalog.get(model_id, version)
        if found is None:
            await self.follower.catch_up()
            found = self.follower.catalog.get(model_id, version)
        if found is None:
            raise InputRejected(
                f"model {model_id!r} version {version!r} is not registered", [], 404
            )
        return found


RegistryDep = Annotated[Registry, Depends(adapters)]


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()
    app = create_api("Vigil registry", "registry", lambda stack: Registry.open(stack, config))

    @app.post("/v1/models", status_code=status.HTTP_201_CREATED)
    async def register(registration: ModelRegistration, registry: RegistryDep) -> ModelVersion:
        """Register a model version and publish it to every service."""
        await registry.follower.catch_up()
        if registry.follower.catalog.get(registration.model_id, registration.version):
            raise InputRejected(
                f"model {registration.model_id!r} version {registration.version!r}"
                " is already registered",
                [
                    FieldError(
                        "version", "a version not yet registered", describe(registration.version)
                    )
                ],
                409,
            )
        version = new_version(registration, utcnow())
        await registry.publish(version)
        return version

    @app.get("/v1/models")
    async def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
        """Every model with its owner, risk tier and versions."""
        catalog = registry.follower.catalog
        models = []
        for model_id in catalog.model_ids():
            versions = catalog.versions(model_id)
            latest = versions[-1]
            models.append(
                {
                    "model_id": model_id,
                    "owner": latest.owner,
                    "purpose": latest.purpose,
                    "task": latest.task,
                    "severity": latest.risk.severity,
                    "versions": [
                        {
                            "version": v.version,
                            "status": v.status,
                            "reference": v.reference.source if v.reference else None,
                            "created_at": v.created_at,
                        }
                        for v in versions
                    ],
                }
            )
        return models

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str, registry: RegistryDep) -> dict[str, Any]:
        """A model and all its versions, with their feature specs and reference profiles."""
        versions = registry.follower.catalog.versions(model_id)
        if not versions:
            raise InputRejected(f"model {model_id!r} is not registered", [], 404)
        return {"model_id": model_id, "versions": versions}

    @app.get("/v1/models/{model_id}/versions/{version}")
    async def get_version(model_id: str, version: str, registry: RegistryDep) -> ModelVersion:
        """One model version."""
        return await registry.version(model_id, version)

    @app.post("/v1/models/{model_id}/versions/{version}/reference")
    async def upload_reference(
        model_id: str, version: str, registry: RegistryDep, request: Request
    ) -> dict[str, Any]:
        """Replace the version's reference with the profile of an uploaded sample.

        The body is a JSON array of rows, CSV with a header row (``Content-Type: text/csv``) or
        a Parquet file (``application/vnd.apache.parquet``), gzip-encoded or not.
        """
        current = await registry.version(model_id, version)
        body = await request_body(request, config.registry_max_reference_bytes)
        sample, errors = parse_reference(
            current.features, request.headers.get("content-type", ""), body
        )
        if not errors and not sample.rows:
            raise InputRejected(
                "the reference sample has no rows",
                [FieldError("<body>", "at least one row", "no rows")],
            )
        if not errors:
            current, errors = with_reference(
                current, sample.rows, utcnow(), sample.predictions, sample.scores
            )
        if errors:
            raise InputRejected(f"{len(errors)} invalid value(s) in the reference rows", errors)
        await registry.publish(current)
        assert current.reference is not None
        return {
            "model_id": model_id,
            "version": version,
            "reference_version": current.reference.version,
            "row_count": current.reference.row_count,
            "features": [f.name for f in current.reference.features],
            "history": current.reference_history,
        }

    @app.put("/v1/models/{model_id}/versions/{version}/drift")
    async def set_drift_config(
        model_id: str, version: str, config_in: DriftConfig, registry: RegistryDep
    ) -> ModelVersion:
        """Set the version's drift settings: window size or count, lateness, thresholds."""
        current = await registry.version(model_id, version)
        updated, errors = with_drift_config(current, config_in, utcnow())
        if errors:
            raise InputRejected(f"{len(errors)} invalid drift setting(s)", errors)
        await registry.publish(updated)
        return updated

    return app
