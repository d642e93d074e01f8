"""The on-call's routes: silences, acknowledgements, and each alert's history.

Each change is an event on the alerts topic (written before the answer) carrying the caller's
principal; the Redis cache follows it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from alerting.dispatch import Dispatcher
from alerting.history import AlertHistory, acknowledged, event
from alerting.ports import AlertStore
from alerting.silences import (
    MAX_COMMENT,
    SilenceIn,
    SilenceView,
    expire,
    new_silence,
    scoped_models,
    state_of,
)
from vigil.adapters.auth import allowed, refuse_model
from vigil.adapters.http import InputRejected, error_responses, json_limits
from vigil.adapters.ports import Unavailable
from vigil.wire.access import ALL_MODELS, Caller, Permission
from vigil.wire.alert_events import AlertEvent, Silence
from vigil.wire.records import Alert, utcnow
from vigil.wire.validation import FieldError

__all__ = ["AckIn", "OncallAdapters", "router"]


class OncallAdapters(Protocol):
    """What these routes need of the API's adapters (``alerting.api.Alerting``)."""

    @property
    def store(self) -> AlertStore: ...
    @property
    def history(self) -> AlertHistory | None: ...
    @property
    def dispatcher(self) -> Dispatcher | None: ...


async def _adapters(request: Request) -> OncallAdapters:
    adapters = request.app.state.adapters
    if not all(hasattr(adapters, n) for n in ("store", "history", "dispatcher")):
        raise TypeError(f"app.state.adapters is a {type(adapters).__name__}, not Alerting")
    return adapters  # type: ignore[no-any-return]


def recorder(alerting: OncallAdapters) -> AlertHistory:
    """Where subscriptions, silences and acknowledgements are recorded; Unavailable without
    one."""
    if alerting.history is None:
        raise Unavailable("Kafka", "no alerts topic configured")
    return alerting.history


AlertingDep = Annotated[OncallAdapters, Depends(_adapters)]
Reader = Annotated[Caller, Depends(allowed(Permission.ALERTS_READ))]
Oncall = Annotated[Caller, Depends(allowed(Permission.ALERTS_WRITE))]
router = APIRouter()


class AckIn(BaseModel):
    """Why the alert is acknowledged (optional)."""

    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=MAX_COMMENT)


def _view(silence: Silence) -> SilenceView:
    return SilenceView(**silence.model_dump(), status=state_of(silence, utcnow()))


def _sees(caller: Caller, silence: Silence) -> bool:
    """A silence confined to models in scope, or any silence for a key of every model."""
    models = scoped_models(silence)
    return ALL_MODELS in caller.models or (models is not None and caller.covers_all(models))


@router.post(
    "/v1/silences",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(json_limits)],
    responses=error_responses(503),
)
async def create_silence(body: SilenceIn, caller: Oncall, alerting: AlertingDep) -> SilenceView:
    """Silence the alerts matching every matcher from ``starts_at`` (now) to ``ends_at``."""
    now = utcnow()
    try:
        silence = new_silence(body, uuid.uuid4().hex, caller.principal, now)
    except ValueError as exc:
        received = body.ends_at.isoformat()
        raise InputRejected(str(exc), [FieldError("ends_at", "a future time", received)]) from exc
    if not _sees(caller, silence):
        raise refuse_model(caller, ",".join(scoped_models(silence) or ["*"]))
    found = event("silence", now, silence=silence, actor=caller.principal, comment=body.comment)
    await recorder(alerting).record([found])
    return _view(silence)


@router.get("/v1/silences", responses=error_responses(503))
async def list_silences(caller: Reader, alerting: AlertingDep) -> list[SilenceView]:
    """Every silence the key's scope covers (pending, active and expired), oldest first."""
    return [_view(s) for s in await alerting.store.silences() if _sees(caller, s)]


@router.delete(
    "/v1/silences/{silence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 503),
)
async def expire_silence(silence_id: str, caller: Oncall, alerting: AlertingDep) -> Response:
    """End a silence now; alerts it matched are sent again from their next change."""
    found = [s for s in await alerting.store.silences() if s.id == silence_id]
    if not found or not _sees(caller, found[0]):
        raise InputRejected(f"no silence {silence_id!r}", [], 404)
    now = utcnow()
    if state_of(found[0], now) != "expired":
        ended = expire(found[0], now)
        expired = event("silence_expired", now, silence=ended, actor=caller.principal)
        await recorder(alerting).record([expired])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _alert(fingerprint: str, caller: Caller, alerting: OncallAdapters) -> Alert:
    found = (await alerting.store.alerts([fingerprint])).get(fingerprint)
    if found is None:
        raise InputRejected(f"no alert {fingerprint!r}", [], 404)
    if not caller.covers(found.model_id):
        raise refuse_model(caller, found.model_id)
    return found


@router.post(
    "/v1/alerts/{fingerprint}/ack",
    dependencies=[Depends(json_limits)],
    responses=error_responses(404, 409, 503),
)
async def acknowledge(
    fingerprint: str, body: AckIn, caller: Oncall, alerting: AlertingDep
) -> Alert:
    """Acknowledge an alert as the key's principal: no repeats until its severity worsens;
    its subscribers are told who acknowledged it."""
    alert = await _alert(fingerprint, caller, alerting)
    if alert.status == "resolved":
        raise InputRejected(f"alert {fingerprint!r} is resolved", [], 409)
    now = utcnow()
    acked = acknowledged(alert, caller.principal, now)
    ack = event(
        "ack",
        now,
        fingerprint=fingerprint,
        alert=acked,
        actor=caller.principal,
        comment=body.comment,
    )
    await recorder(alerting).record([ack])
    if alerting.dispatcher is not None:  # the alert's groups are told who acknowledged it
        await alerting.dispatcher.absorb([acked])
    return acked


@router.get("/v1/alerts/{fingerprint}/history", responses=error_responses(404, 503))
async def alert_history(
    fingerprint: str, caller: Reader, alerting: AlertingDep
) -> list[AlertEvent]:
    """What happened to an alert, oldest first: state changes, notifications, acks."""
    events = await alerting.store.history(fingerprint)
    about = next((e.alert for e in reversed(events) if e.alert is not None), None)
    if about is None:
        about = await _alert(fingerprint, caller, alerting)
    if not caller.covers(about.model_id):
        raise refuse_model(caller, about.model_id)
    return events
