"""Governance of a model version, pure logic: risk assessments (their tier, history and the
reassessment they are due for) and the lineage a registration declares."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from vigil.wire.records import Lineage, ModelVersion, RiskAssessment, Severity
from vigil.wire.shapes import Text, Timestamp
from vigil.wire.validation import FieldError, describe

__all__ = [
    "RiskInput",
    "assessment",
    "is_overdue",
    "lineage_errors",
    "reassessed",
    "risk_errors",
    "severity",
]

# "<algorithm>:<hex digest>", e.g. sha256:9f86d0…
_HASH = re.compile(r"^[a-z0-9-]{2,16}:[0-9a-fA-F]{8,128}$")
_VERSION = re.compile(r"^[0-9A-Za-z.+!_-]{1,64}$")
_MAX_PACKAGES = 2000


class RiskInput(BaseModel):
    """A risk assessment as a person sends it; who made it is the key's principal."""

    model_config = ConfigDict(extra="forbid")
    probability: int = Field(ge=1, le=5, description="Likelihood the model fails, 1-5.")
    impact: int = Field(ge=1, le=5, description="Harm if it does, 1-5.")
    assessed_at: Timestamp | None = Field(
        default=None, description="When it was assessed (default: now)."
    )
    reassessment_due: Timestamp | None = Field(
        default=None, description="When it must be assessed again; past it, it is overdue."
    )
    rationale: Text | None = Field(default=None, description="Why this probability and impact.")


def severity(probability: int, impact: int) -> Severity:
    """Risk tier from probability x impact (1-25): <=4 low, <=9 medium, <=16 high, else critical."""
    score = probability * impact
    if score <= 4:
        return "low"
    if score <= 9:
        return "medium"
    if score <= 16:
        return "high"
    return "critical"


def risk_errors(risk: RiskInput, now: datetime, prefix: str = "") -> list[FieldError]:
    """Why an assessment cannot be recorded: made in the future, or due before it was made."""
    errors: list[FieldError] = []
    made = risk.assessed_at or now
    if risk.assessed_at is not None and risk.assessed_at > now:
        errors.append(
            FieldError(
                f"{prefix}assessed_at",
                f"a time not after now ({now.isoformat()})",
                risk.assessed_at.isoformat(),
            )
        )
    if risk.reassessment_due is not None and risk.reassessment_due <= made:
        errors.append(
            FieldError(
                f"{prefix}reassessment_due",
                f"a time after the assessment ({made.isoformat()})",
                risk.reassessment_due.isoformat(),
            )
        )
    return errors


def assessment(risk: RiskInput, principal: str | None, now: datetime) -> RiskAssessment:
    """The recorded assessment: its tier, who made it and when."""
    return RiskAssessment(
        probability=risk.probability,
        impact=risk.impact,
        severity=severity(risk.probability, risk.impact),
        assessed_by=principal,
        assessed_at=risk.assessed_at or now,
        reassessment_due=risk.reassessment_due,
        rationale=risk.rationale,
    )


def reassessed(version: ModelVersion, new: RiskAssessment, now: datetime) -> ModelVersion:
    """The version under a new assessment, the old ones kept in ``risk_history`` (oldest
    first; a version registered before histories were kept starts it with its current one)."""
    history = list(version.risk_history) or [version.risk]
    return version.model_copy(
        update={"risk": new, "risk_history": [*history, new], "updated_at": now}
    )


def is_overdue(risk: RiskAssessment, now: datetime) -> bool:
    """Whether the assessment's reassessment date has passed."""
    return risk.reassessment_due is not None and risk.reassessment_due <= now


def lineage_errors(
    lineage: Lineage, version: str, registered: Collection[str], model_id: str
) -> list[FieldError]:
    """Why a declared lineage cannot be this version's: a parent that is not another
    registered version of the model, a hash that is not ``algorithm:hex``, an environment
    with malformed versions."""
    errors: list[FieldError] = []
    parent = lineage.parent_version
    if parent is not None and (parent == version or parent not in registered):
        errors.append(
            FieldError(
                "lineage.parent_version",
                f"another registered version of model {model_id!r}"
                f" ({', '.join(sorted(registered)[:20]) or 'none yet'})",
                describe(parent),
            )
        )
    digest = lineage.training_data_hash
    if digest is not None and not _HASH.match(digest):
        errors.append(
            FieldError(
                "lineage.training_data_hash",
                "algorithm:hex digest, e.g. sha256:9f86d081884c7d65…",
                describe(digest),
            )
        )
    environment = lineage.validated_environment
    if environment is None:
        return errors
    if environment.python is not None and not _VERSION.match(environment.python):
        errors.append(
            FieldError(
                "lineage.validated_environment.python",
                "a version such as 3.11.9",
                describe(environment.python),
            )
        )
    if len(environment.packages) > _MAX_PACKAGES:
        errors.append(
            FieldError(
                "lineage.validated_environment.packages",
                f"at most {_MAX_PACKAGES} packages",
                str(len(environment.packages)),
            )
        )
    for name, number in environment.packages.items():
        if not _VERSION.match(name) or not _VERSION.match(number):
            errors.append(
                FieldError(
                    f"lineage.validated_environment.packages.{name[:64]}",
                    "a distribution name and its version, e.g. scikit-learn: 1.5.2",
                    describe(number),
                )
            )
    return errors
