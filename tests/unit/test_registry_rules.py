"""The registry's alert-rule routes on fakes: overrides set with If-Match, rules in effect read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import MODELS

RULES = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/rules"
SCIENTIST, SCIENTIST_RECORD = api_key("ana", ["data_scientist"], [MODEL.model_id])
ONCALL, ONCALL_RECORD = api_key("bob", ["oncall"])
QUIET = {
    "name": "feature_drift",
    "signal": "feature_drift",
    "condition": "above",
    "threshold": 0.5,
    "enabled": False,
}
INCOME = {
    "name": "income-gaps",
    "signal": "missing_rate",
    "condition": "above",
    "threshold": 0.2,
    "for_windows": 3,
    "features": ["income"],
}


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> Iterator[TestClient]:
    guard = fake_guard(SCIENTIST_RECORD, ONCALL_RECORD)
    app = create_app(adapters=Registry(bus, FakeCatalog([MODEL])), guard=guard)
    with TestClient(app, headers=bearer(SCIENTIST)) as client:
        yield client


def test_a_version_without_overrides_has_its_tiers_defaults(client: TestClient) -> None:
    answer = client.get(RULES)
    assert answer.status_code == 200 and answer.headers["etag"]
    body = answer.json()
    assert (body["risk_tier"], body["overrides"]) == ("high", [])
    rules = {r["name"]: r for r in body["rules"]}
    assert rules["feature_drift"]["severity"] == "high"
    assert rules["dataset_drift"]["severity"] == "critical"


def test_a_data_scientist_overrides_rules_and_every_service_sees_them(
    client: TestClient, bus: FakeBus
) -> None:
    etag = client.get(RULES).headers["etag"]
    answer = client.put(RULES, json=[QUIET, INCOME], headers={"if-match": etag})
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] != etag
    rules = {r["name"]: r for r in answer.json()["rules"]}
    assert "feature_drift" not in rules
    assert rules["income-gaps"]["severity"] == "high"  # none given: the tier's
    assert client.get(RULES).json() == answer.json()
    (published,) = bus.records(MODELS, Codec(ModelVersion))
    assert [r.name for r in published.alert_rules] == ["feature_drift", "income-gaps"]
    stale = client.put(RULES, json=[], headers={"if-match": etag})
    assert stale.status_code == 412


def test_invalid_rules_are_refused_naming_the_field(client: TestClient, bus: FakeBus) -> None:
    unknown = {**INCOME, "signal": "accuracy"}
    nowhere = {**INCOME, "name": "other", "features": ["salary"]}
    answer = client.put(RULES, json=[unknown, nowhere])
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["[0].signal", "[1].features"]
    shape = client.put(RULES, json=[{**INCOME, "for_windows": 0}])
    assert shape.status_code == 422 and "for_windows" in shape.text
    assert bus.messages == {}


def test_only_writers_of_the_model_may_change_rules(client: TestClient) -> None:
    assert client.put(RULES, json=[], headers=bearer(ONCALL)).status_code == 403
    assert client.get(RULES, headers=bearer(ONCALL)).status_code == 200
    assert client.put(RULES, json=[], headers=ADMIN).status_code == 200
    other = "/v1/models/other/versions/1/rules"
    assert client.put(other, json=[]).status_code == 403  # not in the key's scope
    assert client.get(RULES.replace(MODEL.version, "9")).status_code == 404


def test_the_expected_interval_given_at_registration_is_model_silents_threshold(
    bus: FakeBus,
) -> None:
    catalog = FakeCatalog([MODEL.model_copy(update={"expected_interval": 90.0})])
    app = create_app(adapters=Registry(bus, catalog), guard=fake_guard(SCIENTIST_RECORD))
    with TestClient(app, headers=bearer(SCIENTIST)) as client:
        rules = {r["name"]: r for r in client.get(RULES).json()["rules"]}
        assert rules["model_silent"]["threshold"] == 90.0
        assert rules["model_silent"]["severity"] == "high"  # the tier's own
        body = {**one_feature_model(MODEL.model_id, "2.0.0"), "expected_interval": 120}
        assert client.post("/v1/models", json=body).status_code == 201
        for wrong in (0, -5, "inf"):
            refused = client.post("/v1/models", json={**body, "expected_interval": wrong})
            assert refused.status_code == 422 and "expected_interval" in refused.text
    (published,) = bus.records(MODELS, Codec(ModelVersion))
    assert published.expected_interval == 120.0
