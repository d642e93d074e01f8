"""A version's governance on the registry: ``PUT …/versions/{v}/risk`` (a new risk
assessment, the old ones kept in its history, audited) and ``GET …/versions/{v}/environment``
(each host serving it, as the SDK reported, and how it differs from what was validated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from registry.api import Reader, RegistryDep, Update, Writer
from registry.risk import RiskInput, assessment, reassessed, risk_errors
from vigil.adapters.http import InputRejected, answered_or_503, error_responses, json_limits
from vigil.wire.environments import mismatches
from vigil.wire.records import Environment, ModelVersion, RiskAssessment, utcnow

__all__ = ["governance_router"]

governance_router = APIRouter()


def _risk_line(risk: RiskAssessment) -> str:
    due = risk.reassessment_due.isoformat() if risk.reassessment_due else "none"
    return (
        f"probability {risk.probability} x impact {risk.impact} = {risk.severity};"
        f" reassessment due {due}"
    )


@governance_router.put(
    "/v1/models/{model_id}/versions/{version}/risk",
    dependencies=[Depends(json_limits)],
    responses=error_responses(404, 409, 412, 503),
)
async def reassess_risk(
    body: RiskInput, caller: Writer, update: Update, request: Request
) -> ModelVersion:
    """Record a new risk assessment of the version (by the key's principal); the previous ones
    stay in ``risk_history``. The tier of its alerts follows the new severity."""
    errors = risk_errors(body, utcnow())
    if errors:
        raise InputRejected("the risk assessment cannot be recorded", errors)
    before: list[RiskAssessment] = []

    def change(current: ModelVersion, now: datetime) -> ModelVersion:
        before.append(current.risk)
        return reassessed(current, assessment(body, caller.principal, now), now)

    updated = await update.apply(change)
    rationale = f"; rationale: {body.rationale!r}" if body.rationale else ""
    request.state.audit_detail = (
        f"{caller.principal} reassessed the risk of {updated.version}: {_risk_line(updated.risk)}"
        f" (was {before[0].severity}){rationale}"
    )[:1000]
    return updated


def _validated(version: ModelVersion) -> Environment | None:
    return version.lineage.validated_environment


@governance_router.get(
    "/v1/models/{model_id}/versions/{version}/environment", responses=error_responses(404, 503)
)
async def environment(
    model_id: str, version: str, _: Reader, registry: RegistryDep
) -> dict[str, Any]:
    """Each host serving the version (as the SDK reported when it started logging for it), and
    how its environment differs from the one the version was validated in."""
    found = await registry.version(model_id, version)
    await answered_or_503(registry.environments.catch_up(), "Kafka")
    validated = _validated(found)
    hosts = []
    for report in registry.environments.of(model_id, version):
        differences = [] if validated is None else mismatches(validated, report)
        hosts.append(
            {
                "host": report.host,
                "python": report.python,
                "packages": report.packages,
                "reported_at": report.reported_at,
                "sdk": report.sdk,
                "mismatches": [
                    {
                        "kind": m.kind,
                        "name": m.name,
                        "expected": m.expected,
                        "served": m.served,
                        "message": m.describe(),
                    }
                    for m in differences
                ],
            }
        )
    return {
        "model_id": model_id,
        "version": version,
        "validated_environment": validated,
        "hosts": hosts,
        "mismatched_hosts": sum(bool(h["mismatches"]) for h in hosts),
    }
