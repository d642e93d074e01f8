"""API keys, roles, model scopes and the audit trail, on the registry and alerting APIs (fakes)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from alerting.api import create_app as alerting_app
from registry.api import Registry
from registry.api import create_app as registry_app
from tests.access import ADMIN, ADMIN_KEY, FakeAuditLog, api_key, bearer, fake_guard
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, alerting_on
from vigil.adapters.auth import Guard
from vigil.wire.access import AuditEvent, Caller, Permission, hash_key, key_id_of, new_key
from vigil.wire.codec import Codec
from vigil.wire.records import utcnow
from vigil.wire.topics import AUDIT, KEYS

VERSION_URL = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}"
SUB = {"name": "team", "channel": "webhook", "url": "https://hooks.example/x", "models": ["*"]}


@pytest.fixture
def audit_bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def guard(audit_bus: FakeBus) -> Guard:
    return fake_guard(audit=audit_bus)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def registry(bus: FakeBus, audit_bus: FakeBus, guard: Guard) -> Iterator[TestClient]:
    adapters = Registry(bus, FakeCatalog([MODEL]), audit_log=FakeAuditLog(audit_bus))
    with TestClient(registry_app(adapters=adapters, guard=guard)) as client:
        yield client


@pytest.fixture
def alerting(guard: Guard) -> Iterator[TestClient]:
    with TestClient(alerting_app(adapters=alerting_on(FakeAlertStore()), guard=guard)) as client:
        yield client


def _key(registry: TestClient, roles: list[str], models: list[str] | None = None) -> str:
    body: dict[str, object] = {"name": f"{'-'.join(roles)}-user", "roles": roles}
    if models is not None:
        body["models"] = models
    answer = registry.post("/v1/keys", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key


def _refused(reason: str) -> float:
    return REGISTRY.get_sample_value("vigil_auth_refused_total", {"reason": reason}) or 0.0


def test_no_key_a_malformed_or_unknown_key_is_401_with_a_challenge(registry: TestClient) -> None:
    before = _refused("missing")
    for headers, words in [
        ({}, "no API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not 'Bearer <key>'"),
        ({"Authorization": "Bearer"}, "not 'Bearer <key>'"),
        (bearer("vgl_0123456789abcdef_" + "x" * 43), "not known"),
        (bearer("guess"), "not known"),
    ]:
        answer = registry.get("/v1/models", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert words in answer.json()["detail"]
    assert _refused("missing") == before + 1


def test_only_health_and_metrics_answer_without_a_key(
    registry: TestClient, alerting: TestClient
) -> None:
    from feedback.api import FeedbackLog
    from feedback.api import create_app as feedback_app
    from prediction_logger.api import PredictionLog
    from prediction_logger.api import create_app as logger_app
    from tests.unit.fakes import FakeIdempotencyStore

    log = PredictionLog(FakeBus(), FakeCatalog([MODEL]), FakeIdempotencyStore())
    feedback_log = FeedbackLog(FakeBus(), FakeCatalog([MODEL]), FakeIdempotencyStore())
    with (
        TestClient(logger_app(adapters=log, guard=fake_guard())) as logger,
        TestClient(feedback_app(adapters=feedback_log, guard=fake_guard())) as feedback,
    ):
        _every_route_needs_a_key([registry, alerting, logger, feedback])
    assert registry.get("/healthz").status_code == 200
    assert registry.get("/metrics").status_code == 200


def _every_route_needs_a_key(clients: list[TestClient]) -> None:
    """Every operation each service's OpenAPI declares, called without a key, is 401."""
    checked = 0
    for client in clients:
        for path, operations in client.get("/openapi.json").json()["paths"].items():
            if path in {"/healthz", "/readyz", "/metrics"}:
                continue
            url = path.replace("{", "").replace("}", "")
            for method in operations:
                answer = client.request(method.upper(), url)
                assert answer.status_code == 401, (method, path, answer.text)
                checked += 1
    assert checked >= 15


