"""The drift detector worker: its two stream stages, the model catalog and its HTTP endpoints."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from drift_detector.config import Settings
from drift_detector.handlers import Merging, Profiling, WindowPolicy
from vigil.adapters.auth import allowed
from vigil.adapters.bus import ensure_topics, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import create_api
from vigil.adapters.ports import Catalog, RevisionLocks
from vigil.adapters.revisions import MODEL_VERSION_LOCKS, RedisRevisionLocks
from vigil.adapters.schema_registry import SchemaRegistryClient
from vigil.adapters.schema_topic import join_schema_topic, leave_schema_topic
from vigil.adapters.stage import Stage, StageConfig
from vigil.adapters.tasks import stop_tasks
from vigil.wire.access import Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import drift_topics

log = logging.getLogger(__name__)

__all__ = ["DriftWorker", "create_app", "policy"]


def policy(settings: Settings) -> WindowPolicy:
    return WindowPolicy(
        size_seconds=settings.drift_window_seconds,
        lateness_seconds=settings.drift_lateness_seconds,
        idle_close_seconds=settings.drift_idle_close_seconds,
        reference_size=settings.drift_reference_size,
    )


def _stages(settings: Settings, versions: Catalog, locks: RevisionLocks) -> tuple[Stage, Stage]:
    app, worker = settings.drift_app_id, settings.worker_id
    partials, state = drift_topics(app)
    url = settings.schema_registry_url
    codec = Codec(PredictionEvent, SchemaRegistryClient(url) if url else None)
    rules = policy(settings)
    profiling = Profiling(
        versions,
        rules,
        codec,
        partials.name,
        settings.drift_flush_events,
        settings.drift_flush_seconds,
        max_future_seconds=settings.drift_max_future_seconds,
        predictions_topic=settings.drift_predictions_topic,
    )
    profiler = StageConfig(
        name="profiler",
        kafka=settings.kafka,
        group_id=app,
        topics=(settings.drift_predictions_topic,),
        transactional_id=f"{app}-{worker}-profiler",
        auto_offset_reset=settings.drift_auto_offset_reset,
        fetch_records=settings.drift_fetch_records,
        max_flush_failures=settings.drift_max_flush_failures,
    )
    merger = StageConfig(
        name="merger",
        kafka=settings.kafka,
        group_id=f"{app}-merge",
        topics=(partials.name,),
        transactional_id=f"{app}-{worker}-merger",
        changelog=state.name,
        fetch_records=500,
        fetch_timeout_ms=500,
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=128 * 1024 * 1024,
        max_flush_failures=settings.drift_max_flush_failures,
    )
    merging = Merging(
        versions,
        locks,
        rules,
        state.name,
        max_future_seconds=settings.drift_max_future_seconds,
        lock_seconds=settings.registry_lock_seconds,
        traffic_seconds=settings.drift_traffic_seconds,
    )
    return Stage(profiler, profiling), Stage(merger, merging)


@dataclass
class DriftWorker:
    follower: ModelCatalogFollower
    profiler: Stage
    merger: Stage

    @property
    def profiling(self) -> Profiling:
        assert isinstance(self.profiler.logic, Profiling)
        return self.profiler.logic

    @property
    def merging(self) -> Merging:
        assert isinstance(self.merger.logic, Merging)
        return self.merger.logic

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> DriftWorker:
        await ensure_topics(settings.kafka, drift_topics(settings.drift_app_id))
        # Before the catalog: a newer registry's records are readable from the first one.
        await join_schema_topic(settings.kafka)
        stack.push_async_callback(leave_schema_topic, settings.kafka)
        follower = await started(stack, ModelCatalogFollower(settings.kafka))
        # The registry's locks: a production reference is published as a registry change is.
        locks = await RedisRevisionLocks.open(stack, settings.redis_url, MODEL_VERSION_LOCKS)
        profiler, merger = _stages(settings, follower, locks)
        worker = cls(follower, await started(stack, profiler), await started(stack, merger))
        tasks = [
            asyncio.create_task(worker.profiler.run(), name="drift-profiler"),
            asyncio.create_task(worker.merger.run(), name="drift-merger"),
        ]

        async def cancel() -> None:
            await stop_tasks(tasks)

        # Stopped before the stages stop (the stack unwinds last-in first-out).
        stack.push_async_callback(cancel)
        for task in tasks:
            task.add_done_callback(_crash_on_failure)
        return worker


def _crash_on_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("%s stopped", task.get_name(), exc_info=task.exception())
        # Nothing uncommitted is lost by dying: a restarted worker resumes from Kafka.
        os._exit(70)


status_router = APIRouter()


@status_router.get("/v1/status")
async def status(
    request: Request, _: Annotated[Caller, Depends(allowed(Permission.MODELS_READ))]
) -> dict[str, Any]:
    """What this worker owns and has done (any API key)."""
    worker: DriftWorker = request.app.state.adapters
    profiler, merger = worker.profiler, worker.merger
    return {
        "prediction_partitions": sorted(tp.partition for tp in profiler.assignment),
        "partial_partitions": sorted(tp.partition for tp in merger.assignment),
        "events_profiled": worker.profiling.flushed_events,
        "profiling_seconds": (profiler.last_commit or 0.0) - (profiler.first_read or 0.0),
        "reports_published": worker.merging.reports_published,
        "traffic_reports_published": worker.merging.traffic.published,
        "dead_lettered": profiler.dead_lettered + merger.dead_lettered,
        "quarantined_events": worker.profiling.quarantined,
        "merge_failures": dict(worker.merging.failed),
        "references": dict(worker.merging.publisher.counts),
        "evicted": dict(worker.merging.evicted),
        "model_versions": [
            {
                "model_id": m.version.model_id,
                "version": m.version.version,
                "open_windows": len(m.windows),
                "reference": m.reference.source if m.reference else None,
                "baseline_events": sum(len(b) for b in m.baseline),
            }
            for m in worker.merging.models.values()
        ],
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()
    app = create_api(
        "Vigil drift detector",
        "drift_detector",
        lambda s: DriftWorker.open(s, config),
        routers=[status_router],
        settings=config,
    )

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        worker: DriftWorker | None = getattr(app.state, "adapters", None)
        predictions = len(worker.profiler.assignment) if worker else 0
        partials = len(worker.merger.assignment) if worker else 0
        ready = bool(worker and worker.profiler.ready and predictions > 0)
        body: dict[str, Any] = {
            "ready": ready,
            "prediction_partitions": predictions,
            "partial_partitions": partials,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
