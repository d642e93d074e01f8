"""The fleet overview and the alerts pages, read through the services with the visitor's key."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from console.handlers import (
    TIERS,
    Performance,
    fleet_rows,
    history_lines,
    latest_performance,
    select_rows,
    split_alerts,
    worst_first,
)
from console.upstream import Refused, Services, Unanswered
from console.web import (
    ConsoleDep,
    PageError,
    SettingsDep,
    SignInNeeded,
    Visitor,
    VisitorDep,
    check_csrf,
    read_form,
    render,
)
from vigil.wire.access import Permission
from vigil.wire.records import Alert, utcnow

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
P = Permission
# Performance requests in flight at once for one overview (one per version).
PARALLEL = 8


def _failed(exc: Refused | Unanswered) -> Exception:
    """What a page shows when a service refuses or fails the call it needs."""
    if isinstance(exc, Unanswered):
        return PageError(503, f"The {exc.service} is not answering", exc.reason)
    if exc.status == 401:
        return SignInNeeded(f"Signed out: {exc.detail}")
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now"}
    return PageError(exc.status, titles.get(exc.status, "Refused"), exc.detail)


async def _open_alerts(services: Services, key: str) -> tuple[list[Alert], bool]:
    """Firing and acknowledged alerts, and whether either list had more than one page."""
    (firing, more), (acked, more_acked) = await asyncio.gather(
        services.alerts(key, "firing"), services.alerts(key, "acknowledged")
    )
    return firing + acked, more or more_acked


async def _performance(
    services: Services, key: str, versions: list[tuple[str, str]], days: float
) -> dict[tuple[str, str], Performance | None] | None:
    """Each version's latest window, or None when the key may not read performance."""
    since = utcnow() - timedelta(days=days)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(model_id: str, version: str) -> Performance | None:
        async with gate:
            return latest_performance(await services.performance(key, model_id, version, since))

    try:
        found = await asyncio.gather(*(one(m, v) for m, v in versions))
    except Refused as exc:
        if exc.status == 403:  # a role without performance: the column shows "—"
            return None
        raise
    return dict(zip(versions, found, strict=True))


@router.get("/fleet")
async def fleet(
    request: Request,
    visitor: VisitorDep,
    console: ConsoleDep,
    settings: SettingsDep,
    tier: str = "",
    owner: str = "",
    status: str = "",
) -> Response:
    """Every model version in the key's scope, worst first, with alerts and performance."""
    key, services = visitor.session.key, console.services
    try:
        models = await services.models(key)
        versions = [(str(m["model_id"]), str(v["version"])) for m in models for v in m["versions"]]
        alerts, truncated = (
            await _open_alerts(services, key) if visitor.may(P.ALERTS_READ) else (None, False)
        )
        performance = (
            await _performance(services, key, versions, settings.console_performance_days)
            if visitor.may(P.PERFORMANCE_READ)
            else None
        )
    except (Refused, Unanswered) as exc:
        raise _failed(exc) from exc
    rows = fleet_rows(models, alerts, performance)
    shown = worst_first(select_rows(rows, tier, owner, status))
    context: dict[str, Any] = {
        "rows": shown,
        "total": len(rows),
        "filters": {"tier": tier, "owner": owner, "status": status},
        "tiers": TIERS,
        "owners": sorted({r.owner for r in rows if r.owner}),
        "statuses": ("champion", "challenger", "shadow", "retired"),
        "alerts_readable": alerts is not None,
        "performance_readable": performance is not None,
        "truncated": truncated,
        "days": settings.console_performance_days,
    }
    return render(request, "fleet.html", context, visitor)


def _need_alerts(visitor: Visitor) -> None:
    if not visitor.may(P.ALERTS_READ):
        roles = ", ".join(sorted(visitor.caller.roles))
        raise PageError(
            403,
            "Not allowed",
            f"Your key's roles ({roles}) may not read alerts: that needs sme, data_scientist,"
            " oncall, auditor or admin.",
        )


@router.get("/alerts")
async def alerts(
    request: Request, visitor: VisitorDep, console: ConsoleDep, acknowledged: str = ""
) -> Response:
    """Firing, acknowledged and silenced alerts, and the silences in force."""
    _need_alerts(visitor)
    key = visitor.session.key
    try:
        (found, truncated), silences = await asyncio.gather(
            _open_alerts(console.services, key), console.services.silences(key)
        )
    except (Refused, Unanswered) as exc:
        raise _failed(exc) from exc
    context = {
        "lists": split_alerts(found),
        "silences": [s for s in silences if s.get("status") == "active"],
        "may_ack": visitor.may(P.ALERTS_WRITE),
        "truncated": truncated,
        "acknowledged": acknowledged[:100],
    }
    return render(request, "alerts.html", context, visitor)


@router.get("/alerts/{fingerprint}/history")
async def history(
    request: Request, fingerprint: str, visitor: VisitorDep, console: ConsoleDep
) -> Response:
    """What happened to one alert, oldest first, and who did it."""
    _need_alerts(visitor)
    try:
        events = await console.services.history(visitor.session.key, fingerprint)
    except (Refused, Unanswered) as exc:
        raise _failed(exc) from exc
    latest = next((e.alert for e in reversed(events) if e.alert is not None), None)
    context = {"fingerprint": fingerprint, "alert": latest, "lines": history_lines(events)}
    return render(request, "history.html", context, visitor)


@router.post("/alerts/{fingerprint}/ack")
async def acknowledge(
    request: Request, fingerprint: str, visitor: VisitorDep, console: ConsoleDep
) -> Response:
    """Acknowledge an alert as the key's principal (alerting checks the oncall role)."""
    form = await read_form(request)
    check_csrf(form, visitor.session.csrf)
    try:
        await console.services.acknowledge(
            visitor.session.key, fingerprint, form.get("comment", "")[:1000]
        )
    except (Refused, Unanswered) as exc:
        raise _failed(exc) from exc
    return RedirectResponse("/alerts?" + urlencode({"acknowledged": fingerprint}), 303)
