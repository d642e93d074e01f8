"""The drift detector worker: its two stages, the model catalog and its HTTP endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from drift_detector.config import Settings
from drift_detector.merger import Merger
from drift_detector.profiler import Profiler
from drift_detector.windows import WindowPolicy
from vigil.adapters.bus import ensure_topics, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import create_api
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


@dataclass
class DriftWorker:
    follower: ModelCatalogFollower
    profiler: Profiler
    merger: Merger

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> DriftWorker:
        await ensure_topics(settings.kafka_bootstrap, drift_topics(settings.drift_app_id))
        follower = await started(stack, ModelCatalogFollower(settings.kafka_bootstrap))
        rules = policy(settings)
        worker = cls(
            follower,
            await started(stack, Profiler(settings, follower, rules)),
            await started(stack, Merger(settings, follower, rules)),
        )
        tasks = [
            asyncio.create_task(worker.profiler.run(), name="drift-profiler"),
            asyncio.create_task(worker.merger.run(), name="drift-merger"),
        ]

        async def cancel() -> None:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

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


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()
    app = create_api(
        "Vigil drift detector", "drift_detector", lambda s: DriftWorker.open(s, config)
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

    @app.get("/v1/status")
    async def status() -> dict[str, Any]:
        """What this worker owns and has done."""
        worker: DriftWorker = app.state.adapters
        return {
            "prediction_partitions": sorted(tp.partition for tp in worker.profiler.assignment),
            "partial_partitions": sorted(tp.partition for tp in worker.merger.assignment),
            "events_profiled": worker.profiler.flushed_events,
            "profiling_seconds": (worker.profiler.last_commit or 0.0)
            - (worker.profiler.first_read or 0.0),
            "reports_published": worker.merger.reports_published,
            "model_versions": [
                {
                    "model_id": m.version.model_id,
                    "version": m.version.version,
                    "open_windows": len(m.windows),
                    "reference": m.reference.source if m.reference else None,
                    "baseline_events": sum(len(b) for b in m.baseline),
                }
                for m in worker.merger.models.values()
            ],
        }

    return app