def test_a_created_key_works_once_revoked_it_is_refused(registry: TestClient) -> None:
    key = _key(registry, ["data_scientist"])
    assert registry.get("/v1/models", headers=bearer(key)).status_code == 200
    listed = registry.get("/v1/keys", headers=ADMIN).json()
    mine = next(k for k in listed if k["id"] == key_id_of(key))
    assert "key" not in mine and "key_hash" not in mine and key not in str(listed)
    assert registry.delete(f"/v1/keys/{mine['id']}", headers=ADMIN).status_code == 200
    refused = registry.get("/v1/models", headers=bearer(key))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_an_expired_key_is_401(registry: TestClient, guard: Guard) -> None:
    secret, record = api_key("old", ["auditor"])
    guard.keyring.apply(record.model_copy(update={"expires_at": utcnow() - timedelta(1)}))
    answer = registry.get("/v1/models", headers=bearer(secret))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_rotation_gives_a_new_key_and_ends_the_old_one(registry: TestClient) -> None:
    old = _key(registry, ["oncall"])
    rotated = registry.post(f"/v1/keys/{key_id_of(old)}/rotate", headers=ADMIN)
    assert rotated.status_code == 201
    new = rotated.json()["key"]
    assert rotated.json()["roles"] == ["oncall"]
    assert registry.get("/v1/models", headers=bearer(new)).status_code == 200
    assert registry.get("/v1/models", headers=bearer(old)).status_code == 401


def test_deleting_a_principal_revokes_all_its_keys(registry: TestClient) -> None:
    first = registry.post("/v1/keys", json={"name": "bob", "roles": ["sme"]}, headers=ADMIN)
    second = registry.post("/v1/keys", json={"name": "bob", "roles": ["sme"]}, headers=ADMIN)
    assert registry.delete("/v1/principals/bob", headers=ADMIN).status_code == 200
    for answer in (first, second):
        assert registry.get("/v1/models", headers=bearer(answer.json()["key"])).status_code == 401


def test_key_management_is_for_admins_only(registry: TestClient) -> None:
    key = _key(registry, ["auditor"])
    answer = registry.post("/v1/keys", json={"name": "x", "roles": ["admin"]}, headers=bearer(key))
    assert answer.status_code == 403
    assert "keys:admin" in answer.json()["detail"] and "admin" in answer.json()["detail"]


def test_invalid_key_requests_name_the_field(registry: TestClient) -> None:
    bad_role = registry.post("/v1/keys", json={"name": "x", "roles": ["root"]}, headers=ADMIN)
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["field"] == "roles.0"
    bad_model = registry.post(
        "/v1/keys", json={"name": "x", "roles": ["sme"], "models": ["../x"]}, headers=ADMIN
    )
    assert bad_model.status_code == 422


@pytest.mark.parametrize(
    ("roles", "may_register", "may_read_models", "may_subscribe", "may_read_alerts"),
    [
        (["producer"], False, True, False, False),
        (["sme"], False, True, False, True),
        (["data_scientist"], True, True, False, True),
        (["oncall"], False, True, True, True),
        (["auditor"], False, True, False, True),
        (["admin"], True, True, True, True),
    ],
)
def test_each_role_has_exactly_its_powers(
    registry: TestClient,
    alerting: TestClient,
    roles: list[str],
    may_register: bool,
    may_read_models: bool,
    may_subscribe: bool,
    may_read_alerts: bool,
) -> None:
    key = bearer(_key(registry, roles))
    register = registry.post("/v1/models", json=one_feature_model("role-test"), headers=key)
    assert register.status_code == (201 if may_register else 403)
    assert registry.get("/v1/models", headers=key).status_code == (200 if may_read_models else 403)
    assert alerting.post("/v1/subscriptions", json=SUB, headers=key).status_code == (
        201 if may_subscribe else 403
    )
    assert alerting.get("/v1/alerts", headers=key).status_code == (200 if may_read_alerts else 403)
    assert registry.get("/v1/audit", headers=key).status_code == (
        200 if roles[0] in {"auditor", "admin"} else 403
    )


