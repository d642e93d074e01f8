"""``POST /v1/environments``: the serving environment an app reports over HTTP (the SDK with
an HTTP destination), onto ``vigil.environments.v1`` as the SDK over Kafka writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from prediction_logger.store import PredictionLog
from vigil.adapters.auth import allowed, refuse_model
from vigil.adapters.http import error_responses, provider, stored_or_503
from vigil.wire.access import Caller, Permission
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport
from vigil.wire.records import utcnow
from vigil.wire.shapes import Identifier
from vigil.wire.topics import ENVIRONMENTS

__all__ = ["EnvironmentIn", "environments_router"]

environments_router = APIRouter()
CODEC = Codec(EnvironmentReport)
LogDep = Annotated[PredictionLog, Depends(provider(PredictionLog))]
Producer = Annotated[Caller, Depends(allowed(Permission.PREDICTIONS_WRITE))]
Short = Annotated[str, Field(min_length=1, max_length=200)]


class EnvironmentIn(BaseModel):
    """One host's environment serving one model version (at most 5,000 distributions)."""

    model_config = ConfigDict(extra="forbid")

    model_id: Identifier
    model_version: Identifier
    host: Short
    python: Annotated[str, Field(min_length=1, max_length=50)]
    packages: Annotated[dict[Short, Short], Field(max_length=5000)] = Field(default_factory=dict)
    reported_at: datetime | None = None
    sdk: Annotated[str, Field(max_length=50)] | None = None


@environments_router.post(
    "/v1/environments", status_code=202, responses=error_responses(400, 403, 503)
)
async def report_environment(body: EnvironmentIn, caller: Producer, log: LogDep) -> dict[str, Any]:
    """Publish one host's serving environment (keyed ``model/version/host``), which the
    registry compares with the version's validated one and alerting judges."""
    if not caller.covers(body.model_id):
        raise refuse_model(caller, body.model_id)
    report = EnvironmentReport(
        **body.model_dump(exclude={"reported_at"}), reported_at=body.reported_at or utcnow()
    )
    await stored_or_503(
        log.bus.send(ENVIRONMENTS.name, [(report.key.encode(), CODEC.encode(report))])
    )
    return {"accepted": 1, "key": report.key}
