"""Registry HTTP API: model versions in, the compacted ``vigil.models.v1`` topic out."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, status

from registry.config import Settings
from registry.handlers import (
    ModelRegistration,
    model_summary,
    new_version,
    reference_summary,
    with_drift_config,
    with_reference,
)
from registry.reference import TooManyRows, parse_reference
from vigil.adapters.bus import KafkaBus, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import (
    InputRejected,
    JsonLimits,
    answered_or_503,
    create_api,
    json_limits,
    provider,
    request_body,
    stored_or_503,
    too_large,
)
from vigil.adapters.ports import Bus, Catalog
from vigil.wire.codec import Codec
from vigil.wire.records import DriftConfig, ModelVersion, utcnow
from vigil.wire.topics import MODELS
from vigil.wire.validation import FieldError, describe

__all__ = ["Registry", "create_app", "router"]

CODEC = Codec(ModelVersion)


@dataclass(frozen=True)
class Registry:
    """The registry's adapters: the bus to the models topic and the catalog read from it."""

    bus: Bus
    catalog: Catalog

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Registry:
        return cls(
            await KafkaBus.open(stack, settings.kafka_bootstrap, "vigil-registry"),
            await started(stack, ModelCatalogFollower(settings.kafka_bootstrap)),
        )

    async def publish(self, version: ModelVersion, max_bytes: int) -> None:
        """Store ``version`` on the models topic, then in the local view (read-your-writes).

        A record over ``max_bytes`` (Kafka would refuse it) is 413; Kafka down is 503.
        """
        value = CODEC.encode(version)
        if len(value) > max_bytes:
            raise too_large("model version record", max_bytes, f"{len(value)} bytes")
        await stored_or_503(self.bus.send(MODELS.name, [(version.key.encode(), value)]))
        self.catalog.apply(version)

    async def catch_up(self) -> None:
        """Wait until the catalog holds every version published so far; 503 if Kafka is down."""
        await answered_or_503(self.catalog.catch_up(), "Kafka")

    async def version(self, model_id: str, version: str) -> ModelVersion:
        """A registered version; 404 if there is none."""
        found = await answered_or_503(self.catalog.lookup(model_id, version), "Kafka")
        if found is None:
            raise InputRejected(
                f"model {model_id!r} version {version!r} is not registered", [], 404
            )
        return found


RegistryDep = Annotated[Registry, Depends(provider(Registry))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@router.post("/v1/models", status_code=status.HTTP_201_CREATED, dependencies=[Depends(json_limits)])
async def register(
    registration: ModelRegistration, registry: RegistryDep, settings: SettingsDep
) -> ModelVersion:
    """Register a model version and publish it to every service."""
    await registry.catch_up()
    if registry.catalog.get(registration.model_id, registration.version):
        raise InputRejected(
            f"model {registration.model_id!r} version {registration.version!r}"
            " is already registered",
            [FieldError("version", "a version not yet registered", describe(registration.version))],
            409,
        )
    version = new_version(registration, utcnow())
    await registry.publish(version, settings.registry_max_record_bytes)
    return version


@router.get("/v1/models")
async def list_models(registry: RegistryDep) -> list[dict[str, Any]]:
    """Every model with its owner, risk tier and versions."""
    catalog = registry.catalog
    return [model_summary(model_id, catalog.versions(model_id)) for model_id in catalog.model_ids()]


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, registry: RegistryDep) -> dict[str, Any]:
    """A model and all its versions, with their feature specs and reference profiles."""
    versions = registry.catalog.versions(model_id)
    if not versions:
        raise InputRejected(f"model {model_id!r} is not registered", [], 404)
    return {"model_id": model_id, "versions": versions}


@router.get("/v1/models/{model_id}/versions/{version}")
async def get_version(model_id: str, version: str, registry: RegistryDep) -> ModelVersion:
    """One model version."""
    return await registry.version(model_id, version)


@router.post("/v1/models/{model_id}/versions/{version}/reference")
async def upload_reference(
    model_id: str, version: str, registry: RegistryDep, settings: SettingsDep, request: Request
) -> dict[str, Any]:
    """Replace the version's reference with the profile of an uploaded sample.

    The body is a JSON array of rows, CSV with a header row (``Content-Type: text/csv``) or
    a Parquet file (``application/vnd.apache.parquet``), gzip-encoded or not.
    """
    current = await registry.version(model_id, version)
    body = await request_body(request, settings.registry_max_reference_bytes)
    content_type = request.headers.get("content-type", "")
    # Parsing and profiling take seconds for large samples: off the event loop.
    rows = settings.registry_max_reference_rows
    try:
        current = await asyncio.to_thread(_with_sample, current, content_type, body, rows)
    except TooManyRows as exc:
        raise too_large("reference sample", exc.limit, exc.received, "rows") from None
    await registry.publish(current, settings.registry_max_record_bytes)
    return reference_summary(current)


def _with_sample(
    current: ModelVersion, content_type: str, body: bytes, max_rows: int
) -> ModelVersion:
    """The version with the reference profiled from an uploaded sample; 422 if it is invalid."""
    sample, errors = parse_reference(current.features, content_type, body, max_rows)
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
    return current


@router.put("/v1/models/{model_id}/versions/{version}/drift", dependencies=[Depends(json_limits)])
async def set_drift_config(
    model_id: str,
    version: str,
    config_in: DriftConfig,
    registry: RegistryDep,
    settings: SettingsDep,
) -> ModelVersion:
    """Set the version's drift settings: window size or count, lateness, thresholds."""
    current = await registry.version(model_id, version)
    updated, errors = with_drift_config(current, config_in, utcnow())
    if errors:
        raise InputRejected(f"{len(errors)} invalid drift setting(s)", errors)
    await registry.publish(updated, settings.registry_max_record_bytes)
    return updated


def create_app(settings: Settings | None = None, adapters: Registry | None = None) -> FastAPI:
    """The registry API; on ``adapters`` when given, else on Kafka opened at start-up."""
    config = settings or Settings()
    opener = partial(Registry.open, settings=config)
    limits = JsonLimits(config.registry_max_json_depth, config.registry_max_json_values)
    return create_api(
        "Vigil registry",
        "registry",
        opener,
        adapters,
        [router],
        config,
        max_body_bytes=partial(_max_body_bytes, config),
        limits=limits,
    )


def _max_body_bytes(settings: Settings, path: str) -> int:
    """Reference samples may be large; every other body is small."""
    if path.endswith("/reference"):
        return settings.registry_max_reference_bytes
    return settings.registry_max_body_bytes
