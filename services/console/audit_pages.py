"""The audit trail page: every state-changing call, allowed or refused, newest first, as the
registry's ``GET /v1/audit`` pages it (role ``auditor`` or ``admin``), filtered by model and
principal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from console.upstream import Refused, Unanswered
from console.web import ConsoleDep, PageError, VisitorDep, page_failure, render
from vigil.wire.access import Permission

__all__ = ["AuditLine", "audit_lines", "router"]

router = APIRouter(include_in_schema=False)
AUDIT_PAGE = 100


@dataclass(frozen=True)
class AuditLine:
    """One audited call as a row of the page."""

    time: str
    principal: str
    roles: str
    service: str
    action: str
    resource: str
    model_id: str
    status: int
    outcome: str  # "allowed" or "refused"
    detail: str


def _time(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).isoformat(timespec="seconds")
    except ValueError:
        return str(value)


def audit_lines(events: list[dict[str, Any]]) -> list[AuditLine]:
    """The registry's audit events (JSON), as rows in the order given."""
    lines = []
    for e in events:
        status = int(e.get("status") or 0)
        lines.append(
            AuditLine(
                time=_time(e.get("time")),
                principal=str(e.get("principal") or "—"),
                roles=", ".join(e.get("roles") or ()),
                service=str(e.get("service") or ""),
                action=str(e.get("action") or ""),
                resource=str(e.get("resource") or ""),
                model_id=str(e.get("model_id") or ""),
                status=status,
                outcome="allowed" if status < 400 else "refused",
                detail=str(e.get("detail") or ""),
            )
        )
    return lines


@router.get("/audit")
async def audit(
    request: Request,
    visitor: VisitorDep,
    console: ConsoleDep,
    model_id: str = Query("", max_length=128),
    principal: str = Query("", max_length=128),
    before: int | None = Query(None, ge=0),
) -> Response:
    """One page of the audit trail, newest first; "Older" follows the registry's ``next``."""
    visitor.need(Permission.AUDIT_READ, "read the audit trail")
    model, who = model_id.strip(), principal.strip()
    if model and not visitor.caller.covers(model):  # as any page of it: no existence leak
        raise PageError(404, "Not found", f"No model {model!r} in your key's scope.")
    try:
        page = await console.services.audit(
            visitor.session.key, model or None, who or None, before, AUDIT_PAGE
        )
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Not possible now") from exc
    events = page.get("events")
    following = page.get("next")
    filters = {k: v for k, v in (("model_id", model), ("principal", who)) if v}
    context = {
        "lines": audit_lines(events if isinstance(events, list) else []),
        "filters": {"model_id": model, "principal": who},
        "older": None
        if following is None
        else "/audit?" + urlencode({**filters, "before": following}),
        "newest": "/audit?" + urlencode(filters) if before is not None else None,
    }
    return render(request, "audit.html", context, visitor)
