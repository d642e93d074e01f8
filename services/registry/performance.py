"""``GET /v1/models/{id}/versions/{v}/performance`` and ``…/fairness``: the latest revision of
each window's ``PerformanceReport`` (kept by ``registry.performance_index``), whole or its
fairness and segments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from registry.api import RegistryDep
from registry.performance_index import within
from vigil.adapters.auth import allowed, refuse_model
from vigil.adapters.http import answered_or_503, error_responses
from vigil.wire.access import Caller, Permission

__all__ = ["performance_router"]

performance_router = APIRouter()
# Performance is for the roles that judge models (sme, data_scientist, auditor, admin).
PerformanceReader = Annotated[Caller, Depends(allowed(Permission.PERFORMANCE_READ))]


@performance_router.get(
    "/v1/models/{model_id}/versions/{version}/performance",
    responses=error_responses(403, 404, 503),
)
async def performance(
    model_id: str,
    version: str,
    caller: PerformanceReader,
    registry: RegistryDep,
    since: Annotated[datetime | None, Query(description="Windows ending after this.")] = None,
    until: Annotated[datetime | None, Query(description="Windows starting before this.")] = None,
) -> list[dict[str, Any]]:
    """The latest revision of the version's performance report of each window, oldest first."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    await registry.version(model_id, version)  # 404 for a version not registered
    reports = await answered_or_503(registry.performance.windows(model_id, version), "Redis")
    return [r.model_dump(mode="json") for r in within(reports, since, until)]


@performance_router.get(
    "/v1/models/{model_id}/versions/{version}/fairness",
    responses=error_responses(403, 404, 503),
)
async def fairness(
    model_id: str,
    version: str,
    caller: PerformanceReader,
    registry: RegistryDep,
    since: Annotated[datetime | None, Query(description="Windows ending after this.")] = None,
    until: Annotated[datetime | None, Query(description="Windows starting before this.")] = None,
) -> list[dict[str, Any]]:
    """Each window's fairness over the version's sensitive attributes (and its segments'
    performance), from the latest revision of its report, oldest first."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    await registry.version(model_id, version)
    reports = await answered_or_503(registry.performance.windows(model_id, version), "Redis")
    fields = {"report_id", "window_start", "window_end", "revision", "labelled"}
    return [
        r.model_dump(mode="json", include=fields | {"fairness", "segments"})
        for r in within(reports, since, until)
    ]
