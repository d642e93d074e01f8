"""Serving environments over HTTP: ``POST /v1/environments`` on the prediction logger puts the
report on ``vigil.environments.v1`` as the SDK over Kafka writes it (scope and shape checked),
and the SDK with an HTTP destination sends its report there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from prediction_logger.api import create_app
from prediction_logger.store import PredictionLog
from tests.access import api_key, bearer, fake_guard
from tests.samples import MODEL
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from vigil.sdk.environment import environment_report
from vigil.sdk.transport import HttpTransport, Rejected
from vigil.wire.codec import Codec
from vigil.wire.environments import EnvironmentReport
from vigil.wire.topics import ENVIRONMENTS

APP, APP_RECORD = api_key("app", ["producer"], [MODEL.model_id])
BODY = {
    "model_id": MODEL.model_id,
    "model_version": MODEL.version,
    "host": "web-1",
    "python": "3.11.9",
    "packages": {"scikit-learn": "1.5.2"},
}


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> Iterator[TestClient]:
    log = PredictionLog(bus, FakeCatalog([MODEL]), FakeIdempotencyStore())
    app = create_app(adapters=log, guard=fake_guard(APP_RECORD))
    with TestClient(app, headers=bearer(APP)) as client:
        yield client


def test_a_report_is_published_keyed_by_its_host(client: TestClient, bus: FakeBus) -> None:
    answer = client.post("/v1/environments", json=BODY)
    assert answer.status_code == 202, answer.text
    (report,) = bus.records(ENVIRONMENTS, Codec(EnvironmentReport))
    assert bus.keys(ENVIRONMENTS) == [f"{MODEL.model_id}/{MODEL.version}/web-1"]
    assert (report.host, report.python, report.packages) == ("web-1", "3.11.9", BODY["packages"])
    assert report.reported_at is not None


def test_bad_or_foreign_reports_are_refused_naming_the_field(
    client: TestClient, bus: FakeBus
) -> None:
    foreign = client.post("/v1/environments", json={**BODY, "model_id": "fraud"})
    assert foreign.status_code == 403
    long_host = client.post("/v1/environments", json={**BODY, "host": "h" * 300})
    assert long_host.status_code == 422 and "host" in long_host.text
    extra = client.post("/v1/environments", json={**BODY, "secret": 1})
    assert extra.status_code == 422 and "secret" in extra.text
    assert bus.messages[ENVIRONMENTS.name] == []


def test_the_sdk_over_http_sends_its_environment(client: TestClient, bus: FakeBus) -> None:
    """The HTTP transport posts to the logger's /v1/environments (here in process)."""

    async def run() -> None:
        transport = HttpTransport("http://logger", api_key=APP)
        transport._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=client.app),
            base_url="http://logger",
            headers={"authorization": f"Bearer {APP}"},
        )
        await transport.report([environment_report(MODEL.model_id, MODEL.version, "web-9")])
        with pytest.raises(Rejected):
            await transport.report([environment_report("m", "1", "x" * 300)])
        await transport.stop()

    asyncio.run(run())
    (report,) = bus.records(ENVIRONMENTS, Codec(EnvironmentReport))
    assert report.host == "web-9" and report.packages  # this process's distributions
