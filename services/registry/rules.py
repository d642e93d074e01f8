"""Registry routes for a model version's alert rules: its overrides of its risk tier's defaults.

``PUT .../rules`` replaces the version's overrides (a rule named like a default replaces it,
``enabled: false`` turns it off); ``GET .../rules`` answers the rules in effect.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from registry.api import Reader, RegistryDep, Update
from registry.handlers import revision
from vigil.adapters.http import InputRejected, error_responses, json_limits
from vigil.drift.verdicts import OUTPUTS
from vigil.wire.records import AlertRule, ModelVersion, Severity
from vigil.wire.rules import effective_rules, rule_errors
from vigil.wire.validation import FieldError

__all__ = ["MAX_RULES", "RuleSet", "rules_router", "with_alert_rules"]

MAX_RULES = 200  # overrides of one version: each is evaluated for every report
rules_router = APIRouter()


class RuleSet(BaseModel):
    """A version's alert rules: those it sets, and those in effect (defaults merged in)."""

    model_id: str
    version: str
    risk_tier: Severity
    overrides: list[AlertRule]
    rules: list[AlertRule]


def rule_set(version: ModelVersion) -> RuleSet:
    """The version's rules as the API answers them."""
    tier = version.risk.severity
    return RuleSet(
        model_id=version.model_id,
        version=version.version,
        risk_tier=tier,
        overrides=version.alert_rules,
        rules=effective_rules(tier, version.alert_rules, version.expected_interval),
    )


def with_alert_rules(
    version: ModelVersion, rules: list[AlertRule], now: datetime
) -> tuple[ModelVersion, list[FieldError]]:
    """The version with ``rules`` as its overrides, or why they do not fit it."""
    if len(rules) > MAX_RULES:
        return version, [FieldError("rules", f"at most {MAX_RULES} rules", f"{len(rules)} rules")]
    subjects = [f.name for f in version.features] + list(OUTPUTS)
    errors = rule_errors(rules, subjects)
    if errors:
        return version, errors
    return version.model_copy(update={"alert_rules": rules, "updated_at": now}), []


@rules_router.get(
    "/v1/models/{model_id}/versions/{version}/rules", responses=error_responses(404, 503)
)
async def get_rules(
    model_id: str, version: str, _: Reader, registry: RegistryDep, response: Response
) -> RuleSet:
    """The version's alert rules in effect: its risk tier's defaults with its overrides."""
    found = await registry.version(model_id, version)
    response.headers["ETag"] = revision(found)
    return rule_set(found)


@rules_router.put(
    "/v1/models/{model_id}/versions/{version}/rules",
    dependencies=[Depends(json_limits)],
    responses=error_responses(400, 404, 409, 412, 503),
)
async def set_rules(rules: list[AlertRule], update: Update) -> RuleSet:
    """Replace the version's alert rule overrides (same name as a default: replaces it)."""

    def change(current: ModelVersion, now: datetime) -> ModelVersion:
        updated, errors = with_alert_rules(current, rules, now)
        if errors:
            raise InputRejected(f"{len(errors)} invalid alert rule(s)", errors)
        return updated

    return rule_set(await update.apply(change))
