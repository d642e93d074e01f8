"""The stand-in's review queue, flags, feedback summary, model versions and silences: the
routes the review page, the alerts page's silence forms and the health page call, answered
from the ``StandIn``'s state with the real role grants (see ``tests.console_standin``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pydantic_core import to_jsonable_python

from feedback.summary import summarise
from vigil.adapters.http import InputRejected
from vigil.wire.access import ALL_MODELS, Caller, Permission

if TYPE_CHECKING:
    from tests.console_standin import StandIn

__all__ = ["UNROUTED", "route"]

P = Permission
UNROUTED = object()  # not one of these routes
FLAGS = ("incorrect", "unexpected", "harmful", "ok")


def _now() -> datetime:
    return datetime.now(UTC)


def _need(caller: Caller, *permissions: Permission) -> None:
    if not any(caller.may(p) for p in permissions):
        raise InputRejected(f"principal {caller.principal!r} may not {permissions[0]}", [], 403)


def _in_scope(caller: Caller, model_id: str) -> None:
    if not caller.covers(model_id):
        raise InputRejected(f"model {model_id!r} is outside the key's scope", [], 403)


def route(s: StandIn, request: httpx.Request, host: str, parts: list[str], caller: Caller) -> Any:
    """The answer of one of these routes, or ``UNROUTED``."""
    method = request.method
    if host == "feedback" and parts == ["v1", "review-queue"]:
        return _queue(s, request, caller)
    if host == "feedback" and parts == ["v1", "feedback"] and method == "POST":
        return _flag(s, json.loads(request.content), caller)
    if host == "feedback" and parts[-1:] == ["feedback-summary"] and len(parts) == 4:
        _need(caller, P.FEEDBACK_REVIEW, P.PERFORMANCE_READ)
        _in_scope(caller, parts[2])
        flags = [f for f in reversed(s.feedback) if f["model_id"] == parts[2] and f["flag"]]
        limit = int(request.url.params.get("limit", 100))
        return to_jsonable_python({"since": None, **summarise(parts[2], flags, limit, 86400.0)})
    if host == "registry" and len(parts) == 5 and parts[3] == "versions" and method == "GET":
        _need(caller, P.MODELS_READ)
        _in_scope(caller, parts[2])
        found = [m for m in s.models if m["model_id"] == parts[2]]
        if not found or parts[4] not in {v["version"] for v in found[0]["versions"]}:
            raise InputRejected(f"no version {parts[4]!r} of {parts[2]!r}", [], 404)
        value = s.business_values.get(parts[2])
        return {"model_id": parts[2], "version": parts[4], "business_value": value}
    if host == "alerting" and parts == ["v1", "silences"] and method == "POST":
        return _silence(s, json.loads(request.content), caller)
    if host == "alerting" and parts[:2] == ["v1", "silences"] and method == "DELETE":
        return _expire(s, parts[2], caller)
    return UNROUTED


def _queue(s: StandIn, request: httpx.Request, caller: Caller) -> Any:
    _need(caller, P.FEEDBACK_REVIEW)
    model_id = request.url.params.get("model_id", "")
    _in_scope(caller, model_id)
    limit = int(request.url.params.get("limit", 10))
    judged = {f["prediction_id"] for f in s.feedback if f["reviewer"] == caller.principal}
    free = [
        i
        for i in s.review_queue.get(model_id, [])
        if i["prediction_id"] not in s.leases and i["prediction_id"] not in judged
    ]
    handed = free[:limit]
    for item in handed:
        s.leases[item["prediction_id"]] = caller.principal
    lease = (_now() + timedelta(minutes=15)).isoformat()
    items = [{"reason": "random", **i, "lease_expires_at": lease} for i in handed]
    return {"model_id": model_id, "reviewer": caller.principal, "mix": {}, "items": items}


def _flag(s: StandIn, body: dict[str, Any], caller: Caller) -> Any:
    _need(caller, P.FEEDBACK_REVIEW, P.FEEDBACK_TRUTH)
    queued = {i["prediction_id"]: m for m, items in s.review_queue.items() for i in items}
    model_id = body.get("model_id") or queued.get(body.get("prediction_id", ""))
    if not model_id:
        raise InputRejected("model_id: a registered model", [], 422)
    _in_scope(caller, model_id)
    if body.get("flag") not in (*FLAGS, None) or body.get("reviewer") not in (
        None,
        caller.principal,
    ):
        raise InputRejected(f"1 of 1 item(s) rejected: {body!r}", [], 422)
    record = {
        "feedback_id": body.get("feedback_id") or uuid.uuid4().hex,
        "prediction_id": body["prediction_id"],
        "model_id": model_id,
        "flag": body.get("flag"),
        "comment": body.get("comment"),
        "actual": body.get("actual"),
        "reviewer": caller.principal,
        "timestamp": int(_now().timestamp() * 1_000_000) + len(s.feedback),
    }
    s.feedback.append(record)
    s.leases.pop(record["prediction_id"], None)  # a judgement ends the item's lease
    ids = [record["feedback_id"]]
    return {"accepted": 1, "duplicates": 0, "rejected": 0, "feedback_ids": ids, "errors": []}


def _silence(s: StandIn, body: dict[str, Any], caller: Caller) -> httpx.Response:
    _need(caller, P.ALERTS_WRITE)
    matchers = body.get("matchers") or []
    models = sorted({m["value"] for m in matchers if m["name"] == "model_id" and m["op"] == "="})
    if not matchers or not body.get("ends_at"):
        raise InputRejected("matchers and ends_at are required", [], 422)
    if ALL_MODELS not in caller.models and not (models and caller.covers_all(models)):
        raise InputRejected(f"model {','.join(models) or '*'!r} is outside the scope", [], 403)
    if datetime.fromisoformat(body["ends_at"]) <= _now():
        raise InputRejected("ends_at is in the past", [], 422)
    silence = {
        "id": uuid.uuid4().hex,
        "matchers": matchers,
        "starts_at": _now().isoformat(),
        "ends_at": body["ends_at"],
        "comment": body.get("comment", ""),
        "created_by": caller.principal,
        "expired_at": None,
        "status": "active",
    }
    s.silences.append(silence)
    return httpx.Response(201, json=silence)


def _expire(s: StandIn, silence_id: str, caller: Caller) -> httpx.Response:
    _need(caller, P.ALERTS_WRITE)
    found = [x for x in s.silences if x["id"] == silence_id]
    if not found:
        raise InputRejected(f"no silence {silence_id!r}", [], 404)
    found[0].update(status="expired", expired_at=_now().isoformat())
    return httpx.Response(204)
