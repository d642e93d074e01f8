"""Feedback HTTP API: true outcomes and reviewers' flags onto ``vigil.feedback.v1``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, Request

from feedback.config import Settings
from feedback.handlers import FeedbackIn, to_events
from vigil.adapters.bus import new_producer, publish, started
from vigil.adapters.http import InputRejected, adapters, create_api, stored_or_503
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, utcnow
from vigil.wire.topics import FEEDBACK
from vigil.wire.validation import parse_batch

CODEC = Codec(FeedbackEvent)


ProducerDep = Annotated[AIOKafkaProducer, Depends(adapters)]


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()

    async def open_producer(stack: AsyncExitStack) -> AIOKafkaProducer:
        return await started(stack, new_producer(config.kafka_bootstrap, "vigil-feedback"))

    app = create_api("Vigil feedback", "feedback", open_producer)

    @app.post("/v1/feedback")
    async def give_feedback(request: Request, producer: ProducerDep) -> dict[str, Any]:
        """Record feedback on one prediction, or a JSON array of feedback."""
        parsed, errors = parse_batch(await request.body(), FeedbackIn)
        if errors:
            raise InputRejected(f"{len(errors)} invalid field(s); nothing was stored", errors)
        events = to_events([p for p in parsed if p is not None], utcnow())
        await stored_or_503(publish(producer, FEEDBACK, CODEC, events, lambda e: e.prediction_id))
        return {"accepted": len(events), "feedback_ids": [e.feedback_id for e in events]}

    return app
