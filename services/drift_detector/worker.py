"""The drift detector's faust worker: predictions in, WindowReports out."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from drift_detector.config import Settings
from drift_detector.handlers import DriftMonitor, WindowPolicy
from vigil.bus import dead_letter, new_producer, publish
from vigil.catalog import ModelCatalogFollower
from vigil.codec import Codec, DecodeError, SchemaRegistryClient
from vigil.schemas import PredictionEvent, WindowReport, utcnow
from vigil.topics import METRICS, PREDICTIONS

log = logging.getLogger(__name__)

BATCH = 2000
BATCH_WITHIN_SECONDS = 0.5
REPORT_CODEC = Codec(WindowReport)


def create_app(settings: Settings) -> faust.App:
    """The faust app, its agent over the predictions topic and its window-closing timer."""
    app = faust.App(
        settings.drift_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_bind=settings.drift_web_host,
        web_host=settings.drift_web_host,
        web_port=settings.drift_web_port,
        consumer_auto_offset_reset=settings.drift_auto_offset_reset,
        producer_acks=-1,
        topic_allow_declare=False,
    )
    registry = (
        SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None
    )
    codec = Codec(PredictionEvent, registry)
    monitor = DriftMonitor(
        WindowPolicy(
            size_seconds=settings.drift_window_seconds,
            lateness_seconds=settings.drift_lateness_seconds,
            idle_close_seconds=settings.drift_idle_close_seconds,
            min_events=settings.drift_min_events,
            psi_threshold=settings.drift_psi_threshold,
            reference_size=settings.drift_reference_size,
        )
    )
    predictions = app.topic(
        PREDICTIONS.name,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )

    @app.service
    class Adapters(faust.Service):
        """Starts the catalog follower and the producer with the worker, before the agent."""

        producer: AIOKafkaProducer
        follower: ModelCatalogFollower

        async def on_start(self) -> None:
            # aiokafka clients must be made inside the running loop.
            Adapters.producer = new_producer(settings.kafka_bootstrap, settings.drift_app_id)
            Adapters.follower = ModelCatalogFollower(settings.kafka_bootstrap)
            await Adapters.producer.start()
            await Adapters.follower.start()

        async def on_stop(self) -> None:
            await Adapters.follower.stop()
            await Adapters.producer.stop()

    async def handle(events: list[Any]) -> None:
        follower, producer = Adapters.follower, Adapters.producer
        by_version: dict[tuple[str, str], list[tuple[Any, PredictionEvent]]] = defaultdict(list)
        rejects: list[tuple[Any, str]] = []
        for event in events:
            try:
                decoded = codec.decode(event.message.value)
                by_version[(decoded.model_id, decoded.model_version)].append(
                    (event.message, decoded)
                )
            except DecodeError as exc:
                rejects.append((event.message, exc.reason))
        if any(follower.catalog.get(*key) is None for key in by_version):
            await follower.catch_up()
        now = time.monotonic()
        for (model_id, version_id), pairs in by_version.items():
            version = follower.catalog.get(model_id, version_id)
            if version is None:
                reason = f"model {model_id!r} version {version_id!r} is not registered"
                rejects.extend((message, reason) for message, _ in pairs)
            else:
                batch = [decoded for _, decoded in pairs]
                monitor.observe(version, batch, now, [m.partition for m, _ in pairs])
        if rejects:
            sent = [
                await dead_letter(
                    producer,
                    m.value,
                    reason,
                    source_topic=PREDICTIONS.name,
                    key=m.key,
                    partition=m.partition,
                    offset=m.offset,
                )
                for m, reason in rejects
            ]
            await asyncio.gather(*sent)
            log.warning(
                "dead-lettered %d of %d events; first: %s", len(rejects), len(events), rejects[0][1]
            )

    @app.agent(predictions)
    async def detect(stream: Any) -> AsyncIterator[None]:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_SECONDS):
            await handle(list(events))
            yield None

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]
    async def close_windows() -> None:
        reports = list(monitor.due_reports(time.monotonic(), utcnow()))
        if reports:
            await publish(Adapters.producer, METRICS, REPORT_CODEC, reports, lambda r: r.key)
            for r in reports:
                log.info(
                    "published %s: %d events, drifted %s",
                    r.report_id,
                    r.event_count,
                    r.drifted_features,
                )

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        status = 200 if assigned else 503
        return web.json({"ready": bool(assigned), "partitions": assigned}, status=status)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json(
            {"status": "ok", "service": "drift_detector", "models": len(monitor.models)}
        )

    return app
