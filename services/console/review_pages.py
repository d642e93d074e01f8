"""The review page: the next prediction of the SME review queue with its flag form, and the
model's flags summed up in business terms. The feedback service leases items and records
flags under the key's principal; the console only shows and forwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.review import FLAGS, champion_of, flag_request, flag_terms, item_terms
from console.upstream import Refused, Services, Unanswered
from console.web import (
    ConsoleDep,
    PageError,
    Visitor,
    VisitorDep,
    check_csrf,
    page_failure,
    read_form,
    render,
)
from vigil.wire.access import Permission

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
# The newest flags listed under the summary.
NEWEST_FLAGS = 20


def _need_review(visitor: Visitor) -> None:
    visitor.need(Permission.FEEDBACK_REVIEW, "review predictions")


def _not_found(model_id: str) -> PageError:
    return PageError(404, "Not found", f"No model {model_id!r} in your key's scope.")


async def _or_missing(call: Awaitable[T]) -> tuple[T | None, str]:
    """The answer, or None and the service's reason when it has none (404)."""
    try:
        return await call, ""
    except Refused as exc:
        if exc.status != 404:
            raise
        return None, exc.detail


async def _business_value(
    services: Services, key: str, model_id: str, version: str | None
) -> dict[str, Any] | None:
    if version is None:
        return None
    found, _ = await _or_missing(services.model_version(key, model_id, version))
    value = (found or {}).get("business_value")
    return value if isinstance(value, dict) else None


async def _model_part(services: Services, key: str, model: dict[str, Any]) -> dict[str, Any]:
    """The queue's next item, the flags' summary and the business terms of one model."""
    model_id, task, version = (
        str(model["model_id"]),
        str(model.get("task") or ""),
        champion_of(model),
    )
    (items, queue_missing), (summary, summary_missing), value = await asyncio.gather(
        _or_missing(services.review_queue(key, model_id, 1)),
        _or_missing(services.feedback_summary(key, model_id, NEWEST_FLAGS)),
        _business_value(services, key, model_id, version),
    )
    item = items[0] if items else None
    features = (item or {}).get("features") or {}
    return {
        "item": item,
        "features": sorted(features.items()) if isinstance(features, dict) else [],
        "item_terms": item_terms((item or {}).get("prediction"), value, task),
        "queue_missing": queue_missing,
        "summary": summary,
        "summary_missing": summary_missing,
        "terms": flag_terms(summary, value, task, version) if summary is not None else [],
        "version": version,
    }


@router.get("/review")
async def review(
    request: Request,
    visitor: VisitorDep,
    console: ConsoleDep,
    model_id: str = "",
    flagged: str = "",
    flag: str = "",
) -> Response:
    """The next prediction of a model's review queue to judge, and its flags summed up."""
    _need_review(visitor)
    key = visitor.session.key
    try:
        models = [
            m for m in await console.services.models(key) if visitor.caller.covers(m["model_id"])
        ]
        chosen = next((m for m in models if m["model_id"] == model_id), None)
        if model_id and chosen is None:
            raise _not_found(model_id)
        chosen = chosen or (models[0] if models else None)
        part = await _model_part(console.services, key, chosen) if chosen else {}
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Flag refused") from exc
    context = {
        "models": [str(m["model_id"]) for m in models],
        "model_id": str(chosen["model_id"]) if chosen else "",
        "flags": FLAGS,
        "flagged": flagged[:200],
        "flagged_as": flag if flag in FLAGS else "",
        **part,
    }
    return render(request, "review.html", context, visitor)


@router.post("/review/flag")
async def send_flag(request: Request, visitor: VisitorDep, console: ConsoleDep) -> Response:
    """Send the expert's flag (and comment, and true outcome) then show the next item."""
    form = await read_form(request)
    check_csrf(form, visitor.session.csrf)
    _need_review(visitor)
    model_id, prediction_id = form.get("model_id", ""), form.get("prediction_id", "")
    flag = form.get("flag", "")
    if not visitor.caller.covers(model_id):
        raise _not_found(model_id)
    if flag not in FLAGS or not prediction_id:
        detail = f"A flag ({', '.join(FLAGS)}) on a prediction; received flag {flag!r}."
        raise PageError(422, "Flag refused", detail)
    body = flag_request(
        uuid.uuid4().hex,
        model_id,
        prediction_id,
        flag,
        form.get("comment", ""),
        form.get("actual", ""),
    )
    try:
        await console.services.send_feedback(visitor.session.key, body)
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Flag refused") from exc
    done = {"model_id": model_id, "flagged": prediction_id, "flag": flag}
    return RedirectResponse("/review?" + urlencode(done), 303)
