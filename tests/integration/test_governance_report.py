"""Governance through the real registry (Kafka, Redis): versions registered with lineage,
a risk reassessment, a promotion with its reason and a retirement, then the auditor's report
assembled through the registry's API names every promotion; and the SDK's environment report
round trip on vigil.environments.v1."""

from __future__ import annotations

import platform
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.api import create_app as registry_app
from tests.access import SESSION, SESSION_KEY
from vigil.adapters.settings import VigilSettings
from vigil.report import build_report, render_html
from vigil.sdk import AsyncPredictionLogger
from vigil.wire.records import utcnow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(infra: VigilSettings) -> Iterator[TestClient]:
    with TestClient(registry_app(), headers=SESSION) as client:
        yield client


def _registration(model_id: str, version: str, status: str, **extra: object) -> dict[str, object]:
    return {
        "model_id": model_id,
        "version": version,
        "task": "binary",
        "features": [{"name": "income", "type": "numeric"}],
        "risk": {"probability": 2, "impact": 3},
        "owner": "risk-team",
        "team": "credit-analytics",
        "kpi": "default rate",
        "status": status,
        **extra,
    }


def _through(registry: TestClient) -> httpx.AsyncClient:
    """An async client whose registry calls reach the real registry app in this process;
    alerting (not under test here) knows no alert and no silence."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "alerting":
            return httpx.Response(200, json=[])
        answer = registry.request(
            request.method,
            request.url.raw_path.decode(),
            headers={"Authorization": request.headers["authorization"]},
        )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_the_report_through_the_registry_names_every_promotion(
    registry: TestClient, tmp_path: Path
) -> None:
    model_id = f"gov-{uuid.uuid4().hex[:8]}"
    assert registry.post("/v1/models", json=_registration(model_id, "1.0.0", "champion")).is_success
    child = _registration(
        model_id,
        "1.1.0",
        "challenger",
        lineage={"parent_version": "1.0.0", "training_data_hash": "sha256:" + "cd" * 32},
    )
    assert registry.post("/v1/models", json=child).status_code == 201
    due = (utcnow() + timedelta(days=90)).isoformat()
    body = {"probability": 5, "impact": 5, "reassessment_due": due, "rationale": "wider use"}
    assert registry.put(f"/v1/models/{model_id}/versions/1.0.0/risk", json=body).is_success
    for version, reason in (("1.1.0", "better on November traffic"), ("1.0.0", "roll back")):
        promoted = registry.post(
            f"/v1/models/{model_id}/versions/{version}/promote", json={"reason": reason}
        )
        assert promoted.status_code == 200, promoted.text
    retired = registry.put(
        f"/v1/models/{model_id}/versions/1.1.0/status", json={"status": "retired"}
    )
    assert retired.status_code == 200, retired.text
    async with _through(registry) as client:
        document = await build_report(
            client, SESSION_KEY, "http://registry", "http://alerting", model_id
        )
    promotions = [(p["version"], p["reason"], p["principal"]) for p in document["promotions"]]
    assert promotions == [
        ("1.1.0", "better on November traffic", "tests"),
        ("1.0.0", "roll back", "tests"),
    ]
    assert [p["compared_with"] for p in document["promotions"]] == ["1.0.0", "1.1.0"]
    assert all(p["verdict"] == "no significant difference" for p in document["promotions"])
    (change,) = document["status_changes"]
    assert (change["version"], change["from"], change["to"]) == ("1.1.0", "challenger", "retired")
    first = document["versions"][0]
    assert [r["severity"] for r in first["risk_history"]] == ["medium", "critical"]
    assert first["risk_history"][-1]["assessed_by"] == "tests"
    assert document["versions"][1]["lineage"]["parent_version"] == "1.0.0"
    page = render_html(document)
    assert "better on November traffic" in page and "roll back" in page


async def test_the_sdk_reports_its_environment_and_the_registry_names_mismatches(
    registry: TestClient, infra: VigilSettings, tmp_path: Path
) -> None:
    model_id = f"env-{uuid.uuid4().hex[:8]}"
    validated = {"python": "3.0.0", "packages": {"pydantic": "0.0.1", "no-such-dist": "1.0"}}
    registration = _registration(
        model_id, "1.0.0", "champion", lineage={"validated_environment": validated}
    )
    assert registry.post("/v1/models", json=registration).status_code == 201
    host = f"host-{uuid.uuid4().hex[:6]}"
    async with AsyncPredictionLogger(
        f"kafka://{infra.kafka_bootstrap}", spool_dir=tmp_path, host=host
    ) as logger:
        logger.log(model_id, "1.0.0", {"income": 1.0}, True)
        logger.log(model_id, "1.0.0", {"income": 2.0}, False)
        assert await logger.flush(30)
    answer = registry.get(f"/v1/models/{model_id}/versions/1.0.0/environment").json()
    (served,) = answer["hosts"]
    assert served["host"] == host and served["python"] == platform.python_version()
    kinds = {(m["kind"], m["name"]) for m in served["mismatches"]}
    assert kinds == {("python", "python"), ("version", "pydantic"), ("missing", "no-such-dist")}