def test_a_key_acts_only_on_the_models_in_its_scope(
    registry: TestClient, alerting: TestClient
) -> None:
    key = bearer(_key(registry, ["data_scientist", "oncall"], [MODEL.model_id]))
    assert registry.get(VERSION_URL, headers=key).status_code == 200
    other = registry.post("/v1/models", json=one_feature_model("not-mine"), headers=key)
    assert other.status_code == 403
    assert "'not-mine'" in other.json()["detail"]
    assert registry.put(
        f"{VERSION_URL}/drift", json={"window_seconds": 120}, headers=key
    ).is_success
    assert registry.get("/v1/models/elsewhere", headers=key).status_code == 403
    assert [m["model_id"] for m in registry.get("/v1/models", headers=key).json()] == [
        MODEL.model_id
    ]
    everything = alerting.post("/v1/subscriptions", json=SUB, headers=key)
    assert everything.status_code == 403
    mine = alerting.post("/v1/subscriptions", json={**SUB, "models": [MODEL.model_id]}, headers=key)
    assert mine.status_code == 201


def test_every_change_is_audited_with_its_principal_allowed_or_refused(
    registry: TestClient, audit_bus: FakeBus
) -> None:
    ds = _key(registry, ["data_scientist"], [MODEL.model_id])
    registry.put(f"{VERSION_URL}/drift", json={"window_seconds": 120}, headers=bearer(ds))
    registry.post("/v1/models", json=one_feature_model("nope"), headers=bearer(ds))
    registry.post("/v1/models", json=one_feature_model("nope"))
    registry.get("/v1/models", headers=bearer(ds))  # reads are not audited
    events = [Codec(AuditEvent).decode(v) for _, v in audit_bus.messages[AUDIT.name]]
    created, changed, refused, anonymous = events
    assert (created.action, created.principal, created.status) == ("POST /v1/keys", "admin", 201)
    assert changed.action == "PUT /v1/models/{model_id}/versions/{version}/drift"
    assert (changed.principal, changed.model_id, changed.status) == (
        "data_scientist-user",
        MODEL.model_id,
        200,
    )
    assert (refused.status, refused.model_id) == (403, "nope")
    assert refused.detail is not None and "'nope'" in refused.detail
    assert (anonymous.status, anonymous.principal, anonymous.key_id) == (401, None, None)
    assert len({e.request_id for e in events}) == 4


def test_the_audit_trail_reads_newest_first_filtered_and_paged(registry: TestClient) -> None:
    ds = bearer(_key(registry, ["data_scientist"]))
    for seconds in (120, 180, 240):
        registry.put(f"{VERSION_URL}/drift", json={"window_seconds": seconds}, headers=ds)
    auditor = bearer(_key(registry, ["auditor"]))
    page = registry.get(
        "/v1/audit", params={"principal": "data_scientist-user", "limit": 2}, headers=auditor
    ).json()
    assert [e["status"] for e in page["events"]] == [200, 200]
    assert page["next"] is not None
    rest = registry.get(
        "/v1/audit",
        params={"principal": "data_scientist-user", "before": page["next"]},
        headers=auditor,
    ).json()
    assert len(rest["events"]) == 1 and rest["next"] is None
    by_model = registry.get("/v1/audit", params={"model_id": MODEL.model_id}, headers=auditor)
    assert len(by_model.json()["events"]) == 3


def test_the_request_id_sent_is_the_one_audited_and_echoed(
    registry: TestClient, audit_bus: FakeBus
) -> None:
    answer = registry.post(
        "/v1/keys", json={"name": "x", "roles": ["sme"]}, headers={**ADMIN, "X-Request-ID": "r-42"}
    )
    assert answer.headers["x-request-id"] == "r-42"
    (event,) = [Codec(AuditEvent).decode(v) for _, v in audit_bus.messages[AUDIT.name]]
    assert event.request_id == "r-42"


def test_keys_are_stored_as_hashes_only(registry: TestClient, bus: FakeBus) -> None:
    key = _key(registry, ["sme"])
    (stored,) = [v for k, v in bus.messages[KEYS.name] if k.decode() == key_id_of(key)]
    assert key.encode() not in stored and hash_key(key).encode() in stored


