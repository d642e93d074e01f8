"""Prediction logger HTTP API: validated, de-duplicated events onto ``vigil.predictions.v1``."""

from __future__ import annotations

import asyncio
import collections
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

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
from vigil.adapters.bus import new_producer, send_keyed, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected, adapters, create_api, request_body
from vigil.adapters.idempotency import IdempotencyKeys
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, utcnow
from vigil.wire.topics import PREDICTIONS
from vigil.wire.validation import FieldError, decode_items, parse_items

CODEC = Codec(PredictionEvent)
# One record batch per partition per request: 1,000 events of 20 features take ~330 kB in all.
# Below the broker's default 1 MB message.max.bytes.
MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class PredictionLog:
    """The logger's adapters: predictions producer, model catalog, idempotency keys."""

    producer: AIOKafkaProducer
    follower: ModelCatalogFollower
    keys: IdempotencyKeys
    settings: Settings
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
        return cls(
            await started(
                stack,
                new_producer(
                    settings.kafka_bootstrap,
                    "vigil-prediction-logger",
                    max_batch_size=MAX_BATCH_BYTES,
                ),
            ),
            await started(stack, ModelCatalogFollower(settings.kafka_bootstrap)),
            keys,
            settings,
        )

    async def store_once(self, events: list[Event]) -> list[Event]:
        """Store the events whose ids were not stored within the window; returns those."""
        try:
            claims = await self.keys.claim([e["prediction_id"] for e in events])
        except RedisError as exc:
            raise unavailable("Redis", exc, len(events)) from exc
        new = [e for e, c in zip(events, claims, strict=True) if c == "new"]
        if "pending" in claims:
            await self.keys.release([e["prediction_id"] for e in new])
            raise InputRejected(
                "some prediction ids are being stored by another request; retry shortly",
                [],
                503,
                {"Retry-After": "1"},
            )
        ids = [e["prediction_id"] for e in new]
        encode = CODEC.encode_dict
        messages = [(id_.encode(), encode(e)) for id_, e in zip(ids, new, strict=True)]
        write = asyncio.ensure_future(send_keyed(self.producer, PREDICTIONS.name, messages))
        timeout = self.settings.prediction_logger_write_timeout_seconds
        try:
            await asyncio.wait_for(asyncio.shield(write), timeout)
        except TimeoutError:
            # The producer keeps retrying; its outcome settles the keys, so a resend of these
            # ids meanwhile is told to retry, and afterwards is stored or reported a duplicate.
            write.add_done_callback(lambda done: self._settle_later(ids, done))
            metrics.REJECTED.labels("kafka_unavailable").inc(len(ids))
            raise InputRejected(
                f"Kafka has not acknowledged the write within {timeout:g} s; resend the same"
                " prediction_ids after Retry-After: they are stored at most once",
                [],
                503,
                {"Retry-After": "5"},
            ) from None
        except KafkaError as exc:
            await self.keys.release(ids)
            raise unavailable("Kafka", exc, len(ids)) from exc
        await self.keys.confirm(ids)
        return new

    def _settle_later(self, ids: list[str], write: asyncio.Future[None]) -> None:
        settle = self.keys.release if write.cancelled() or write.exception() else self.keys.confirm
        task = asyncio.ensure_future(settle(ids))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


def unavailable(what: str, exc: Exception, events: int) -> InputRejected:
    metrics.REJECTED.labels(f"{what.lower()}_unavailable").inc(events)
    return InputRejected(
        f"{what} is unavailable ({type(exc).__name__}); nothing was stored, retry later",
        [],
        503,
        {"Retry-After": "5"},
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
    async def log_predictions(
        request: Request, log: LogDep, partial: bool = False
    ) -> dict[str, Any]:
        """Log predictions: one JSON object, a JSON array or NDJSON, gzip or not.

        Answers once Kafka has stored them. With ``?partial=true`` valid events are stored and
        the invalid ones listed; otherwise one invalid event rejects the whole batch.
        """
        with metrics.LATENCY.time():
            return await _log(request, log, partial)

    async def _log(request: Request, log: PredictionLog, partial: bool) -> dict[str, Any]:
        limit = log.settings.prediction_logger_max_batch
        body = await request_body(request, log.settings.prediction_logger_max_body_bytes)
        content_type = request.headers.get("content-type", "")
        ndjson = "ndjson" in content_type or "jsonl" in content_type
        items, errors = decode_items(body, ndjson)
        if not errors and len(items) <= limit:
            # The usual batch, all valid, takes one quick pass; anything else the checks below.
            events = valid_events(items, log.follower.catalog, utcnow())
            if events is not None:
                return await _stored(log, events, [])
        parsed = None if ndjson else _parse_valid_array(body, limit)
        if parsed is not None:
            return await _store(log, parsed, [], partial, len(parsed))
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
        return await _store(log, parsed, errors, partial, len(items))

    async def _store(
        log: PredictionLog,
        parsed: list[PredictionIn | None],
        errors: list[FieldError],
        partial: bool,
        count: int,
    ) -> dict[str, Any]:
        if has_unregistered(parsed, log.follower.catalog):
            await log.follower.catch_up()  # it may have been registered a moment ago
        checked = check_batch(parsed, log.follower.catalog, utcnow())
        problems = sorted(errors + checked.problems, key=lambda e: e.index or 0)
        for problem in problems:
            reason = "unknown_model" if problem in checked.unknown_models else "invalid_field"
            metrics.REJECTED.labels(reason).inc()
        if problems and not partial:
            only_unknown = len(problems) == len(checked.unknown_models)
            raise InputRejected(
                f"{len({p.index for p in problems})} of {count} event(s) rejected; nothing"
                " was stored (send ?partial=true to store the valid ones)",
                problems,
                404 if only_unknown else 422,
            )
        return await _stored(log, checked.events, problems)

    async def _stored(
        log: PredictionLog, events: list[Event], problems: list[FieldError]
    ) -> dict[str, Any]:
        """Store the valid events once; the answer to the request."""
        unique = first_occurrences(events)
        stored = await log.store_once(unique) if unique else []
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

    @app.get("/readyz")
    async def readyz(log: LogDep) -> JSONResponse:
        """Ready when Kafka and Redis both answer."""
        checks: dict[str, str] = {}
        try:
            await log.producer.client.fetch_all_metadata()
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"{type(exc).__name__}: {exc}"
        try:
            await log.keys.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"{type(exc).__name__}: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return app


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
