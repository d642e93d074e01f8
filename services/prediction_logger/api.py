"""Prediction logger HTTP API: validated, de-duplicated events onto ``vigil.predictions.v1``."""

from __future__ import annotations

import collections
from collections.abc import Awaitable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError

from prediction_logger import metrics
from prediction_logger.config import Settings
from prediction_logger.environments import environments_router
from prediction_logger.handlers import (
    Event,
    PredictionIn,
    check_batch,
    event_key,
    first_occurrences,
    has_unregistered,
    out_of_scope,
    valid_events,
)
from prediction_logger.store import Message, PredictionLog
from vigil.adapters.auth import Guard, allowed
from vigil.adapters.http import (
    InputRejected,
    create_api,
    error_responses,
    provider,
    raw_body_openapi,
    request_body,
)
from vigil.adapters.openapi import NDJSON_BODY
from vigil.wire.access import ALL_MODELS, Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, utcnow
from vigil.wire.validation import FieldError, decode_items, is_ndjson, parse_items

__all__ = ["PredictionLog", "create_app", "router"]

CODEC = Codec(PredictionEvent)


LogDep = Annotated[PredictionLog, Depends(provider(PredictionLog))]
Producer = Annotated[Caller, Depends(allowed(Permission.PREDICTIONS_WRITE))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@router.post(
    "/v1/predictions",
    responses=error_responses(400, 404, 503),
    openapi_extra=raw_body_openapi(PredictionIn, batch=True, others=NDJSON_BODY),
)
async def log_predictions(
    request: Request, caller: Producer, log: LogDep, settings: SettingsDep, partial: bool = False
) -> dict[str, Any]:
    """Log predictions: one JSON object, a JSON array or NDJSON, gzip or not.

    Answers once Kafka has stored them. With ``?partial=true`` valid events are stored and
    the invalid ones listed; otherwise one invalid event rejects the whole batch.
    """
    with metrics.LATENCY.time():
        return await _log(request, caller, log, settings, partial)


@router.get(
    "/readyz", responses={503: {"description": "Not ready: the same body, naming what failed"}}
)
async def readyz(log: LogDep) -> JSONResponse:
    """Ready when Kafka and Redis both answer."""
    checks = {"kafka": await _check(log.bus.ping()), "redis": await _check(log.keys.ping())}
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def _check(probe: Awaitable[None]) -> str:
    try:
        await probe
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


async def _log(
    request: Request, caller: Caller, log: PredictionLog, settings: Settings, partial: bool
) -> dict[str, Any]:
    limit = settings.prediction_logger_max_batch
    body = await request_body(request, settings.prediction_logger_max_body_bytes)
    ndjson = is_ndjson(request.headers.get("content-type", ""))
    items, errors = decode_items(body, ndjson)
    if not errors and len(items) <= limit:
        # The usual batch, all valid, takes one quick pass; anything else the checks below.
        events = valid_events(items, log.catalog, utcnow(), settings.max_clock_skew_seconds)
        if events is not None and _in_scope(caller, events):
            return await _stored(log, settings, events, [], partial)
    parsed = None if ndjson else _parse_valid_array(body, limit)
    if parsed is not None:
        outside: list[FieldError] = []
        return await _store(
            log, settings, _scoped(caller, parsed, outside, partial), outside, partial
        )
    if errors:
        metrics.REJECTED.labels("invalid_body").inc()
        raise InputRejected(
            f"{len(errors)} unreadable part(s) of the body; nothing was stored", errors, 400
        )
    if len(items) > limit:
        metrics.REJECTED.labels("too_large").inc(len(items))
        raise InputRejected(
            f"{len(items)} events in one request; the limit is {limit}: split the batch",
            [FieldError("<body>", f"at most {limit} events", str(len(items)))],
            413,
        )
    parsed, errors = parse_items(items, PredictionIn)
    return await _store(log, settings, _scoped(caller, parsed, errors, partial), errors, partial)


def _in_scope(caller: Caller, events: list[Event]) -> bool:
    return ALL_MODELS in caller.models or all(caller.covers(e["model_id"]) for e in events)


def _scoped(
    caller: Caller, parsed: list[PredictionIn | None], errors: list[FieldError], partial: bool
) -> list[PredictionIn | None]:
    """The items the caller may log for; the others refuse the batch (403), or with
    ``partial`` are reported in ``errors`` like other invalid items."""
    outside = out_of_scope(caller, parsed)
    if not outside:
        return parsed
    if not partial:
        metrics.REJECTED.labels("out_of_scope").inc(len(outside))
        raise InputRejected(
            f"{len(outside)} event(s) for models outside the key's scope; nothing was stored",
            outside,
            403,
        )
    errors.extend(outside)
    metrics.REJECTED.labels("out_of_scope").inc(len(outside))
    refused = {e.index for e in outside}
    return [None if i in refused else item for i, item in enumerate(parsed)]


async def _store(
    log: PredictionLog,
    settings: Settings,
    parsed: list[PredictionIn | None],
    errors: list[FieldError],
    partial: bool,
) -> dict[str, Any]:
    """Check parsed events against their models; store the valid ones, or reject the batch."""
    if has_unregistered(parsed, log.catalog):
        await log.catalog.catch_up()  # it may have been registered a moment ago
    checked = check_batch(parsed, log.catalog, utcnow(), settings.max_clock_skew_seconds)
    problems = sorted(errors + checked.problems, key=lambda e: e.index or 0)
    for problem in problems:
        reason = "unknown_model" if problem in checked.unknown_models else "invalid_field"
        metrics.REJECTED.labels(reason).inc()
    if problems and not partial:
        only_unknown = len(problems) == len(checked.unknown_models)
        raise InputRejected(
            f"{len({p.index for p in problems})} of {len(parsed)} event(s) rejected; nothing"
            " was stored (send ?partial=true to store the valid ones)",
            problems,
            404 if only_unknown else 422,
        )
    return await _stored(log, settings, checked.events, problems, partial)


async def _stored(
    log: PredictionLog,
    settings: Settings,
    events: list[Event],
    problems: list[FieldError],
    partial: bool = False,
) -> dict[str, Any]:
    """Store the valid events once; the answer to the request."""
    unique = first_occurrences(events)
    encode = CODEC.encode_dict
    messages = [(e["prediction_id"].encode(), encode(e)) for e in unique]
    limit = settings.prediction_logger_max_event_bytes
    if any(len(value) > limit for _, value in messages):
        events, unique, messages, problems = _without_oversized(
            events, unique, messages, problems, limit, partial
        )
    timeout = settings.prediction_logger_write_timeout_seconds
    stored = await log.store_once(unique, messages, timeout) if unique else []
    accepted = collections.Counter(e["model_id"] for e in stored)
    duplicates = collections.Counter(e["model_id"] for e in events) - accepted
    _count(metrics.ACCEPTED, accepted)
    _count(metrics.DUPLICATES, duplicates)
    return {
        "accepted": len(stored),
        "duplicates": duplicates.total(),
        "rejected": len({p.index for p in problems}),
        "prediction_ids": [e["prediction_id"] for e in events],
        "errors": [p.as_dict() for p in problems],
    }


def _without_oversized(
    events: list[Event],
    unique: list[Event],
    messages: list[Message],
    problems: list[FieldError],
    limit: int,
    partial: bool,
) -> tuple[list[Event], list[Event], list[Message], list[FieldError]]:
    """The batch without its events over ``limit`` encoded bytes, which become problems.

    Kafka would refuse such an event after the rest of the request was written: it is
    refused up front (the whole batch, unless partial), named by its index in the request.
    """
    rejected = {p.index for p in problems}
    # The valid events are the request's items that had no problem, in order.
    request_index = [i for i in range(len(events) + len(rejected)) if i not in rejected]
    position = {id(e): k for k, e in enumerate(events)}
    big = {
        event_key(e): FieldError(
            "<event>",
            f"an event of at most {limit} bytes once encoded",
            f"{len(value)} bytes",
            request_index[position[id(e)]],
        )
        for e, (_, value) in zip(unique, messages, strict=True)
        if len(value) > limit
    }
    metrics.REJECTED.labels("event_too_large").inc(len(big))
    if not partial:
        raise InputRejected(
            f"{len(big)} event(s) over the limit of {limit} bytes each; nothing was stored",
            list(big.values()),
            413,
        )
    kept = [k for k, e in enumerate(unique) if event_key(e) not in big]
    return (
        [e for e in events if event_key(e) not in big],
        [unique[k] for k in kept],
        [messages[k] for k in kept],
        sorted([*problems, *big.values()], key=lambda p: p.index or 0),
    )


BATCH = TypeAdapter(list[PredictionIn])


def _parse_valid_array(body: bytes, limit: int) -> list[PredictionIn | None] | None:
    """A JSON array of valid events of at most ``limit``, parsed in one pass; else None.

    Anything else (one object, an invalid event, too many) takes the item-by-item path, which
    names every problem.
    """
    if not body.lstrip().startswith(b"["):
        return None
    try:
        events: list[PredictionIn | None] = list(BATCH.validate_json(body))
    except ValidationError:
        return None
    return events if 0 < len(events) <= limit else None


def _count(counter: Counter, per_model: collections.Counter[str]) -> None:
    for model_id, n in per_model.items():
        counter.labels(metrics.MODEL_IDS(model_id)).inc(n)


def create_app(
    settings: Settings | None = None,
    adapters: PredictionLog | None = None,
    guard: Guard | None = None,
) -> FastAPI:
    """The prediction logger API; on ``adapters`` and ``guard`` when given, else on Kafka and
    Redis."""
    config = settings or Settings()
    metrics.MODEL_IDS.limit = config.metrics_max_model_labels
    opener = partial(PredictionLog.open, settings=config)
    return create_api(
        "Vigil prediction logger",
        "prediction_logger",
        opener,
        adapters,
        [router, environments_router],
        config,
        max_body_bytes=config.prediction_logger_max_body_bytes,
        guard=guard,
    )
