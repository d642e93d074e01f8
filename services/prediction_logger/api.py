"""Prediction logger HTTP API: validated predictions onto ``vigil.predictions.v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request

from prediction_logger.config import Settings
from prediction_logger.handlers import PredictionIn, to_events, unregistered
from vigil.bus import new_producer, publish
from vigil.catalog import ModelCatalogFollower
from vigil.codec import Codec
from vigil.http import InputRejected, health_router, install_error_handlers
from vigil.schemas import PredictionEvent, utcnow
from vigil.topics import PREDICTIONS
from vigil.validation import parse_batch

CODEC = Codec(PredictionEvent)


class PredictionLog:
    """The logger's adapters: the predictions producer and the model catalog."""

    def __init__(self, settings: Settings) -> None:
        self.producer: AIOKafkaProducer = new_producer(
            settings.kafka_bootstrap, "vigil-prediction-logger"
        )
        self.follower = ModelCatalogFollower(settings.kafka_bootstrap)


def get_log(request: Request) -> PredictionLog:
    log: PredictionLog = request.app.state.log
    return log


LogDep = Annotated[PredictionLog, Depends(get_log)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log = PredictionLog(settings)
        await log.producer.start()
        await log.follower.start()
        app.state.log = log
        try:
            yield
        finally:
            await log.follower.stop()
            await log.producer.stop()

    app = FastAPI(title="Vigil prediction logger", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health_router("prediction_logger"))

    @app.post("/v1/predictions")
    async def log_predictions(request: Request, log: LogDep) -> dict[str, Any]:
        """Log one prediction or a JSON array of them; answers once Kafka has stored them."""
        parsed, errors = parse_batch(await request.body(), PredictionIn)
        if errors:
            raise InputRejected(f"{len(errors)} invalid field(s); nothing was stored", errors)
        items = [p for p in parsed if p is not None]
        unknown = unregistered(items, log.follower.catalog)
        if unknown:
            await log.follower.catch_up()  # it may have been registered a moment ago
            unknown = unregistered(items, log.follower.catalog)
        if unknown:
            raise InputRejected(
                f"{len(unknown)} event(s) name an unregistered model version; nothing was stored",
                unknown,
                404,
            )
        events, errors = to_events(items, log.follower.catalog, utcnow())
        if errors:
            raise InputRejected(f"{len(errors)} invalid feature(s); nothing was stored", errors)
        try:
            await publish(log.producer, PREDICTIONS, CODEC, events, lambda e: e.prediction_id)
        except KafkaError as exc:
            raise InputRejected(
                f"Kafka did not acknowledge the write ({type(exc).__name__}); retry later",
                [],
                503,
                {"Retry-After": "5"},
            ) from exc
        return {"accepted": len(events), "prediction_ids": [e.prediction_id for e in events]}

    return app
