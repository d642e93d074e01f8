"""Prediction logger HTTP API: validated predictions onto ``vigil.predictions.v1``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, Request

from prediction_logger.config import Settings
from prediction_logger.handlers import PredictionIn, to_events, unregistered
from vigil.bus import new_producer, publish, started
from vigil.catalog import ModelCatalogFollower
from vigil.codec import Codec
from vigil.http import InputRejected, adapters, create_api, stored_or_503
from vigil.schemas import PredictionEvent, utcnow
from vigil.topics import PREDICTIONS
from vigil.validation import parse_batch

CODEC = Codec(PredictionEvent)


@dataclass(frozen=True)
class PredictionLog:
    """The logger's adapters: the predictions producer and the model catalog."""

    producer: AIOKafkaProducer
    follower: ModelCatalogFollower

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> PredictionLog:
        return cls(
            await started(stack, new_producer(settings.kafka_bootstrap, "vigil-prediction-logger")),
            await started(stack, ModelCatalogFollower(settings.kafka_bootstrap)),
        )


LogDep = Annotated[PredictionLog, Depends(adapters)]


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()
    app = create_api(
        "Vigil prediction logger",
        "prediction_logger",
        lambda stack: PredictionLog.open(stack, config),
    )

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
        await stored_or_503(
            publish(log.producer, PREDICTIONS, CODEC, events, lambda e: e.prediction_id)
        )
        return {"accepted": len(events), "prediction_ids": [e.prediction_id for e in events]}

    return app
