"""The model page (versions, drift heat map, data quality, performance and value, fairness,
champion against challenger, alerts) and a drift window's page, read with the visitor's key.

Sections are fetched at once; one the key's roles may not read (403) shows a short note
instead of failing the page. A model outside the key's scope is "Not found" (404), as one
that does not exist: the console does not tell which models exist beyond the key's scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.handlers import sort_alerts
from console.model_views import (
    fairness_tables,
    heat_map,
    performance_charts,
    pick_version,
    quality_chart,
    segment_names,
    window_features,
)
from console.upstream import Refused, Services, Unanswered
from console.web import ConsoleDep, PageError, VisitorDep, page_failure, render
from vigil.wire.access import Permission
from vigil.wire.records import Alert, utcnow

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
P = Permission
# The heat map's width: the registry merges the windows into at most this many buckets.
HEAT_COLUMNS = 200
MAX_DAYS = 30
T = TypeVar("T")


class Section:
    """A section's answer, or why it is not shown (the key's roles, or nothing there)."""

    def __init__(self, value: Any = None, note: str = "") -> None:
        self.value = value
        self.note = note


async def _section(call: Awaitable[T], what: str) -> Section:
    """The call's answer; a refusal becomes a note (a 401 or an unreachable service fails
    the page, as elsewhere)."""
    try:
        return Section(await call)
    except Refused as exc:
        if exc.status == 401:
            raise page_failure(exc) from exc
        if exc.status == 403:
            return Section(note=f"Your key's roles do not read {what}.")
        return Section(note=f"No {what}: {exc.detail}")


def _not_found(model_id: str) -> PageError:
    return PageError(404, "Not found", f"No model {model_id!r} in your key's scope.")


async def _model(services: Services, key: str, model_id: str) -> Mapping[str, Any]:
    """The model with its versions; 404 when unknown *or* outside the key's scope."""
    try:
        found = await services.model(key, model_id)
    except Refused as exc:
        if exc.status in (403, 404):  # never say that a model outside the scope exists
            raise _not_found(model_id) from exc
        raise page_failure(exc) from exc
    except Unanswered as exc:
        raise page_failure(exc) from exc
    if not found.get("versions"):
        raise _not_found(model_id)
    return found


def _rival(versions: list[Mapping[str, Any]], shown: str) -> tuple[str, str] | None:
    """The two versions to compare: the champion first, then the one shown (or, when the
    champion is shown, its newest challenger or shadow)."""
    champion = next((v["version"] for v in versions if v.get("status") == "champion"), None)
    if champion is None:
        return None
    if shown != champion:
        return str(champion), shown
    others = [v for v in versions if v.get("status") in ("challenger", "shadow")]
    return (str(champion), str(others[-1]["version"])) if others else None


async def _nothing(note: str) -> Section:
    return Section(note=note)


@router.get("/models/{model_id}")
async def model_page(
    request: Request,
    model_id: str,
    visitor: VisitorDep,
    console: ConsoleDep,
    version: str = "",
    days: int = 1,
    segment: str = "",
) -> Response:
    """One model: its versions, and the chosen version's drift (by ``segment`` too, when
    asked), quality, performance, fairness, comparison and alerts over the last ``days``."""
    key, services = visitor.session.key, console.services
    model = await _model(services, key, model_id)
    versions: list[Mapping[str, Any]] = list(model["versions"])
    chosen = pick_version(versions, version[:200])
    if chosen is None:
        raise PageError(404, "Not found", f"Model {model_id!r} has no version {version!r}.")
    shown, days = str(chosen["version"]), min(max(days, 1), MAX_DAYS)
    until = utcnow()
    since = until - timedelta(days=days)
    rival = _rival(versions, shown)
    perf = visitor.may(P.PERFORMANCE_READ)
    no_perf = "Your key's roles do not read performance."
    try:
        heat, reports, fairness, comparison, alerts, by_segment = await asyncio.gather(
            _section(services.heatmap(key, model_id, shown, since, until, HEAT_COLUMNS), "drift"),
            _section(services.performance(key, model_id, shown, since), "performance")
            if perf
            else _nothing(no_perf),
            _section(services.fairness(key, model_id, shown, since), "fairness")
            if perf
            else _nothing(no_perf),
            _section(services.comparison(key, model_id, rival, since), "the comparison")
            if perf and rival
            else _nothing(no_perf if rival else "No champion and challenger to compare."),
            _section(services.model_alerts(key, model_id), "alerts")
            if visitor.may(P.ALERTS_READ)
            else _nothing("Your key's roles do not read alerts."),
            _section(
                services.segment_drift(key, model_id, shown, segment[:300], since),
                "drift by segment",
            )
            if segment
            else _nothing(""),
        )
    except Unanswered as exc:
        raise page_failure(exc) from exc
    metric, metric_chart, value_chart = performance_charts(reports.value or [])
    open_alerts: list[Alert] = []
    closed: list[Alert] = []
    for alert in (alerts.value or ([], False))[0]:
        (closed if alert.status == "resolved" else open_alerts).append(alert)
    context = {
        "model": model,
        "model_id": model_id,
        "model_href": f"/models/{quote(model_id, safe='')}",
        "versions": versions,
        "chosen": chosen,
        "shown": shown,
        "days": days,
        "day_choices": (1, 7, 30),
        "heat": heat,
        "heatmap": heat_map(heat.value, model_id, shown) if heat.value else None,
        "quality": quality_chart(heat.value) if heat.value else None,
        "reports": reports,
        "metric": metric,
        "metric_chart": metric_chart,
        "value_chart": value_chart,
        "currency": next((r.get("currency") for r in reports.value or [] if r.get("currency")), ""),
        "fairness": fairness,
        "fairness_tables": fairness_tables(fairness.value or []),
        "comparison": comparison,
        "rival": rival,
        "alerts": alerts,
        "open_alerts": sort_alerts(open_alerts),
        "closed_alerts": sorted(closed, key=lambda a: a.updated_at, reverse=True)[:50],
        "segment_names": segment_names(chosen),
        "segment": segment[:300],
        "by_segment": by_segment if segment else None,
    }
    return render(request, "model.html", context, visitor)


@router.get("/models/{model_id}/versions/{version}/windows/{window_start}")
async def window_page(
    request: Request,
    model_id: str,
    version: str,
    window_start: str,
    visitor: VisitorDep,
    console: ConsoleDep,
    feature: str = "",
) -> Response:
    """One drift window: every feature's statistics beside its threshold, and its
    distribution against the reference's where the report carries it."""
    key, services = visitor.session.key, console.services
    model, report = await asyncio.gather(
        _model(services, key, model_id),
        _section(services.window(key, model_id, version, window_start), "drift"),
    )
    chosen = pick_version(list(model["versions"]), version)
    if chosen is None or report.value is None:
        detail = report.note or f"Model {model_id!r} has no version {version!r}."
        raise PageError(404, "Not found", detail)
    context = {
        "model_id": model_id,
        "version": version,
        "back": f"/models/{quote(model_id, safe='')}?" + urlencode({"version": version}),
        "report": report.value,
        "features": window_features(report.value, chosen, feature[:300]),
        "reference": chosen.get("reference"),
    }
    return render(request, "window.html", context, visitor)
