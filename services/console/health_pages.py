"""The health page: Vigil's own processes as their Prometheus ``/metrics`` show them, read
concurrently (each within a short timeout) at every visit. ``/healthz``, ``/readyz`` and
``/metrics`` stay the console's own probes (``vigil.adapters.http.create_api``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.health import ServiceHealth, down, summarise_metrics
from console.upstream import Services, Unanswered
from console.web import ConsoleDep, SettingsDep, VisitorDep, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


async def _read(services: Services, name: str, url: str, seconds: float) -> ServiceHealth:
    try:
        return summarise_metrics(name, url, await services.scrape(url, seconds))
    except Unanswered as exc:
        return down(name, url, exc.reason)


@router.get("/health")
async def health(
    request: Request, visitor: VisitorDep, console: ConsoleDep, settings: SettingsDep
) -> Response:
    """Each configured process: up or down, events, lag, dead letters, notifications, latency."""
    endpoints = settings.console_metrics_endpoints
    timeout = settings.console_metrics_timeout_seconds
    found = await asyncio.gather(
        *(_read(console.services, name, url, timeout) for name, url in endpoints.items())
    )
    context = {"services": found, "down": sum(1 for s in found if not s.up)}
    return render(request, "health.html", context, visitor)
