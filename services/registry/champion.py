"""Versions' roles: ``GET /v1/models/{id}/comparison`` (two versions side by side, with a
significance test and a verdict), ``POST …/versions/{v}/promote`` (make a version champion on
the strength of a comparison, recorded in the audit trail) and ``PUT …/versions/{v}/status``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from registry.api import Registry, RegistryDep, SettingsDep, Update, Writer
from registry.comparison import compare, summary_line
from registry.handlers import revision, update_time
from registry.pairs_index import micros
from registry.performance import PerformanceReader
from registry.performance_index import within
from vigil.adapters.auth import refuse_model
from vigil.adapters.http import InputRejected, answered_or_503, error_responses, json_limits
from vigil.wire.access import Caller
from vigil.wire.records import ModelVersion, utcnow
from vigil.wire.shapes import Identifier
from vigil.wire.validation import FieldError, describe

__all__ = ["Promotion", "StatusChange", "champion_router"]

champion_router = APIRouter()
Since = Annotated[datetime | None, Query(description="Windows ending and requests from this.")]
Until = Annotated[datetime | None, Query(description="Windows starting and requests before this.")]


async def _comparison(
    registry: Registry,
    first: ModelVersion,
    second: ModelVersion,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """``second`` against ``first`` from the indexes (Redis down: 503)."""
    if first.task != second.task:
        raise InputRejected(
            f"versions {first.version!r} ({first.task}) and {second.version!r} ({second.task})"
            " are of different tasks: they cannot be compared",
            [FieldError("versions", "two versions of the same task", second.task)],
        )
    reports = [
        within(
            await answered_or_503(registry.performance.windows(v.model_id, v.version), "Redis"),
            since,
            until,
        )
        for v in (first, second)
    ]
    requests = await answered_or_503(
        registry.pairs.requests(
            first.model_id,
            None if since is None else micros(since),
            None if until is None else micros(until),
        ),
        "Redis",
    )
    found = compare(first, second, reports[0], reports[1], requests)
    found["since"], found["until"] = since, until
    return found


@champion_router.get("/v1/models/{model_id}/comparison", responses=error_responses(403, 404, 503))
async def comparison(
    model_id: str,
    caller: PerformanceReader,
    registry: RegistryDep,
    versions: Annotated[
        str, Query(description="Two versions, the baseline (e.g. the champion) first: a,b.")
    ],
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    """The second version against the first: each one's performance and value on labelled
    traffic, the difference of accuracy with its 95 % interval and p-value (paired on shared
    requests: McNemar; else a two-proportion z test), the disagreement rate on shared requests,
    and a verdict that is never ``better`` without significance."""
    if not caller.covers(model_id):
        raise refuse_model(caller, model_id)
    names = [v.strip() for v in versions.split(",")]
    if len(names) != 2 or names[0] == names[1] or not all(names):
        raise InputRejected(
            "versions names two different versions of the model, the baseline first",
            [FieldError("versions", "two different versions, comma-separated", describe(versions))],
        )
    first = await registry.version(model_id, names[0])
    second = await registry.version(model_id, names[1])
    return await _comparison(registry, first, second, since, until)


class Promotion(BaseModel):
    """Why a version becomes champion, and what it was compared with (the champion if unset)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
    compared_with: Identifier | None = None


def _champions(registry: Registry, model_id: str, version: str) -> list[ModelVersion]:
    return [
        v
        for v in registry.catalog.versions(model_id)
        if v.status == "champion" and v.version != version
    ]


def _promotable(target: ModelVersion, others: list[ModelVersion]) -> None:
    """409 naming why ``target`` cannot become champion; nothing changes."""
    problem = None
    if target.status == "retired":
        problem = "is retired: a retired version cannot serve again; register a new version"
    elif target.status == "champion" and not others:
        problem = "is already the champion"
    if problem is not None:
        raise InputRejected(
            f"model {target.model_id!r} version {target.version!r} {problem}; nothing changed",
            [FieldError("version", "a challenger or shadow version", target.status)],
            409,
        )


