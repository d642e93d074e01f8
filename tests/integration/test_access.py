"""Keys across services on the real broker: created on the registry, honoured by alerting,
revoked everywhere within 2 seconds, every change on the audit trail; the first admin key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from alerting.api import create_app as alerting_app
from alerting.config import Settings as AlertingSettings
from registry.api import create_app as registry_app
from registry.config import Settings as RegistrySettings
from tests.access import bearer
from tests.kafka_tools import private_copy
from tests.samples import one_feature_model
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import METRICS


def _until(check: Callable[[], bool], within: float) -> float:
    """Seconds until ``check()`` holds; fails after ``within`` seconds."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < within, "did not happen in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_keys_work_across_services_and_revocation_reaches_them_within_2s(
    infra: VigilSettings, admin_key: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    registry_settings = RegistrySettings(admin_key_file=str(tmp_path / "admin.key"))
    # Its own reports and alerts topics: nothing to replay or wade through at start.
    alerting_settings = AlertingSettings(
        alerting_group_id=f"test-access-{run}",
        alerting_redis_prefix=f"test:access:{run}",
        alerting_reports_topic=private_copy(infra.kafka_bootstrap, METRICS, run).name,
        alerting_events_topic=f"test.alerts.{run}",
    )
    admin = bearer(admin_key)
    with (
        TestClient(registry_app(registry_settings)) as registry,
        TestClient(alerting_app(alerting_settings)) as alerting,
    ):
        created = registry.post(
            "/v1/keys",
            json={"name": f"oncall-{run}", "roles": ["oncall"], "models": [f"m-{run}"]},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        key, key_id = bearer(created.json()["key"]), created.json()["id"]

        def alerts_answer(status: int) -> bool:
            return alerting.get(f"/v1/alerts?model_id=m-{run}", headers=key).status_code == status

        _until(lambda: alerts_answer(200), within=5)
        assert alerting.get("/v1/alerts?model_id=other", headers=key).status_code == 403
        assert (
            registry.post("/v1/models", json=one_feature_model(f"m-{run}"), headers=key).status_code
            == 403
        )

        assert registry.delete(f"/v1/keys/{key_id}", headers=admin).status_code == 200
        assert registry.get("/v1/models", headers=key).status_code == 401  # at once here
        assert _until(lambda: alerts_answer(401), within=2) < 2

        trail = registry.get(
            "/v1/audit", params={"principal": f"oncall-{run}"}, headers=admin
        ).json()["events"]
        assert [(e["action"], e["status"]) for e in trail] == [("POST /v1/models", 403)]
        mine = registry.get("/v1/audit", params={"limit": 50}, headers=admin).json()["events"]
        assert any(
            e["action"] == "DELETE /v1/keys/{key_id}" and e["resource"].endswith(key_id)
            for e in mine
        )
        # The first admin key exists (from an earlier start or this one): no file is needed then.
        listed = registry.get("/v1/keys", headers=admin).json()
        assert any("admin" in k["roles"] for k in listed)


def test_the_bootstrap_admin_key_from_the_environment_is_registered(
    infra: VigilSettings, tmp_path: Path
) -> None:
    wanted = f"bootstrap-{uuid.uuid4().hex}"
    settings = RegistrySettings(
        admin_key_file=str(tmp_path / "admin.key"), bootstrap_admin_key=wanted
    )
    with TestClient(registry_app(settings)) as registry:
        assert registry.get("/v1/keys", headers=bearer(wanted)).status_code == 200
    assert not (tmp_path / "admin.key").exists()  # the operator chose the key
