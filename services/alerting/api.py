"""Alerting HTTP API: subscriptions and alerts; the report worker runs beside it."""

from __future__ import annotations

import secrets
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status

from alerting import oncall, worker
from alerting.channels import open_notifier
from alerting.channels.formats import probe_alert
from alerting.config import Settings
from alerting.dispatch import Dispatcher
from alerting.egress import EgressPolicy
from alerting.history import AlertHistory, event
from alerting.oncall import recorder as _recorder
from alerting.ports import AlertStore, Notifier
from alerting.store import RedisAlertStore
from alerting.subscriptions import (
    Notification,
    Subscription,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionView,
)
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
from vigil.wire.records import Alert, Severity, utcnow
from vigil.wire.validation import FieldError

__all__ = ["Alerting", "create_app", "router"]


@dataclass(frozen=True)
class Alerting:
    """The API's adapters: the alert store, and the notifier test notifications go through
    (the report worker has its own clients)."""

    store: AlertStore
    notifier: Notifier | None = None
    # Subscriptions, silences and acks are recorded through it (the alerts topic, then Redis).
    history: AlertHistory | None = None
    dispatcher: Dispatcher | None = None  # acknowledgements are told through it

    @classmethod
    async def open(cls, stack: AsyncExitStack, settings: Settings) -> Alerting:
        """Redis, then the report worker on Kafka; the routes need only the store."""
        store = await RedisAlertStore.open(
            stack, settings.redis_url, settings.alerting_redis_prefix
        )
        alerter = await worker.start(stack, settings, store)
        notifier = open_notifier(stack, settings)
        return cls(store, notifier, alerter.history, alerter.dispatcher)


AlertingDep = Annotated[Alerting, Depends(provider(Alerting))]
SettingsDep = Annotated[Settings, Depends(provider(Settings, "settings"))]
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
    body: SubscriptionIn, caller: SubscriptionWriter, alerting: AlertingDep, settings: SettingsDep
) -> SubscriptionCreated:
    """Subscribe a channel to the alerts of some models (or "*") from a severity up.

    A webhook subscription's signing secret is in this answer only.
    """
    _check_scope(caller, body.models)
    _check_target(body, settings)
    secret = secrets.token_hex(32) if body.channel == "webhook" else None
    now = utcnow()
    sub = Subscription(**body.model_dump(), id=uuid.uuid4().hex, created_at=now, secret=secret)
    made = event(
        "subscribed",
        now,
        subscription_id=sub.id,
        subscription=sub.model_dump_json(),
        channel=sub.channel,
        actor=caller.principal,
    )
    await _recorder(alerting).record([made])
    return SubscriptionCreated(**SubscriptionView.of(sub).model_dump(), secret=secret)


@router.get("/v1/subscriptions", responses=error_responses(503))
async def list_subscriptions(
    caller: SubscriptionReader, alerting: AlertingDep
) -> list[SubscriptionView]:
    """Every subscription to models in the key's scope (no secrets)."""
    subs = await alerting.store.subscriptions()
    return [SubscriptionView.of(s) for s in subs if caller.covers_all(s.models)]


@router.post("/v1/subscriptions/{sub_id}/test", responses=error_responses(404, 503))
async def test_subscription(
    sub_id: str, caller: SubscriptionWriter, alerting: AlertingDep
) -> dict[str, object]:
    """Send a made-up firing alert to a subscription now; how the delivery went."""
    sub = await _subscription(alerting, sub_id)
    _check_scope(caller, sub.models)
    if alerting.notifier is None:
        raise InputRejected("this server sends no notifications", [], 503)
    notification = Notification.of(sub, [probe_alert(sub, utcnow())], test=True)
    result = await alerting.notifier.send(sub, notification)
    return {
        "delivery_id": notification.delivery_id,
        "ok": result.ok,
        "status_code": result.status_code,
        "latency_seconds": round(result.latency, 3),
        "attempts": result.attempts,
        "error": result.error,
    }


@router.delete(
    "/v1/subscriptions/{sub_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 503),
)
async def unsubscribe(sub_id: str, caller: SubscriptionWriter, alerting: AlertingDep) -> Response:
    """Remove a subscription."""
    sub = await _subscription(alerting, sub_id)
    _check_scope(caller, sub.models)
    gone = event("unsubscribed", utcnow(), subscription_id=sub_id, actor=caller.principal)
    await _recorder(alerting).record([gone])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/alerts", responses=error_responses(503))
async def list_alerts(
    request: Request,
    response: Response,
    caller: AlertReader,
    alerting: AlertingDep,
    model_id: str | None = None,
    status: Literal["firing", "acknowledged", "resolved"] | None = None,
    severity: Severity | None = None,
    since: Annotated[datetime | None, Query(description="updated at or after (UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> list[Alert]:
    """Alerts, newest first, optionally of one model, status or severity, or updated since
    a time, a page at a time.

    When there are more, the ``Link`` header (``rel="next"``) and ``X-Next-Cursor`` say
    where the next page starts.
    """
    if model_id is not None and not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    page = await alerting.store.alerts_page(cursor, limit, model_id, status, severity, since)
    if page.next_position is not None:
        following = request.url.include_query_params(cursor=page.next_position)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        response.headers["X-Next-Cursor"] = str(page.next_position)
    # A key scoped to some models sees their alerts only (a page may hold fewer).
    return [a for a in page.alerts if caller.covers(a.model_id)]


async def _subscription(alerting: Alerting, sub_id: str) -> Subscription:
    """The subscription with id ``sub_id``, or a 404."""
    found = [s for s in await alerting.store.subscriptions() if s.id == sub_id]
    if not found:
        raise InputRejected(f"no subscription {sub_id!r}", [], 404)
    return found[0]


def _check_target(body: SubscriptionIn, settings: Settings) -> None:
    """422 for a target Vigil will not send to (see alerting.egress), or e-mail without SMTP."""
    if body.channel == "email" and not settings.alerting_smtp_host:
        raise InputRejected(
            "e-mail is not configured on this server",
            [FieldError("channel", "a channel this server can send on", "email")],
        )
    if body.url is None:
        return
    policy = EgressPolicy(tuple(settings.alerting_allowed_networks))
    problem = policy.check_url(str(body.url))
    if problem is not None:
        raise InputRejected(
            f"url refused: {problem}",
            [FieldError("url", "a public http(s) target", str(body.url))],
        )


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
        [router, oncall.router],
        config,
        max_body_bytes=config.alerting_max_body_bytes,
        limits=limits,
        guard=guard,
    )
