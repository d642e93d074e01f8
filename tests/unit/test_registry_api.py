"""The registry API on fakes: registration, duplicates, 404s and reference uploads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import MODELS

VERSIONS = Codec(ModelVersion)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog([MODEL])


@pytest.fixture
def client(bus: FakeBus, catalog: FakeCatalog) -> Iterator[TestClient]:
    with TestClient(create_app(adapters=Registry(bus, catalog))) as client:
        yield client


def test_a_registration_is_published_and_then_listed(client: TestClient, bus: FakeBus) -> None:
    response = client.post("/v1/models", json=one_feature_model("m", "2"))
    assert response.status_code == 201, response.text
    assert response.json()["risk"]["severity"] == "low"
    (published,) = bus.records(MODELS, VERSIONS)
    assert (published.model_id, published.version, bus.keys(MODELS)) == ("m", "2", ["m/2"])
    listed = {m["model_id"]: m for m in client.get("/v1/models").json()}
    assert set(listed) == {"m", MODEL.model_id}
    assert [v["version"] for v in listed["m"]["versions"]] == ["2"]
    assert client.get("/v1/models/m/versions/2").json()["owner"] == "tests"


def test_a_version_registered_twice_is_refused_with_409(
    client: TestClient, bus: FakeBus, catalog: FakeCatalog
) -> None:
    catalog.elsewhere.append(ModelVersion.model_validate({**MODEL.model_dump(), "model_id": "x"}))
    again = client.post("/v1/models", json={**one_feature_model("x"), "version": "1.0.0"})
    assert again.status_code == 409
    assert again.json() == {
        "detail": "model 'x' version '1.0.0' is already registered",
        "errors": [
            {"field": "version", "expected": "a version not yet registered", "received": '"1.0.0"'}
        ],
    }
    assert catalog.catch_ups == 1  # registered by another process a moment ago
    assert bus.messages == {}


def test_unknown_models_and_versions_are_404(client: TestClient) -> None:
    assert client.get("/v1/models/nope").status_code == 404
    missing = client.get(f"/v1/models/{MODEL.model_id}/versions/9")
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": f"model {MODEL.model_id!r} version '9' is not registered",
        "errors": [],
    }
    assert client.post("/v1/models/nope/versions/1/reference", json=[{"x": 1}]).status_code == 404


def test_a_reference_upload_publishes_the_version_with_its_profile(
    client: TestClient, bus: FakeBus
) -> None:
    rows = [{"income": float(i), "region": "eu" if i % 3 else "us"} for i in range(500)]
    url = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/reference"
    response = client.post(url, json=rows)
    assert response.status_code == 200, response.text
    assert response.json()["row_count"] == 500
    assert response.json()["features"] == ["income", "region"]
    (published,) = bus.records(MODELS, VERSIONS)
    assert published.reference is not None
    assert (published.reference.row_count, published.reference.source) == (500, "uploaded")
    served = client.get(f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}").json()
    assert served["reference"]["row_count"] == 500  # read-your-writes


def test_a_bad_reference_names_each_bad_value_and_publishes_nothing(
    client: TestClient, bus: FakeBus
) -> None:
    url = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/reference"
    bad = client.post(url, json=[{"income": "x", "region": "eu"}])
    assert bad.status_code == 422
    assert [(e["field"], e["index"]) for e in bad.json()["errors"]] == [("features.income", 0)]
    empty = client.post(url, json=[])
    assert (empty.status_code, empty.json()["detail"]) == (422, "the reference sample has no rows")
    assert bus.messages == {}
