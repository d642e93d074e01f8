"""Registry HTTP API: model versions in, the compacted ``vigil.models.v1`` topic out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response, status

from registry.access import access_router, bootstrap_admin
from registry.config import Settings
from registry.drift_index import DriftIndex, MemoryDriftIndex
from registry.environments import EnvironmentBook, EnvironmentFollower
from registry.handlers import (
    ModelRegistration,
    model_summary,
    new_version,
    reference_summary,
    registration_errors,
    revision,
    revision_conflict,
    update_time,
    with_drift_config,
    with_new_reference,
)
from registry.indexes import open_indexes
from registry.pairs_index import MemoryPairsIndex, PairsIndex, open_pairs
from registry.performance_index import MemoryPerformanceIndex, PerformanceIndex
from registry.reference import TooManyRows, profile_sample
from registry.segments import segment_errors
from vigil.adapters.audit_log import KafkaAuditLog
from vigil.adapters.auth import Guard, allowed, refuse_model
from vigil.adapters.bus import KafkaBus, started
from vigil.adapters.catalog import ModelCatalog, ModelCatalogFollower
from vigil.adapters.http import (
    InputRejected,
    JsonLimits,
    answered_or_503,
    create_api,
    error_responses,
    json_limits,
    provider,
    raw_body_openapi,
    request_body,
    stored_or_503,
    too_large,
)
from vigil.adapters.ports import AuditLog, Bus, Catalog, RevisionLocks
from vigil.adapters.revisions import (
    MODEL_VERSION_LOCKS,
    LocalRevisionLocks,
    LockBusy,
    RedisRevisionLocks,
    held,
)
from vigil.wire.access import Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.records import DriftConfig, ModelVersion, ReferenceProfile, utcnow
from vigil.wire.topics import MODELS
from vigil.wire.validation import FieldError, describe

__all__ = ["Registry", "create_app", "router"]

CODEC = Codec(ModelVersion)
# A change of a model version, given the version as it is now and the time of the change.
Change = Callable[[ModelVersion, datetime], ModelVersion]
IfMatch = Annotated[
    str | None, Header(description="Change the version only if its ETag is still this one.")
]


@dataclass(frozen=True)
class Registry:
    """The registry's adapters: the bus to the models topic, the catalog read from it, and the
    locks that serialise updates of one version across replicas (in-process ones by default)."""

    bus: Bus
    catalog: Catalog
    locks: RevisionLocks = field(default_factory=LocalRevisionLocks)
    audit_log: AuditLog | None = None
    # Performance reports, the latest revision of each window.
    performance: PerformanceIndex = field(default_factory=MemoryPerformanceIndex)
    # Requests scored by several versions (champion and shadow), for paired comparisons.
    pairs: PairsIndex = field(default_factory=MemoryPairsIndex)
    # Where each version is served, as the SDK reports it (vigil.environments.v1).
    environments: EnvironmentBook = field(default_factory=EnvironmentBook)
    drift: DriftIndex = field(default_factory=MemoryDriftIndex)  # drift reports over time

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Registry:
        performance, drift = await open_indexes(stack, settings)
        return cls(
            await KafkaBus.open(stack, settings.kafka, "vigil-registry"),
            # The registry serves and changes full records, retired versions' too.
            await started(
                stack, ModelCatalogFollower(settings.kafka, ModelCatalog(keep_retired=True))
            ),
            await RedisRevisionLocks.open(stack, settings.redis_url, MODEL_VERSION_LOCKS),
            await started(stack, KafkaAuditLog(settings.kafka)),
            performance,
            await open_pairs(stack, settings),
            environments=await started(stack, EnvironmentFollower(settings.kafka)),
            drift=drift,
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

    @asynccontextmanager
    async def locked(self, model_id: str, version: str, settings: Settings) -> AsyncIterator[None]:
        """Hold the version's lock, shared by every replica; 409 if another holds it too long."""
        ttl, wait = settings.registry_lock_seconds, settings.registry_lock_wait_seconds
        try:
            async with held(self.locks, f"{model_id}/{version}", ttl, wait):
                yield
        except LockBusy as exc:
            raise InputRejected(
                f"model {model_id!r} version {version!r} is being changed by another request"
                f" (waited {exc.waited:g} s); retry later",
                [],
                409,
                {"Retry-After": "1"},
            ) from exc

    async def update(
        self, model_id: str, version: str, if_match: str | None, change: Change, settings: Settings
    ) -> ModelVersion:
        """Apply ``change`` to the version as the catalog holds it now, and publish the result.

        One update of a version at a time across replicas: under its lock the catalog catches
        up with every replica's writes before ``If-Match`` is checked (412 if stale). Redis
        down is 503.
        """
        async with self.locked(model_id, version, settings):
            await self.catch_up()
            current = await self.version(model_id, version)
            check_revision(current, if_match)
            updated = change(current, update_time(current, utcnow()))
            await self.publish(updated, settings.registry_max_record_bytes)
        return updated


