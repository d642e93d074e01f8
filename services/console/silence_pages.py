"""Silencing an alert from the alerts page, and expiring a silence: forms that alerting's
``/v1/silences`` checks (role ``oncall``, the model in scope) and records under the key's
principal."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.silencing import DURATIONS, MAX_COMMENT, silence_request
from console.upstream import Refused, Unanswered
from console.web import (
    ConsoleDep,
    PageError,
    VisitorDep,
    check_csrf,
    page_failure,
    read_form,
)
from vigil.wire.records import utcnow

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.post("/alerts/{fingerprint}/silence")
async def silence(
    request: Request, fingerprint: str, visitor: VisitorDep, console: ConsoleDep
) -> Response:
    """Silence the alert's model version and rule for the chosen hours, with a comment."""
    form = await read_form(request)
    check_csrf(form, visitor.session.csrf)
    hours, comment = form.get("hours", ""), form.get("reason", "").strip()
    if hours not in DURATIONS:
        offered = ", ".join(DURATIONS)
        raise PageError(422, "Silence refused", f"Silence for {offered} hours, not {hours!r}.")
    if not comment:
        raise PageError(422, "Silence refused", "Say why the alert is silenced (a comment).")
    key = visitor.session.key
    try:
        events = await console.services.history(key, fingerprint)
        alert = next((e.alert for e in reversed(events) if e.alert is not None), None)
        if alert is None:
            raise PageError(404, "Not found", f"No alert {fingerprint!r}.")
        body = silence_request(alert, int(hours), comment[:MAX_COMMENT], utcnow())
        created = await console.services.create_silence(key, body)
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Silence refused") from exc
    done = {"silenced": fingerprint, "hours": hours, "silence": str(created.get("id", ""))}
    return RedirectResponse("/alerts?" + urlencode(done), 303)


@router.post("/silences/{silence_id}/expire")
async def expire(
    request: Request, silence_id: str, visitor: VisitorDep, console: ConsoleDep
) -> Response:
    """End a silence now; the alerts it covered are sent again from their next change."""
    check_csrf(await read_form(request), visitor.session.csrf)
    try:
        await console.services.expire_silence(visitor.session.key, silence_id)
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Silence refused") from exc
    return RedirectResponse("/alerts?" + urlencode({"expired": silence_id}), 303)
