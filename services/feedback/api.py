"""Feedback HTTP API: true outcomes and reviewers' flags onto ``vigil.feedback.v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request

from feedback.config import Settings
from feedback.handlers import FeedbackIn, to_events
from vigil.bus import new_producer, publish
from vigil.codec import Codec
from vigil.http import InputRejected, health_router, install_error_handlers
from vigil.schemas import FeedbackEvent, utcnow
from vigil.topics import FEEDBACK
from vigil.validation import parse_batch

CODEC = Codec(FeedbackEvent)


def get_producer(request: Request) -> AIOKafkaProducer:
    producer: AIOKafkaProducer = request.app.state.producer
    return producer


ProducerDep = Annotated[AIOKafkaProducer, Depends(get_producer)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.producer = new_producer(settings.kafka_bootstrap, "vigil-feedback")
        await app.state.producer.start()
        try:
            yield
        finally:
            await app.state.producer.stop()

    app = FastAPI(title="Vigil feedback", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health_router("feedback"))

    @app.post("/v1/feedback")
    async def give_feedback(request: Request, producer: ProducerDep) -> dict[str, Any]:
        """Record feedback on one prediction, or a JSON array of feedback."""
        parsed, errors = parse_batch(await request.body(), FeedbackIn)
        if errors:
            raise InputRejected(f"{len(errors)} invalid field(s); nothing was stored", errors)
        events = to_events([p for p in parsed if p is not None], utcnow())
        try:
            await publish(producer, FEEDBACK, CODEC, events, lambda e: e.prediction_id)
        except KafkaError as exc:
            raise InputRejected(
                f"Kafka did not acknowledge the write ({type(exc).__name__}); retry later",
                [],
                503,
                {"Retry-After": "5"},
            ) from exc
        return {"accepted": len(events), "feedback_ids": [e.feedback_id for e in events]}

    return app
