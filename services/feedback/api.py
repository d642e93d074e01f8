"""Feedback HTTP API: true outcomes and reviewers' flags onto ``vigil.feedback.v1``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request

from feedback.config import Settings
from feedback.handlers import FeedbackIn, not_the_author, refused, to_events
from vigil.adapters.auth import Guard, allowed
from vigil.adapters.bus import KafkaBus
from vigil.adapters.http import (
    InputRejected,
    JsonLimits,
    check_json_shape,
    create_api,
    error_responses,
    provider,
    raw_body_openapi,
    request_body,
    stored_or_503,
    too_large,
)
from vigil.adapters.ports import Bus
from vigil.wire.access import Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, utcnow
from vigil.wire.topics import FEEDBACK
from vigil.wire.validation import decode_items, parse_items

__all__ = ["Feedback", "create_app", "router"]

CODEC = Codec(FeedbackEvent)


@dataclass(frozen=True)
class Feedback:
    """The feedback service's adapters: the bus to the feedback topic."""

    bus: Bus

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Feedback:
        return cls(await KafkaBus.open(stack, settings.kafka, "vigil-feedback"))


FeedbackDep = Annotated[Feedback, Depends(provider(Feedback))]
# Experts (sme) send reviews and flags; producers send true outcomes.
Author = Annotated[Caller, Depends(allowed(Permission.FEEDBACK_REVIEW, Permission.FEEDBACK_TRUTH))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@router.post(
    "/v1/feedback",
    responses=error_responses(400, 503),
    openapi_extra=raw_body_openapi(FeedbackIn, batch=True),
)
async def give_feedback(
    request: Request, caller: Author, feedback: FeedbackDep, settings: SettingsDep
) -> dict[str, Any]:
    """Record feedback on one prediction, or a JSON array of feedback. Its author (``reviewer``)
    is the key's principal."""
    items, errors = decode_items(await request_body(request, settings.feedback_max_body_bytes))
    if errors:  # not JSON, or nothing in it: unreadable, as the OpenAPI says
        raise InputRejected(f"{len(errors)} unreadable part(s) of the body", errors, 400)
    if len(items) > settings.feedback_max_items:
        raise too_large("batch", settings.feedback_max_items, str(len(items)), "items")
    limits = JsonLimits(settings.feedback_max_json_depth, settings.feedback_max_json_values)
    check_json_shape(items, limits)
    skew = {"max_clock_skew": settings.max_clock_skew_seconds}
    parsed, errors = parse_items(items, FeedbackIn, skew)
    forbidden = refused(parsed, caller)
    if forbidden:
        raise InputRejected(
            f"{len(forbidden)} item(s) this key may not send; nothing was stored", forbidden, 403
        )
    errors += not_the_author(parsed, caller)
    if errors:
        raise InputRejected(f"{len(errors)} invalid field(s); nothing was stored", errors)
    events = to_events([p for p in parsed if p is not None], utcnow(), caller.principal)
    await stored_or_503(feedback.bus.publish(FEEDBACK, CODEC, events, lambda e: e.prediction_id))
    return {"accepted": len(events), "feedback_ids": [e.feedback_id for e in events]}


def create_app(
    settings: Settings | None = None, adapters: Feedback | None = None, guard: Guard | None = None
) -> FastAPI:
    """The feedback API; on ``adapters`` and ``guard`` when given, else on Kafka."""
    config = settings or Settings()
    opener = partial(Feedback.open, settings=config)
    return create_api(
        "Vigil feedback",
        "feedback",
        opener,
        adapters,
        [router],
        config,
        max_body_bytes=config.feedback_max_body_bytes,
        guard=guard,
    )