def check_revision(current: ModelVersion, if_match: str | None) -> None:
    """412 naming the current ETag if ``If-Match`` names another revision."""
    conflict = revision_conflict(current, if_match)
    if conflict is not None:
        raise InputRejected(
            f"model {current.model_id!r} version {current.version!r} changed since it was read",
            [conflict],
            412,
            {"ETag": revision(current)},
        )


RegistryDep = Annotated[Registry, Depends(provider(Registry))]
Reader = Annotated[Caller, Depends(allowed(Permission.MODELS_READ))]
Writer = Annotated[Caller, Depends(allowed(Permission.MODELS_WRITE))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@dataclass(frozen=True)
class VersionUpdate:
    """A change of one version through the API: If-Match checked, the new ETag answered."""

    model_id: str
    version: str
    registry: Registry
    settings: Settings
    response: Response
    if_match: str | None

    async def apply(self, change: Change) -> ModelVersion:
        updated = await self.registry.update(
            self.model_id, self.version, self.if_match, change, self.settings
        )
        self.response.headers["ETag"] = revision(updated)
        return updated


async def version_update(
    model_id: str,
    version: str,
    _: Writer,
    registry: RegistryDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> VersionUpdate:
    return VersionUpdate(model_id, version, registry, settings, response, if_match)


Update = Annotated[VersionUpdate, Depends(version_update)]
# A reference sample: rows as JSON objects (feature name to value), CSV with a header row, Parquet.
_SAMPLES = {
    "application/json": {"type": "array", "items": {"type": "object"}},
    "text/csv": {"type": "string"},
    "application/vnd.apache.parquet": {"type": "string", "format": "binary"},
}


@router.post(
    "/v1/models",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(json_limits)],
    responses=error_responses(400, 409, 503),
)
async def register(
    registration: ModelRegistration,
    caller: Writer,
    registry: RegistryDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> ModelVersion:
    """Register a model version and publish it to every service."""
    model_id, number = registration.model_id, registration.version
    request.state.model_id = model_id
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    features = {f.name: f.type for f in registration.features}
    errors = segment_errors(
        registration.segments,
        registration.segment_cross,
        registration.sensitive_attributes,
        features,
    )
    if errors:
        raise InputRejected("the segments cannot be this model's", errors)
    # Under the version's lock: two replicas registering it at once cannot both succeed.
    async with registry.locked(model_id, number, settings):
        await registry.catch_up()
        if registry.catalog.get(model_id, number):
            raise InputRejected(
                f"model {model_id!r} version {number!r} is already registered",
                [FieldError("version", "a version not yet registered", describe(number))],
                409,
            )
        now = utcnow()
        errors = registration_errors(registration, registry.catalog.versions(model_id), now)
        if errors:
            raise InputRejected("the version's lineage or risk assessment is not valid", errors)
        version = new_version(registration, now, caller.principal)
        await registry.publish(version, settings.registry_max_record_bytes)
    response.headers["ETag"] = revision(version)
    return version


@router.get("/v1/models")
async def list_models(caller: Reader, registry: RegistryDep) -> list[dict[str, Any]]:
    """Every model in the key's scope with its owner, risk tier and versions."""
    catalog = registry.catalog
    return [
        model_summary(model_id, catalog.versions(model_id), utcnow())
        for model_id in catalog.model_ids()
        if caller.covers(model_id)
    ]


@router.get("/v1/models/{model_id}", responses=error_responses(404))
async def get_model(model_id: str, _: Reader, registry: RegistryDep) -> dict[str, Any]:
    """A model and all its versions, with their feature specs and reference profiles."""
    versions = registry.catalog.versions(model_id)
    if not versions:
        raise InputRejected(f"model {model_id!r} is not registered", [], 404)
    return {"model_id": model_id, "versions": versions}


@router.get("/v1/models/{model_id}/versions/{version}", responses=error_responses(404, 503))
async def get_version(
    model_id: str, version: str, _: Reader, registry: RegistryDep, response: Response
) -> ModelVersion:
    """One model version; its ``ETag`` is the revision to send as ``If-Match`` when changing it."""
    found = await registry.version(model_id, version)
    response.headers["ETag"] = revision(found)
    return found


@router.post(
    "/v1/models/{model_id}/versions/{version}/reference",
    responses=error_responses(400, 404, 409, 412, 503),
    openapi_extra=raw_body_openapi(None, others=_SAMPLES),
)
async def upload_reference(
    model_id: str,
    version: str,
    _: Writer,
    registry: RegistryDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Replace the version's reference with the profile of an uploaded sample.

    The body is a JSON array of rows, CSV with a header row (``Content-Type: text/csv``) or
    a Parquet file (``application/vnd.apache.parquet``), gzip-encoded or not.
    """
    current = await registry.version(model_id, version)
    check_revision(current, if_match)  # before reading a large body for nothing
    body = await request_body(request, settings.registry_max_reference_bytes)
    content_type = request.headers.get("content-type", "")
    # Parsing and profiling take seconds for large samples: off the event loop, and before
    # the version is locked (they depend only on its features, which never change).
    rows = settings.registry_max_reference_rows
    try:
        reference = await asyncio.to_thread(profile_sample, current, content_type, body, rows)
    except TooManyRows as exc:
        raise too_large("reference sample", exc.limit, exc.received, "rows") from None
    updated = await registry.update(
        model_id, version, if_match, partial(_numbered, reference), settings
    )
    response.headers["ETag"] = revision(updated)
    return reference_summary(updated)


def _numbered(reference: ReferenceProfile, current: ModelVersion, now: datetime) -> ModelVersion:
    return with_new_reference(current, reference, now)


@router.put(
    "/v1/models/{model_id}/versions/{version}/drift",
    dependencies=[Depends(json_limits)],
    responses=error_responses(400, 404, 409, 412, 503),
)
async def set_drift_config(config_in: DriftConfig, update: Update) -> ModelVersion:
    """Set the version's drift settings: window size or count, lateness, thresholds."""

    def change(current: ModelVersion, now: datetime) -> ModelVersion:
        updated, errors = with_drift_config(current, config_in, now)
        if errors:
            raise InputRejected(f"{len(errors)} invalid drift setting(s)", errors)
        return updated

    return await update.apply(change)


def create_app(
    settings: Settings | None = None, adapters: Registry | None = None, guard: Guard | None = None
) -> FastAPI:
    """The registry API; on ``adapters`` (and ``guard``) when given, else on Kafka and Redis
    opened at start-up. It makes sure an admin key exists once started."""
    # Here: their routes use this module's dependencies.
    from registry.champion import champion_router
    from registry.drift_views import drift_router
    from registry.governance import governance_router
    from registry.performance import performance_router
    from registry.rules import rules_router

    config = settings or Settings()
    opener = partial(Registry.open, settings=config)
    limits = JsonLimits(config.registry_max_json_depth, config.registry_max_json_values)
    routers = [router, access_router, rules_router, performance_router, champion_router]
    return create_api(
        "Vigil registry",
        "registry",
        opener,
        adapters,
        [*routers, governance_router, drift_router],
        config,
        max_body_bytes=partial(_max_body_bytes, config),
        limits=limits,
        guard=guard,
        on_start=partial(bootstrap_admin, settings=config),
    )


def _max_body_bytes(settings: Settings, path: str) -> int:
    """Reference samples may be large; every other body is small."""
    if path.endswith("/reference"):
        return settings.registry_max_reference_bytes
    return settings.registry_max_body_bytes
