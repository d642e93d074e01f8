"""Registry logic: risk tiers, registrations, reference uploads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from registry.handlers import ModelRegistration, new_version, severity, with_reference
from vigil.wire.records import utcnow

REGISTRATION = {
    "model_id": "credit-risk",
    "version": "1.0.0",
    "task": "binary",
    "features": [{"name": "income", "type": "numeric"}, {"name": "region", "type": "categorical"}],
    "risk": {"probability": 3, "impact": 4},
    "owner": "risk-team",
    "purpose": "loan approval",
}


@pytest.mark.parametrize(
    ("probability", "impact", "tier"),
    [
        (1, 1, "low"),
        (2, 2, "low"),
        (1, 5, "medium"),
        (3, 3, "medium"),
        (3, 4, "high"),
        (4, 4, "high"),
        (4, 5, "critical"),
        (5, 5, "critical"),
    ],
)
def test_severity_is_probability_times_impact(probability: int, impact: int, tier: str) -> None:
    assert severity(probability, impact) == tier


def test_a_registration_becomes_a_model_version_with_its_risk_tier() -> None:
    now = utcnow()
    version = new_version(ModelRegistration.model_validate(REGISTRATION), now)
    assert version.key == "credit-risk/1.0.0"
    assert version.risk.severity == "high"
    assert (version.created_at, version.reference, version.status) == (now, None, "champion")


def test_registration_rejects_repeated_features_and_bad_ids() -> None:
    with pytest.raises(ValidationError, match="model_id"):
        ModelRegistration.model_validate(dict(REGISTRATION, model_id="has space"))
    repeated = dict(REGISTRATION, features=REGISTRATION["features"] * 2)
    with pytest.raises(ValidationError, match=r"repeated: \['income', 'region'\]"):
        ModelRegistration.model_validate(repeated)


def test_reference_rows_are_checked_then_profiled() -> None:
    version = new_version(ModelRegistration.model_validate(REGISTRATION), utcnow())
    _, errors = with_reference(version, [{"income": "lots", "region": "eu"}, 3], utcnow())
    assert [(e.index, e.field) for e in errors] == [(0, "features.income"), (1, "<row>")]
    rows = [{"income": float(i), "region": "eu" if i % 2 else "us"} for i in range(100)]
    updated, errors = with_reference(version, rows, utcnow())
    assert errors == []
    assert updated.reference is not None
    assert updated.reference.source == "uploaded"
    assert updated.reference.row_count == 100
    assert sorted(updated.reference.features[1].categories) == ["eu", "us"]
