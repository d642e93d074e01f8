"""Alerting HTTP API (subscriptions, alerts) plus its consumer of window reports."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from contextlib import AsyncExitStack
from typing import Annotated, Literal

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import Depends, FastAPI, Response, status
from redis.asyncio import Redis

from alerting.config import Settings
from alerting.consumer import ReportConsumer, run_forever
from alerting.handlers import Subscription, SubscriptionIn
from alerting.store import AlertStore
from alerting.webhooks import WebhookSender
from vigil.adapters.bus import new_producer, started
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.adapters.http import InputRejected, adapters, create_api
from vigil.wire.records import Alert, utcnow
from vigil.wire.topics import METRICS

StoreDep = Annotated[AlertStore, Depends(adapters)]


async def open_alerting(stack: AsyncExitStack, settings: Settings) -> AlertStore:
    """Redis, Kafka clients and the report consumer's task; the routes need only the store."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    stack.push_async_callback(redis.aclose)
    await redis.ping()
    store = AlertStore(redis, settings.alerting_redis_prefix)
    client = httpx.AsyncClient(timeout=settings.alerting_webhook_timeout_seconds)
    stack.push_async_callback(client.aclose)
    producer = await started(stack, new_producer(settings.kafka_bootstrap, "vigil-alerting"))
    follower = await started(stack, ModelCatalogFollower(settings.kafka_bootstrap))
    consumer = AIOKafkaConsumer(
        METRICS.name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.alerting_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Reports are written in transactions: never act on one that was rolled back.
        isolation_level="read_committed",
    )
    await started(stack, consumer)
    sender = WebhookSender(client, settings.alerting_webhook_attempts)
    task = asyncio.create_task(
        run_forever(ReportConsumer(consumer, producer, follower, store, sender))
    )

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(cancel)
    return store


def create_app(settings: Settings | None = None) -> FastAPI:
    config = settings or Settings()
    app = create_api("Vigil alerting", "alerting", lambda stack: open_alerting(stack, config))

    @app.post("/v1/subscriptions", status_code=status.HTTP_201_CREATED)
    async def subscribe(body: SubscriptionIn, store: StoreDep) -> Subscription:
        """Subscribe a webhook to the alerts of some models (or "*") from a severity up."""
        sub = Subscription(**body.model_dump(), id=uuid.uuid4().hex, created_at=utcnow())
        await store.add_subscription(sub)
        return sub

    @app.get("/v1/subscriptions")
    async def list_subscriptions(store: StoreDep) -> list[Subscription]:
        """Every subscription."""
        return await store.subscriptions()

    @app.delete("/v1/subscriptions/{sub_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def unsubscribe(sub_id: str, store: StoreDep) -> Response:
        """Remove a subscription."""
        if not await store.remove_subscription(sub_id):
            raise InputRejected(f"no subscription {sub_id!r}", [], 404)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @app.get("/v1/alerts")
    async def list_alerts(
        store: StoreDep,
        model_id: str | None = None,
        status: Literal["firing", "acknowledged", "resolved"] | None = None,
    ) -> list[Alert]:
        """Alerts, newest first, optionally for one model or in one status."""
        alerts = (await store.alerts()).values()
        chosen = [
            a
            for a in alerts
            if (model_id is None or a.model_id == model_id)
            and (status is None or a.status == status)
        ]
        return sorted(chosen, key=lambda a: a.updated_at, reverse=True)

    return app
