"""Feedback HTTP API: validated, de-duplicated outcomes and flags onto ``vigil.feedback.v1``;
the review queue's routes (``feedback.review_api``) beside them."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request

from feedback import metrics, review_api
from feedback.config import Settings
from feedback.handlers import (
    Feedback,
    FeedbackIn,
    first_occurrences,
    not_the_author,
    read_items,
    refused,
    to_events,
)
from feedback.labels import check_models, unknown_models
from feedback.store import FeedbackLog
from vigil.adapters.auth import Guard, allowed
from vigil.adapters.http import (
    InputRejected,
    JsonLimits,
    check_json_shape,
    create_api,
    error_responses,
    provider,
    raw_body_openapi,
    request_body,
    too_large,
)
from vigil.adapters.idempotency import scoped_id
from vigil.adapters.openapi import NDJSON_BODY
from vigil.wire.access import Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, utcnow
from vigil.wire.validation import FieldError, decode_items, is_ndjson

__all__ = ["FeedbackLog", "create_app", "router"]

CODEC = Codec(FeedbackEvent)

LogDep = Annotated[FeedbackLog, Depends(provider(FeedbackLog))]
# Experts (sme) send reviews and flags; producers send true outcomes.
Author = Annotated[Caller, Depends(allowed(Permission.FEEDBACK_REVIEW, Permission.FEEDBACK_TRUTH))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@router.post(
    "/v1/feedback",
    responses=error_responses(400, 503),
    openapi_extra=raw_body_openapi(FeedbackIn, batch=True, others=NDJSON_BODY),
)
async def give_feedback(
    request: Request, caller: Author, log: LogDep, settings: SettingsDep, partial: bool = False
) -> dict[str, Any]:
    """Record feedback: one JSON object, a JSON array or NDJSON, gzip or not. Its author
    (``reviewer``) is the key's principal.

    Answers once Kafka has stored it. With ``?partial=true`` valid items are stored and the
    invalid ones listed; otherwise one invalid item rejects the whole batch.
    """
    with metrics.LATENCY.time():
        return await _record(request, caller, log, settings, partial)


async def _record(
    request: Request, caller: Caller, log: FeedbackLog, settings: Settings, partial: bool
) -> dict[str, Any]:
    items = await _items(request, settings)
    now = utcnow()
    parsed, errors = read_items(items, now, settings.max_clock_skew_seconds)
    if errors:  # the slow path: hold the body to its JSON limits before saying more
        check_json_shape(
            items, JsonLimits(settings.feedback_max_json_depth, settings.feedback_max_json_values)
        )
    misattributed, mismatched = await review_api.attribute(parsed, log.review, caller)
    forbidden = sorted([*refused(parsed, caller), *misattributed], key=lambda p: p.index or 0)
    if forbidden:
        metrics.REJECTED.labels("forbidden").inc(len(forbidden))
        if not partial:
            raise InputRejected(
                f"{len(forbidden)} item(s) this key may not send; nothing was stored",
                forbidden,
                403,
            )
    if unknown_models(parsed, log.catalog):
        await log.catalog.catch_up()  # it may have been registered a moment ago
    invalid = [
        *errors,
        *not_the_author(parsed, caller),
        *check_models(parsed, log.catalog),
        *mismatched,
    ]
    problems = sorted([*invalid, *forbidden], key=lambda p: p.index or 0)
    rejected = {p.index for p in problems}
    if problems:
        metrics.REJECTED.labels("invalid_field").inc(len({p.index for p in invalid}))
        if not partial:
            raise InputRejected(
                f"{len(rejected)} of {len(items)} item(s) rejected; nothing was stored"
                " (send ?partial=true to store the valid ones)",
                problems,
            )
    valid = [p for i, p in enumerate(parsed) if p is not None and i not in rejected]
    events, given = to_events(valid, now, caller.principal)
    return await _stored(log, settings, events, given, problems)


async def _items(request: Request, settings: Settings) -> list[Any]:
    """The items of the body (JSON object, array or NDJSON; gzip or not), within the limits."""
    body = await request_body(request, settings.feedback_max_body_bytes)
    items, errors = decode_items(body, is_ndjson(request.headers.get("content-type", "")))
    if errors:  # not JSON, or nothing in it: unreadable, as the OpenAPI says
        metrics.REJECTED.labels("invalid_body").inc()
        raise InputRejected(f"{len(errors)} unreadable part(s) of the body", errors, 400)
    if len(items) > settings.feedback_max_items:
        metrics.REJECTED.labels("too_large").inc(len(items))
        raise too_large("batch", settings.feedback_max_items, str(len(items)), "items")
    return items


async def _stored(
    log: FeedbackLog,
    settings: Settings,
    events: list[Feedback],
    given: list[bool],
    problems: list[FieldError],
) -> dict[str, Any]:
    """Store the valid feedback once; the answer to the request."""
    first = first_occurrences(events, given)
    keys = [
        scoped_id(events[i]["prediction_id"], events[i]["feedback_id"]) if given[i] else None
        for i in first
    ]
    encode = CODEC.encode_dict
    messages = [(events[i]["prediction_id"].encode(), encode(events[i])) for i in first]
    timeout = settings.feedback_write_timeout_seconds
    stored = len(await log.feedback.write(keys, messages, timeout)) if first else 0
    metrics.ACCEPTED.inc(stored)
    metrics.DUPLICATES.inc(len(events) - stored)
    return {
        "accepted": stored,
        "duplicates": len(events) - stored,
        "rejected": len({p.index for p in problems}),
        "feedback_ids": [e["feedback_id"] for e in events],
        "errors": [p.as_dict() for p in problems],
    }


def create_app(
    settings: Settings | None = None,
    adapters: FeedbackLog | None = None,
    guard: Guard | None = None,
) -> FastAPI:
    """The feedback API; on ``adapters`` and ``guard`` when given, else on Kafka and Redis."""
    config = settings or Settings()
    opener = partial(FeedbackLog.open, settings=config)
    return create_api(
        "Vigil feedback",
        "feedback",
        opener,
        adapters,
        [router, review_api.router],
        config,
        max_body_bytes=config.feedback_max_body_bytes,
        guard=guard,
    )
