"""The auditor's report of a model in the console: ``/models/{id}/report`` (one printable
HTML page) and ``/models/{id}/report.json`` (a download), read with the visitor's key."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from console.web import ConsoleDep, PageError, SignInNeeded, Visitor, VisitorDep
from vigil.report import (
    CONTENT_SECURITY_POLICY,
    ReportRefused,
    ReportUnavailable,
    build_report,
    render_html,
)
from vigil.wire.access import Permission

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _not_found(model_id: str) -> PageError:
    # The same answer for a model outside the key's scope as for one that does not exist.
    return PageError(404, "Not found", f"There is no model {model_id!r} you may read.")


async def _report(visitor: Visitor, console: ConsoleDep, model_id: str) -> dict[str, Any]:
    """The report, or the page saying why not (403 naming the roles, 404 out of scope)."""
    visitor.need(Permission.AUDIT_READ, "read the audit trail, which the report is made of")
    if not visitor.caller.covers(model_id):
        raise _not_found(model_id)
    services = console.services
    try:
        return await build_report(
            services.client,
            visitor.session.key,
            services.urls["registry"],
            services.urls["alerting"],
            model_id,
        )
    except ReportRefused as exc:
        if exc.status == 401:
            raise SignInNeeded(f"Signed out: {exc.detail}") from exc
        if exc.status in (403, 404):
            raise _not_found(model_id) from exc
        raise PageError(exc.status, "Refused", exc.detail) from exc
    except ReportUnavailable as exc:
        raise PageError(503, f"The {exc.service} is not answering", exc.reason) from exc


@router.get("/models/{model_id}/report")
async def report_page(model_id: str, visitor: VisitorDep, console: ConsoleDep) -> Response:
    """The model's auditor's report: one self-contained page, printable."""
    document = await _report(visitor, console, model_id)
    download = f"/models/{quote(model_id, safe='')}/report.json"
    return HTMLResponse(
        render_html(document, json_href=download),
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


@router.get("/models/{model_id}/report.json")
async def report_json(model_id: str, visitor: VisitorDep, console: ConsoleDep) -> Response:
    """The same report as a JSON download."""
    document = await _report(visitor, console, model_id)
    name = _UNSAFE.sub("_", model_id)[:100] or "model"
    return Response(
        json.dumps(document, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}-report.json"'},
    )