async def _baseline(
    registry: Registry, target: ModelVersion, body: Promotion, champions: list[ModelVersion]
) -> ModelVersion | None:
    """The version the promotion is judged against: ``compared_with``, else the champion."""
    if body.compared_with is None:
        return champions[0] if champions else None
    expected = f"another registered version of model {target.model_id!r}"
    if body.compared_with == target.version:
        raise InputRejected(
            "a version cannot be compared with itself",
            [FieldError("compared_with", expected, describe(body.compared_with))],
        )
    found = await answered_or_503(
        registry.catalog.lookup(target.model_id, body.compared_with), "Kafka"
    )
    if found is None:
        raise InputRejected(
            f"compared_with: model {target.model_id!r} has no version {body.compared_with!r}",
            [FieldError("compared_with", expected, describe(body.compared_with))],
        )
    return found


@champion_router.post(
    "/v1/models/{model_id}/versions/{version}/promote",
    dependencies=[Depends(json_limits)],
    responses=error_responses(404, 409, 503),
)
async def promote(
    model_id: str,
    version: str,
    body: Promotion,
    caller: Writer,
    registry: RegistryDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Make the version champion; the previous champion becomes a challenger. The comparison it
    was promoted on (with ``compared_with``, else the champion) is recorded in the audit trail."""
    await registry.catch_up()
    target = await registry.version(model_id, version)
    champions = _champions(registry, model_id, version)
    _promotable(target, champions)
    baseline = await _baseline(registry, target, body, champions)
    found = None
    if baseline is not None:
        found = await _comparison(registry, baseline, target, None, None)
    # Every version that changes is locked, in one order, and read again under the locks.
    names = sorted({version, *(c.version for c in champions)})
    async with AsyncExitStack() as locks:
        for name in names:
            await locks.enter_async_context(registry.locked(model_id, name, settings))
        await registry.catch_up()
        target = await registry.version(model_id, version)
        current = _champions(registry, model_id, version)
        if {c.version for c in current} - set(names):
            raise InputRejected(
                f"model {model_id!r} got another champion meanwhile; retry", [], 409
            )
        _promotable(target, current)
        now = utcnow()
        promoted = target.model_copy(
            update={"status": "champion", "updated_at": update_time(target, now)}
        )
        await registry.publish(promoted, settings.registry_max_record_bytes)
        for old in current:
            demoted = old.model_copy(
                update={"status": "challenger", "updated_at": update_time(old, now)}
            )
            await registry.publish(demoted, settings.registry_max_record_bytes)
    demoted_names = [c.version for c in current]
    request.state.audit_detail = _audit_detail(caller, promoted, demoted_names, body, found)
    response.headers["ETag"] = revision(promoted)
    return {
        "promoted": promoted.model_dump(mode="json"),
        "demoted": demoted_names,
        "demoted_to": "challenger",
        "reason": body.reason,
        "comparison": found,
    }


def _audit_detail(
    caller: Caller,
    promoted: ModelVersion,
    demoted: list[str],
    body: Promotion,
    found: dict[str, Any] | None,
) -> str:
    """What the audit event says: who promoted what over whom, why, on which comparison."""
    over = f" over {', '.join(demoted)} (now challenger)" if demoted else ""
    judged = summary_line(found) if found else "no comparison (no champion to compare with)"
    detail = (
        f"{caller.principal} promoted {promoted.version} to champion{over}; {judged};"
        f" reason: {body.reason!r}"
    )
    return detail[:1000]


class StatusChange(BaseModel):
    """A version's new role: serving (champion), compared (challenger, shadow) or retired."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["champion", "challenger", "shadow", "retired"]


@champion_router.put(
    "/v1/models/{model_id}/versions/{version}/status",
    dependencies=[Depends(json_limits)],
    responses=error_responses(400, 404, 409, 412, 503),
)
async def set_status(
    body: StatusChange, caller: Writer, update: Update, request: Request
) -> ModelVersion:
    """Promote, demote or retire a version. Services keep a retired version only as a marker:
    its events are refused and its drift state is closed with last reports."""
    before: list[str] = []

    def change(current: ModelVersion, now: datetime) -> ModelVersion:
        before.append(current.status)
        return current.model_copy(update={"status": body.status, "updated_at": now})

    updated = await update.apply(change)
    request.state.audit_detail = (
        f"{caller.principal} set {updated.version} from {before[-1]} to {body.status}"
    )
    return updated
