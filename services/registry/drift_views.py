"""Drift over time for the console's model and fleet pages: ``GET …/drift/heatmap``,
``GET …/drift/windows/{window_start}`` and ``GET /v1/fleet`` (kept by ``registry.drift_index``
and ``registry.performance_index``); and drift per segment, ``GET …/drift/segments``
(``registry.segment_drift``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from registry.api import Reader, RegistryDep, SettingsDep
from registry.drift_answers import fleet_entry, heatmap_answer
from registry.drift_rows import bucket_start, from_micros, micros
from registry.performance_index import VersionPerformance
from registry.segment_drift import read_archive
from vigil.adapters.auth import refuse_model
from vigil.adapters.http import InputRejected, answered_or_503, error_responses
from vigil.drift.segments import segment_drift, segment_names
from vigil.drift.verdicts import min_events
from vigil.wire.access import Permission
from vigil.wire.base import as_utc, utcnow
from vigil.wire.validation import FieldError, describe

__all__ = ["drift_router"]

drift_router = APIRouter()
_VERSION = "/v1/models/{model_id}/versions/{version}"
_HOUR = 3_600_000_000
_UNKNOWN = VersionPerformance(None, None)


@drift_router.get(f"{_VERSION}/drift/heatmap", responses=error_responses(400, 403, 404, 503))
async def drift_heatmap(
    model_id: str,
    version: str,
    caller: Reader,
    registry: RegistryDep,
    since: Annotated[
        datetime | None, Query(description="Windows starting from this (default: 24 h ago).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Windows starting before this.")] = None,
    columns: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> dict[str, Any]:
    """Each feature's worst drift statistic and verdicts per column over time, oldest first."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    found = await registry.version(model_id, version)  # 404 for a version not registered
    end = as_utc(until) if until is not None else utcnow()
    start = as_utc(since) if since is not None else end - timedelta(hours=24)
    if start >= end:
        raise InputRejected(
            "the range is empty",
            [FieldError("since", f"a time before until ({end.isoformat()})", describe(since))],
        )
    heatmap = await answered_or_503(
        registry.drift.heatmap(model_id, version, micros(start), micros(end), columns), "Redis"
    )
    return heatmap_answer(found, heatmap, start, end)


@drift_router.get(
    f"{_VERSION}/drift/windows/{{window_start}}", responses=error_responses(403, 404, 503)
)
async def drift_window(
    model_id: str, version: str, window_start: datetime, caller: Reader, registry: RegistryDep
) -> dict[str, Any]:
    """The latest report of one window of the version (its start as an ISO timestamp)."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    await registry.version(model_id, version)
    start = as_utc(window_start)
    report = await answered_or_503(registry.drift.window(model_id, version, start), "Redis")
    if report is None:
        raise InputRejected(
            f"model {model_id!r} version {version!r} has no window starting at"
            f" {start.isoformat()} (or none of the days kept)",
            [],
            404,
        )
    return report.model_dump(mode="json")


@drift_router.get(f"{_VERSION}/drift/segments", responses=error_responses(403, 404, 409, 422))
async def drift_by_segment(
    model_id: str,
    version: str,
    caller: Reader,
    registry: RegistryDep,
    settings: SettingsDep,
    segment: Annotated[str, Query(max_length=300, description="A segment the version declares.")],
    since: Annotated[datetime | None, Query(description="Default: 24 h before until.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> dict[str, Any]:
    """Each group of ``segment`` judged against the reference on the archived predictions of
    the period (``registry.segment_drift``), largest group first."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    found = await registry.version(model_id, version)
    end = as_utc(until) if until is not None else utcnow()
    start = as_utc(since) if since is not None else end - timedelta(hours=24)
    names = segment_names(found)
    if segment not in names:
        expected = "a segment of the version: " + (", ".join(names) or "it declares none")
        raise InputRejected(f"no segment {segment!r}", [FieldError("segment", expected, segment)])
    if not timedelta(0) < end - start <= timedelta(days=31):
        expected = f"a period of at most 31 days ending at until ({end.isoformat()})"
        raise InputRejected("since: not a period", [FieldError("since", expected, describe(since))])
    if found.reference is None:
        raise InputRejected(f"{model_id} {version} has no reference to judge against yet", [], 409)
    limit = settings.registry_segment_drift_max_rows
    rows = await asyncio.to_thread(
        read_archive, settings.registry_archive_url, found, start, end, limit
    )
    groups = await asyncio.to_thread(segment_drift, found, segment, rows)
    return {
        "model_id": model_id,
        "version": version,
        "segment": segment,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "events": len(rows.features),
        "truncated": rows.truncated,
        "min_events": min_events(found),
        "groups": groups,
    }


@drift_router.get("/v1/fleet", responses=error_responses(403, 503), response_class=JSONResponse)
async def fleet(caller: Reader, registry: RegistryDep) -> JSONResponse:
    """Every version in the key's scope: traffic per hour over 24 h, its latest drift verdicts
    and, for a key that may read performance, its latest performance window."""
    now = utcnow()
    since = bucket_start(micros(now), 3600) - 23 * _HOUR
    catalog = registry.catalog
    versions = [
        (model_id, v.version)
        for model_id in catalog.model_ids()
        if caller.covers(model_id)
        for v in catalog.versions(model_id)
    ]
    drift = await answered_or_503(registry.drift.fleet(versions, since), "Redis")
    readable = caller.may(Permission.PERFORMANCE_READ)
    performance = (
        await answered_or_503(registry.performance.latest(versions), "Redis") if readable else {}
    )
    start = from_micros(since)
    entries = []
    for key in versions:
        kept = performance.get(key, _UNKNOWN)
        entries.append(
            fleet_entry(*key, start, drift[key], kept.latest, kept.last_label_at, readable)
        )
    # Already plain JSON values: serialised as they are (a 1,000-version answer is ~0.7 MB).
    return JSONResponse({"generated_at": now.isoformat(), "versions": entries})