def test_keys_are_random_and_roles_grant_what_the_table_says() -> None:
    assert len({new_key()[1] for _ in range(100)}) == 100
    assert key_id_of(ADMIN_KEY) == "00000000000000ad"
    auditor = Caller("k", "a", frozenset({"auditor"}), frozenset({"*"}))
    assert all(auditor.may(p) == p.value.endswith(":read") for p in Permission)
    producer = Caller("k", "p", frozenset({"producer"}), frozenset({"m"}))
    assert producer.may(Permission.PREDICTIONS_WRITE) and producer.may(Permission.FEEDBACK_TRUTH)
    assert not producer.may(Permission.FEEDBACK_REVIEW) and not producer.covers("other")
    assert producer.covers_all(["m"]) and not producer.covers_all(["*"])


def test_the_first_start_writes_an_admin_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    from registry.config import Settings
    from vigil.adapters.auth import AuditTrail
    from vigil.adapters.keyring import MemoryKeyring

    path = tmp_path / "run" / "admin.key"
    guard = Guard(MemoryKeyring(), AuditTrail(FakeBus(), "tests"))
    bus = FakeBus()
    app = registry_app(Settings(admin_key_file=str(path)), Registry(bus, FakeCatalog()), guard)
    with TestClient(app) as client:
        key = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert client.get("/v1/keys", headers=bearer(key)).json()[0]["roles"] == ["admin"]
        assert len(bus.messages[KEYS.name]) == 1
    with TestClient(
        registry_app(Settings(admin_key_file=str(path)), Registry(bus, FakeCatalog()), guard)
    ):
        pass
    assert len(bus.messages[KEYS.name]) == 1  # an admin key exists: none is added


def test_a_producer_logs_for_its_models_only_a_mixed_batch_is_refused_whole() -> None:
    from prediction_logger.api import PredictionLog
    from prediction_logger.api import create_app as logger_app
    from tests.unit.fakes import FakeIdempotencyStore
    from tests.unit.test_prediction_logger_api import MODEL as M
    from tests.unit.test_prediction_logger_api import _event

    other = M.model_copy(update={"model_id": "other"})
    retired = M.model_copy(update={"model_id": "old", "status": "retired"})
    secret, record = api_key("app", ["producer"], ["m", "old"])
    sme, sme_record = api_key("ana", ["sme"])
    bus = FakeBus()
    log = PredictionLog(bus, FakeCatalog([M, other, retired]), FakeIdempotencyStore())
    with TestClient(logger_app(adapters=log, guard=fake_guard(record, sme_record))) as client:
        key = bearer(secret)
        assert client.post("/v1/predictions", json=[_event("a")], headers=key).status_code == 200
        mixed = [_event("b"), _event("c", model_id="other")]
        refused = client.post("/v1/predictions", json=mixed, headers=key)
        assert refused.status_code == 403
        assert refused.json()["errors"] == [
            {
                "field": "model_id",
                "expected": "a model in the key's scope (m, old)",
                "received": "'other'",
                "index": 1,
            }
        ]
        partial = client.post("/v1/predictions?partial=true", json=mixed, headers=key).json()
        assert (partial["accepted"], partial["rejected"]) == (1, 1)
        late = client.post("/v1/predictions", json=[_event("d", model_id="old")], headers=key)
        assert late.status_code == 422 and "(retired)" in late.json()["errors"][0]["received"]
        wrong_role = client.post("/v1/predictions", json=[_event("e")], headers=bearer(sme))
        assert wrong_role.status_code == 403 and "producer" in wrong_role.json()["detail"]
    assert len(bus.messages["vigil.predictions.v1"]) == 2  # a and b


def test_an_admin_key_file_that_no_longer_works_is_replaced(tmp_path: Path) -> None:
    from registry.config import Settings

    path = tmp_path / "admin.key"
    path.write_text("vgl_0123456789abcdef_" + "x" * 43 + "\n")  # e.g. its topic was wiped
    guard = fake_guard(audit=FakeBus())  # another admin key is active
    settings = Settings(admin_key_file=str(path))
    with TestClient(registry_app(settings, Registry(FakeBus(), FakeCatalog()), guard)) as client:
        key = path.read_text().strip()
        assert key != "vgl_0123456789abcdef_" + "x" * 43
        assert client.get("/v1/keys", headers=bearer(key)).status_code == 200
    # A file whose key works is left alone, and so is a missing file while an admin key exists.
    with TestClient(registry_app(settings, Registry(FakeBus(), FakeCatalog()), guard)):
        assert path.read_text().strip() == key
