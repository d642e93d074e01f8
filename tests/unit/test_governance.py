"""Lineage and governance in the registry, on fakes: the fields a registration declares, risk
reassessments with their history, the overdue flag, and serving environments' mismatches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from registry.environments import EnvironmentBook
from tests.access import ADMIN, AUDIT_CODEC, api_key, bearer, fake_guard
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport, mismatches
from vigil.wire.records import Environment, ModelVersion, utcnow
from vigil.wire.topics import AUDIT

VALIDATED = {"python": "3.11.9", "packages": {"scikit-learn": "1.5.2", "numpy": "2.1.3"}}


def governed(model_id: str, version: str, **extra: Any) -> dict[str, Any]:
    body = one_feature_model(model_id, version)
    body.update(
        team="credit-analytics",
        kpi="default rate below 2 %",
        purpose="loan approval",
        lineage={
            "training_data": "s3://bucket/train-2026-10.parquet",
            "training_data_hash": "sha256:" + "ab" * 32,
            "code_version": "9f2c1e7",
            "validated_environment": VALIDATED,
        },
    )
    body.update(extra)
    return body


@pytest.fixture
def audit() -> FakeBus:
    return FakeBus()


@pytest.fixture
def book() -> EnvironmentBook:
    return EnvironmentBook()


@pytest.fixture
def client(audit: FakeBus, book: EnvironmentBook) -> Iterator[TestClient]:
    adapters = Registry(FakeBus(), FakeCatalog([MODEL], keep_retired=True), environments=book)
    app = create_app(adapters=adapters, guard=fake_guard(audit=audit))
    with TestClient(app, headers=ADMIN) as client:
        yield client


def test_a_registration_keeps_its_lineage_team_kpi_and_first_assessment(
    client: TestClient,
) -> None:
    response = client.post("/v1/models", json=governed("gov", "1"))
    assert response.status_code == 201, response.text
    version = client.get("/v1/models/gov/versions/1").json()
    assert version["team"] == "credit-analytics" and version["kpi"] == "default rate below 2 %"
    assert version["lineage"]["training_data_hash"] == "sha256:" + "ab" * 32
    assert version["lineage"]["validated_environment"] == VALIDATED
    assert version["risk"]["assessed_by"] == "admin"
    assert version["risk_history"] == [version["risk"]]


def test_a_parent_that_is_not_a_registered_version_is_refused_naming_it(
    client: TestClient,
) -> None:
    assert client.post("/v1/models", json=governed("gov", "1")).status_code == 201
    body = governed("gov", "2")
    body["lineage"]["parent_version"] = "0.9"
    refused = client.post("/v1/models", json=body)
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert error["field"] == "lineage.parent_version" and "'1'" not in error["received"]
    assert "1" in error["expected"]
    body["lineage"]["parent_version"] = "1"
    assert client.post("/v1/models", json=body).status_code == 201
    assert client.get("/v1/models/gov/versions/2").json()["lineage"]["parent_version"] == "1"


def test_a_reassessment_due_before_the_assessment_is_refused(client: TestClient) -> None:
    now = utcnow()
    risk = {
        "probability": 2,
        "impact": 2,
        "assessed_at": now.isoformat(),
        "reassessment_due": (now - timedelta(days=1)).isoformat(),
    }
    refused = client.post("/v1/models", json=governed("gov", "1", risk=risk))
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["risk.reassessment_due"]
    bad_hash = governed("gov", "1")
    bad_hash["lineage"]["training_data_hash"] = "not a hash"
    refused = client.post("/v1/models", json=bad_hash)
    assert [e["field"] for e in refused.json()["errors"]] == ["lineage.training_data_hash"]


def test_a_reassessment_is_recorded_in_the_history_and_the_audit_trail(
    client: TestClient, audit: FakeBus
) -> None:
    assert client.post("/v1/models", json=governed("gov", "1")).status_code == 201
    etag = client.get("/v1/models/gov/versions/1").headers["ETag"]
    due = (utcnow() + timedelta(days=180)).isoformat()
    body = {"probability": 4, "impact": 5, "reassessment_due": due, "rationale": "wider use"}
    answer = client.put("/v1/models/gov/versions/1/risk", json=body, headers={"If-Match": etag})
    assert answer.status_code == 200, answer.text
    version = answer.json()
    assert version["risk"]["severity"] == "critical" and version["risk"]["rationale"] == "wider use"
    assert [r["severity"] for r in version["risk_history"]] == ["low", "critical"]
    stale = client.put("/v1/models/gov/versions/1/risk", json=body, headers={"If-Match": etag})
    assert stale.status_code == 412
    events = [AUDIT_CODEC.decode(v) for _, v in audit.messages[AUDIT.name]]
    (recorded,) = [e for e in events if e.action.endswith("/risk") and e.status == 200]
    assert recorded.principal == "admin" and recorded.model_id == "gov"
    assert recorded.detail is not None and "= critical" in recorded.detail
    assert "was low" in recorded.detail and "wider use" in recorded.detail


def test_reassessing_needs_the_models_write_permission(client: TestClient) -> None:
    assert client.post("/v1/models", json=governed("gov", "1")).status_code == 201
    secret, record = api_key("audrey", ["auditor"])
    app = client.app
    app.state.guard.keyring.apply(record)  # type: ignore[attr-defined]
    body = {"probability": 1, "impact": 1}
    refused = client.put("/v1/models/gov/versions/1/risk", json=body, headers=bearer(secret))
    assert refused.status_code == 403


def test_the_listing_flags_an_overdue_reassessment(client: TestClient) -> None:
    past = utcnow() - timedelta(days=400)
    risk = {
        "probability": 3,
        "impact": 3,
        "assessed_at": past.isoformat(),
        "reassessment_due": (past + timedelta(days=365)).isoformat(),
    }
    assert client.post("/v1/models", json=governed("gov", "1", risk=risk)).status_code == 201
    assert client.post("/v1/models", json=governed("gov", "2")).status_code == 201
    (listed,) = [m for m in client.get("/v1/models").json() if m["model_id"] == "gov"]
    flags = {v["version"]: v["reassessment_overdue"] for v in listed["versions"]}
    assert flags == {"1": True, "2": False}
    assert listed["versions"][0]["team"] == "credit-analytics"
    assert listed["versions"][0]["risk"]["reassessment_due"] is not None


def report(host: str, python: str, packages: dict[str, str]) -> EnvironmentReport:
    return EnvironmentReport(
        model_id="gov",
        model_version="1",
        host=host,
        python=python,
        packages=packages,
        reported_at=utcnow(),
    )


def test_mismatches_name_python_missing_and_other_versions() -> None:
    validated = Environment.model_validate(VALIDATED)
    same = report("a", "3.11.9", {"Scikit_Learn": "1.5.2", "numpy": "2.1.3", "extra": "1"})
    assert mismatches(validated, same) == []
    other = report("b", "3.12.1", {"scikit-learn": "1.4.0"})
    found = [(m.kind, m.name, m.expected, m.served) for m in mismatches(validated, other)]
    assert found == [
        ("python", "python", "3.11.9", "3.12.1"),
        ("missing", "numpy", "2.1.3", None),
        ("version", "scikit-learn", "1.5.2", "1.4.0"),
    ]


def test_the_environment_endpoint_answers_each_host_with_its_mismatches(
    client: TestClient, book: EnvironmentBook
) -> None:
    assert client.post("/v1/models", json=governed("gov", "1")).status_code == 201
    book.put(report("web-2", "3.11.9", {"scikit-learn": "1.5.2", "numpy": "2.0.0"}))
    book.put(report("web-1", "3.11.9", {"scikit-learn": "1.5.2", "numpy": "2.1.3"}))
    answer = client.get("/v1/models/gov/versions/1/environment").json()
    assert [h["host"] for h in answer["hosts"]] == ["web-1", "web-2"]
    assert answer["hosts"][0]["mismatches"] == [] and answer["mismatched_hosts"] == 1
    (wrong,) = answer["hosts"][1]["mismatches"]
    assert wrong["message"] == "numpy is 2.0.0, validated with 2.1.3"
    assert client.get("/v1/models/gov/versions/9/environment").status_code == 404


def test_a_version_with_every_governance_field_round_trips_through_avro() -> None:
    now = utcnow()
    risk = MODEL.risk.model_copy(
        update={
            "assessed_by": "ana",
            "assessed_at": now,
            "reassessment_due": now + timedelta(days=90),
            "rationale": "annual <review>",
        }
    )
    lineage = MODEL.lineage.model_copy(
        update={
            "training_data_hash": "sha256:00ff",
            "validated_environment": Environment.model_validate(VALIDATED),
            "parent_version": "0.9",
        }
    )
    full = MODEL.model_copy(
        update={
            "team": "t",
            "kpi": "k",
            "risk": risk,
            "risk_history": [MODEL.risk, risk],
            "lineage": lineage,
        }
    )
    codec = Codec(ModelVersion)
    assert codec.decode(codec.encode(full)) == full
