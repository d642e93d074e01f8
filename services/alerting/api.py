"""Alerting HTTP API: subscriptions and alerts; the report worker runs beside it."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status

from alerting import worker
from alerting.config import Settings
from alerting.handlers import Subscription, SubscriptionIn
from alerting.ports import AlertStore
from alerting.store import RedisAlertStore
from vigil.adapters.auth import Guard, allowed, refuse_model
from vigil.adapters.http import (
    InputRejected,
    JsonLimits,
    create_api,
    error_responses,
    json_limits,
    provider,
)
from vigil.wire.access import Caller, Permission
from vigil.wire.records import Alert, utcnow

__all__ = ["Alerting", "create_app", "router"]


@dataclass(frozen=True)
class Alerting:
    """The API's adapters: the alert store (the report worker has its own clients)."""

    store: AlertStore

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Alerting:
        """Redis, then the report worker on Kafka; the routes need only the store."""
        store = await RedisAlertStore.open(
            stack, settings.redis_url, settings.alerting_redis_prefix
        )
        await worker.start(stack, settings, store)
        return cls(store)


AlertingDep = Annotated[Alerting, Depends(provider(Alerting))]
SubscriptionReader = Annotated[Caller, Depends(allowed(Permission.SUBSCRIPTIONS_READ))]
SubscriptionWriter = Annotated[Caller, Depends(allowed(Permission.SUBSCRIPTIONS_WRITE))]
AlertReader = Annotated[Caller, Depends(allowed(Permission.ALERTS_READ))]
router = APIRouter()


@router.post(
    "/v1/subscriptions",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(json_limits)],
    responses=error_responses(400, 503),
)
async def subscribe(
    body: SubscriptionIn, caller: SubscriptionWriter, alerting: AlertingDep
) -> Subscription:
    """Subscribe a webhook to the alerts of some models (or "*") from a severity up."""
    _check_scope(caller, body.models)
    sub = Subscription(**body.model_dump(), id=uuid.uuid4().hex, created_at=utcnow())
    await alerting.store.add_subscription(sub)
    return sub


@router.get("/v1/subscriptions", responses=error_responses(503))
async def list_subscriptions(
    caller: SubscriptionReader, alerting: AlertingDep
) -> list[Subscription]:
    """Every subscription to models in the key's scope."""
    return [s for s in await alerting.store.subscriptions() if caller.covers_all(s.models)]


@router.delete(
    "/v1/subscriptions/{sub_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 503),
)
async def unsubscribe(sub_id: str, caller: SubscriptionWriter, alerting: AlertingDep) -> Response:
    """Remove a subscription."""
    found = [s for s in await alerting.store.subscriptions() if s.id == sub_id]
    if found:
        _check_scope(caller, found[0].models)
    if not found or not await alerting.store.remove_subscription(sub_id):
        raise InputRejected(f"no subscription {sub_id!r}", [], 404)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/alerts", responses=error_responses(503))
async def list_alerts(
    request: Request,
    response: Response,
    caller: AlertReader,
    alerting: AlertingDep,
    model_id: str | None = None,
    status: Literal["firing", "acknowledged", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> list[Alert]:
    """Alerts, newest first, optionally for one model or in one status, a page at a time.

    When there are more, the ``Link`` header (``rel="next"``) and ``X-Next-Cursor`` say
    where the next page starts.
    """
    if model_id is not None and not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    page = await alerting.store.alerts_page(cursor, limit, model_id, status)
    if page.next_position is not None:
        following = request.url.include_query_params(cursor=page.next_position)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        response.headers["X-Next-Cursor"] = str(page.next_position)
    # A key scoped to some models sees their alerts only (a page may hold fewer).
    return [a for a in page.alerts if caller.covers(a.model_id)]


def _check_scope(caller: Caller, models: list[str]) -> None:
    """403 unless every model of a subscription is in the caller's scope."""
    if not caller.covers_all(models):
        outside = next((m for m in models if not caller.covers(m)), "*")
        raise refuse_model(caller, outside)


def create_app(
    settings: Settings | None = None, adapters: Alerting | None = None, guard: Guard | None = None
) -> FastAPI:
    """The alerting API and its report worker; on ``adapters`` (no worker) and ``guard``
    when given."""
    config = settings or Settings()
    opener = partial(Alerting.open, settings=config)
    limits = JsonLimits(config.alerting_max_json_depth, config.alerting_max_json_values)
    return create_api(
        "Vigil alerting",
        "alerting",
        opener,
        adapters,
        [router],
        config,
        max_body_bytes=config.alerting_max_body_bytes,
        limits=limits,
        guard=guard,
    )
