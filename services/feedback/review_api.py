"""The review queue's routes: items leased to an expert to judge, and a model's feedback
summary; and the attribution of a flag to the model its item was handed out for."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from redis.exceptions import RedisError

from feedback.config import Settings
from feedback.handlers import Feedback
from feedback.review import DriftWindow, Mix, micros
from feedback.review_worker import ReviewDesk
from feedback.store import FeedbackLog
from feedback.summary import EPOCH, summarise
from vigil.adapters.auth import allowed, refuse_model
from vigil.adapters.http import InputRejected, answered_or_503, error_responses, provider
from vigil.wire.access import Caller, Permission
from vigil.wire.records import utcnow
from vigil.wire.validation import FieldError

__all__ = ["attribute", "router"]

log = logging.getLogger(__name__)

LogDep = Annotated[FeedbackLog, Depends(provider(FeedbackLog))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
Reviewer = Annotated[Caller, Depends(allowed(Permission.FEEDBACK_REVIEW))]
# Experts, and those who read a model's performance (data scientists, auditors).
SummaryReader = Annotated[
    Caller, Depends(allowed(Permission.FEEDBACK_REVIEW, Permission.PERFORMANCE_READ))
]
ModelQuery = Annotated[str, Query(min_length=1, max_length=256)]
router = APIRouter()


@router.get("/v1/review-queue", responses=error_responses(404, 503))
async def review_queue(
    caller: Reviewer,
    log: LogDep,
    settings: SettingsDep,
    model_id: ModelQuery,
    limit: Annotated[int, Query(ge=1)] = 10,
    mix: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Lease up to ``limit`` of a model's predictions to the key's principal to judge, mixed
    by reason (``mix``: e.g. ``random=0.5,low_confidence=0.5``; default the model's
    ``review_mix``, else the service's)."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    if limit > settings.feedback_review_max_limit:
        expected = f"at most {settings.feedback_review_max_limit}"
        error = _error("limit", expected, limit)
        raise InputRejected(f"limit {limit} is over the maximum", [error])
    desk = await _desk(log, model_id)
    chosen = _mix(mix) if mix is not None else _model_mix(log, model_id, settings)
    handed = await answered_or_503(
        desk.store.hand_out(
            model_id, caller.principal, chosen, limit, _ms(utcnow()), random.Random()
        ),
        "Redis",
    )
    return {
        "model_id": model_id,
        "reviewer": caller.principal,
        "mix": dict(chosen.shares),
        "items": [
            {
                **h.candidate.as_dict(),
                "timestamp": _time(h.candidate.timestamp),
                "reason": h.reason,
                "lease_expires_at": _time(h.lease_until_ms * 1000),
                **({} if h.drift is None else {"drift": _drift(h.drift)}),
            }
            for h in handed
        ],
    }


def _drift(window: DriftWindow) -> dict[str, Any]:
    """The drifted window an item is from: the whole window, or one group of a segment and
    what drifted in it."""
    found: dict[str, Any] = {
        "window_start": _time(window.start),
        "window_end": _time(window.end),
    }
    if window.segment is not None:
        found.update(segment=window.segment, group=window.group, drifted=list(window.drifted))
    return found


@router.get("/v1/models/{model_id}/feedback-summary", responses=error_responses(404, 503))
async def feedback_summary(
    model_id: str,
    _: SummaryReader,
    log: LogDep,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    window_seconds: Annotated[float, Query(gt=0, le=366 * 86400)] = 86400.0,
) -> dict[str, Any]:
    """A model's experts' flags with their comments (newest first, the latest ``limit``), flag
    rates overall, per expert and per window, how far the experts agree, and how often they
    agree with the ground truth where a label pipeline gave it."""
    desk = await _desk(log, model_id)
    since_us = None if since is None else _ms(since) * 1000
    flags = await answered_or_503(desk.store.flags(model_id, since_us), "Redis")
    truths = await answered_or_503(desk.store.truths(model_id), "Redis")
    return {"since": since, **summarise(model_id, flags, limit, window_seconds, truths)}


async def attribute(
    items: Sequence[Feedback | None], review: ReviewDesk | None, caller: Caller
) -> tuple[list[FieldError], list[FieldError]]:
    """Flags naming no model get the model their item was handed out for (in place); returns
    the flags whose model is not that one, refused (403) when it is outside the caller's
    scope, else invalid (422). Without the queue's record, items are left as they are."""
    if review is None:
        return [], []
    flagged = [(i, f) for i, f in enumerate(items) if f is not None and f["flag"] is not None]
    if not flagged:
        return [], []
    try:
        where = await review.store.where(sorted({f["prediction_id"] for _, f in flagged}))
    except RedisError as exc:  # feedback is still taken; only the attribution is missed
        log.warning("flags not attributed: the review queue's Redis: %s", exc)
        return [], []
    forbidden: list[FieldError] = []
    invalid: list[FieldError] = []
    for i, flag in flagged:
        handed_for = where.get(flag["prediction_id"])
        if handed_for is None or flag["model_id"] == handed_for:
            continue
        if flag["model_id"] is None:
            flag["model_id"] = handed_for
            continue
        error = FieldError(
            "model_id",
            f"{handed_for!r}, the model prediction {flag['prediction_id']!r} was handed out for",
            repr(flag["model_id"]),
            i,
        )
        (invalid if caller.covers(handed_for) else forbidden).append(error)
    return forbidden, invalid


async def _desk(log: FeedbackLog, model_id: str) -> ReviewDesk:
    """The review queue, for a registered model; 404 if either is missing here."""
    if log.review is None:  # as if the route were not there
        raise InputRejected(
            "the review queue is not running here (VIGIL_FEEDBACK_REVIEW_ENABLED=false)", [], 404
        )
    if not log.catalog.versions(model_id):
        await log.catalog.catch_up()  # it may have been registered a moment ago
        if not log.catalog.versions(model_id):
            raise InputRejected(f"model {model_id!r} is not registered", [], 404)
    return log.review


def _model_mix(log: FeedbackLog, model_id: str, settings: Settings) -> Mix:
    """The mix the model set (its champion's ``review_mix``, else the newest version's that
    has one), else the service's default."""
    versions = sorted(
        (v for v in log.catalog.versions(model_id) if v.review_mix),
        key=lambda v: (v.status == "champion", v.created_at),
    )
    if versions:
        return Mix.of(versions[-1].review_mix)
    return _mix(settings.feedback_review_mix)


def _mix(text: str) -> Mix:
    try:
        return Mix.parse(text)
    except ValueError as exc:
        expected = "<reason>=<weight>,… (random, low_confidence, drifted, disagreement)"
        raise InputRejected(f"mix: {exc}", [_error("mix", expected, text)]) from None


def _error(field: str, expected: str, received: object) -> FieldError:
    return FieldError(field, expected, repr(received))


def _ms(time: datetime) -> int:
    """Milliseconds since the epoch (a naive time is taken as UTC)."""
    return micros(time) // 1000


def _time(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)
