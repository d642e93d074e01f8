"""Prediction logger HTTP API: validated, de-duplicated events onto ``vigil.predictions.v1``."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis

from prediction_logger import metrics
from prediction_logger.config import Settings
from prediction_logger.handlers import (
    Event,
    PredictionIn,
    check_batch,
    first_occurrences,
    has_unregistered,
    valid_events,
)
from vigil.adapters.bus import KafkaBus, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected, create_api, provider, request_body
from vigil.adapters.idempotency import IdempotencyKeys
from vigil.adapters.ports import Bus, Catalog, IdempotencyStore, Unavailable
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, utcnow
from vigil.wire.topics import PREDICTIONS
from vigil.wire.validation import FieldError, decode_items, parse_items

__all__ = ["PredictionLog", "create_app", "router"]

CODEC = Codec(PredictionEvent)
# One record batch per partition per request: 1,000 events of 20 features take ~330 kB in all.
# Below the broker's default 1 MB message.max.bytes.
MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class PredictionLog:
    """The logger's adapters: the predictions bus, the model catalog, idempotency keys."""

    bus: Bus
    catalog: Catalog
    keys: IdempotencyStore
    _settling: set[asyncio.Future[None]] = field(default_factory=set)

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> PredictionLog:
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        keys = IdempotencyKeys(
            redis,
            settings.prediction_logger_redis_prefix,
            settings.prediction_logger_dedup_window_seconds,
            pending_seconds=settings.prediction_logger_pending_seconds,
        )
        bus = await KafkaBus.open(
            stack, settings.kafka_bootstrap, "vigil-prediction-logger", MAX_BATCH_BYTES
        )
        return cls(bus, await started(stack, ModelCatalogFollower(settings.kafka_bootstrap)), keys)

    async def store_once(self, events: list[Event], wait_seconds: float) -> list[Event]:
        """Store the events whose ids were not stored within the window; returns those.

        Answers 503 if Kafka has not acknowledged them within ``wait_seconds``.
        """
        new = await self._claim(events)
        ids = [e["prediction_id"] for e in new]
        encode = CODEC.encode_dict
        messages = [(id_.encode(), encode(e)) for id_, e in zip(ids, new, strict=True)]
        write = asyncio.ensure_future(self.bus.send(PREDICTIONS.name, messages))
        try:
            await asyncio.wait_for(asyncio.shield(write), wait_seconds)
        except TimeoutError:
            # The producer keeps retrying; its outcome settles the keys, so a resend of these
            # ids meanwhile is told to retry, and afterwards is stored or reported a duplicate.
            write.add_done_callback(lambda done: self._settle_later(ids, done))
            metrics.REJECTED.labels("kafka_unavailable").inc(len(ids))
            raise InputRejected(
                f"Kafka has not acknowledged the write within {wait_seconds:g} s; resend the same"
                " prediction_ids after Retry-After: they are stored at most once",
                [],
                503,
                {"Retry-After": "5"},
            ) from None
        except Unavailable as exc:
            await self.keys.release(ids)
            raise unavailable(exc, len(ids)) from exc
        await self.keys.confirm(ids)
        return new

    async def _claim(self, events: list[Event]) -> list[Event]:
        """The events whose ids are now this request's to store; 503 if any is in flight."""
        try:
            claims = await self.keys.claim([e["prediction_id"] for e in events])
        except Unavailable as exc:
            raise unavailable(exc, len(events)) from exc
        new = [e for e, c in zip(events, claims, strict=True) if c == "new"]
        if "pending" in claims:
            await self.keys.release([e["prediction_id"] for e in new])
            raise InputRejected(
                "some prediction ids are being stored by another request; retry shortly",
                [],
                503,
                {"Retry-After": "1"},
            )
        return new

    def _settle_later(self, ids: list[str], write: asyncio.Future[None]) -> None:
        settle = self.keys.release if write.cancelled() or write.exception() else self.keys.confirm
        task = asyncio.ensure_future(settle(ids))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


def unavailable(exc: Unavailable, events: int) -> InputRejected:
    """The 503 answer when Kafka or Redis is down, counted."""
    metrics.REJECTED.labels(f"{exc.backend.lower()}_unavailable").inc(events)
    return InputRejected(f"{exc}; nothing was stored, retry later", [], 503, {"Retry-After": "5"})


LogDep = Annotated[PredictionLog, Depends(provider(PredictionLog))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
router = APIRouter()


@router.post("/v1/predictions")
async def log_predictions(
    request: Request, log: LogDep, settings: SettingsDep, partial: bool = False
) -> dict[str, Any]:
    """Log predictions: one JSON object, a JSON array or NDJSON, gzip or not.

    Answers once Kafka has stored them. With ``?partial=true`` valid events are stored and
    the invalid ones listed; otherwise one invalid event rejects the whole batch.
    """
    with metrics.LATENCY.time():
        return await _log(request, log, settings, partial)


@router.get("/readyz")
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
    request: Request, log: PredictionLog, settings: Settings, partial: bool
) -> dict[str, Any]:
    limit = settings.prediction_logger_max_batch
    body = await request_body(request, settings.prediction_logger_max_body_bytes)
    content_type = request.headers.get("content-type", "")
    ndjson = "ndjson" in content_type or "jsonl" in content_type
    items, errors = decode_items(body, ndjson)
    if not errors and len(items) <= limit:
        # The usual batch, all valid, takes one quick pass; anything else the checks below.
        events = valid_events(items, log.catalog, utcnow())
        if events is not None:
            return await _stored(log, settings, events, [])
    parsed = None if ndjson else _parse_valid_array(body, limit)
    if parsed is not None:
        return await _store(log, settings, parsed, [], partial)
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
    return await _store(log, settings, parsed, errors, partial)


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
    checked = check_batch(parsed, log.catalog, utcnow())
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
    return await _stored(log, settings, checked.events, problems)


async def _stored(
    log: PredictionLog, settings: Settings, events: list[Event], problems: list[FieldError]
) -> dict[str, Any]:
    """Store the valid events once; the answer to the request."""
    unique = first_occurrences(events)
    timeout = settings.prediction_logger_write_timeout_seconds
    stored = await log.store_once(unique, timeout) if unique else []
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
        counter.labels(model_id).inc(n)


def create_app(settings: Settings | None = None, adapters: PredictionLog | None = None) -> FastAPI:
    """The prediction logger API; on ``adapters`` when given, else on Kafka and Redis."""
    config = settings or Settings()
    opener = partial(PredictionLog.open, settings=config)
    return create_api(
        "Vigil prediction logger", "prediction_logger", opener, adapters, [router], config
    )
