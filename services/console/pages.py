"""The fleet overview and the alerts pages, read through the services with the visitor's key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from console.handlers import (
    STATES,
    TIERS,
    fleet_index,
    fleet_rows,
    history_lines,
    select_rows,
    split_alerts,
    worst_first,
)
from console.silencing import covered
from console.upstream import ALERT_PAGE, Refused, Services, Unanswered
from console.web import (
    ConsoleDep,
    Visitor,
    VisitorDep,
    check_csrf,
    page_failure,
    read_form,
    render,
)
from vigil.wire.access import Permission
from vigil.wire.records import Alert

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
P = Permission


async def _open_alerts(
    services: Services, key: str, firing_from: str = "", acknowledged_from: str = ""
) -> tuple[list[Alert], dict[str, str]]:
    """A page each of the firing and the acknowledged alerts (from the cursors given, else the
    newest), and where each status's next page starts, for the statuses that have one."""
    (firing, more), (acked, more_acked) = await asyncio.gather(
        services.alerts(key, "firing", firing_from or None),
        services.alerts(key, "acknowledged", acknowledged_from or None),
    )
    following = {"firing": more, "acknowledged": more_acked}
    return firing + acked, {status: at for status, at in following.items() if at}


async def _fleet_summary(
    services: Services, key: str
) -> dict[tuple[str, str], Mapping[str, Any]] | None:
    """The registry's one-call summary of every version (traffic, drift, performance, last
    label), or None when it is refused: the columns then show "—"."""
    try:
        return fleet_index(await services.fleet(key))
    except Refused as exc:
        if exc.status in (403, 404):
            return None
        raise


@router.get("/fleet")
async def fleet(
    request: Request,
    visitor: VisitorDep,
    console: ConsoleDep,
    tier: str = "",
    owner: str = "",
    status: str = "",
    state: str = "",
) -> Response:
    """Every model version in the key's scope, worst first: alerts, traffic, drift, performance."""
    key, services = visitor.session.key, console.services

    async def readable_alerts() -> tuple[list[Alert] | None, dict[str, str]]:
        return await _open_alerts(services, key) if visitor.may(P.ALERTS_READ) else (None, {})

    try:
        models, summary, (alerts, truncated) = await asyncio.gather(
            services.models(key), _fleet_summary(services, key), readable_alerts()
        )
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Not possible now") from exc
    rows = fleet_rows(models, alerts, summary)
    shown = worst_first(select_rows(rows, tier, owner, status, state))
    context: dict[str, Any] = {
        "rows": shown,
        "total": len(rows),
        "filters": {"tier": tier, "owner": owner, "status": status, "state": state},
        "tiers": TIERS,
        "owners": sorted({r.owner for r in rows if r.owner}),
        "statuses": ("champion", "challenger", "shadow", "retired"),
        "states": STATES,
        "alerts_readable": alerts is not None,
        "performance_readable": any(r.performance_readable for r in rows) or not rows,
        "fleet_known": summary is not None,
        "truncated": bool(truncated),
    }
    return render(request, "fleet.html", context, visitor)


def _need_alerts(visitor: Visitor) -> None:
    visitor.need(P.ALERTS_READ, "read alerts")


@router.get("/alerts")
async def alerts(
    request: Request,
    visitor: VisitorDep,
    console: ConsoleDep,
    acknowledged: str = "",
    firing_from: str = Query("", max_length=64),
    acknowledged_from: str = Query("", max_length=64),
) -> Response:
    """Firing, acknowledged and silenced alerts, and the silences in force: the newest page of
    each status, or the page a ``firing_from`` / ``acknowledged_from`` cursor starts."""
    _need_alerts(visitor)
    key = visitor.session.key
    try:
        (found, following), silences = await asyncio.gather(
            _open_alerts(console.services, key, firing_from, acknowledged_from),
            console.services.silences(key),
        )
    except (Refused, Unanswered) as exc:
        raise page_failure(exc, "Not possible now") from exc
    at = {"firing_from": firing_from, "acknowledged_from": acknowledged_from}

    def older_than(status: str, cursor: str) -> str:  # the other status stays where it is
        params = {**at, f"{status}_from": cursor}
        return "/alerts?" + urlencode({k: v for k, v in params.items() if v})

    older = {status: older_than(status, cursor) for status, cursor in following.items()}
    context = {
        "lists": split_alerts(covered(found, silences)),
        "silences": [s for s in silences if s.get("status") == "active"],
        "may_ack": visitor.may(P.ALERTS_WRITE),
        "older": older,
        "paged": bool(firing_from or acknowledged_from),
        "page_size": ALERT_PAGE,
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
        raise page_failure(exc, "Not possible now") from exc
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
        raise page_failure(exc, "Not possible now") from exc
    return RedirectResponse("/alerts?" + urlencode({"acknowledged": fingerprint}), 303)
