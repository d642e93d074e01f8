"""The heatmap, window and fleet routes on indexes held in memory (a registry without Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from registry.drift_index import MemoryDriftIndex
from registry.performance_index import MemoryPerformanceIndex
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import MODEL, PERFORMANCE, REPORT
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.records import WindowReport, utcnow

PRODUCER, PRODUCER_RECORD = api_key("app", ["producer"])
ELSEWHERE, ELSEWHERE_RECORD = api_key("sme-b", ["sme"], ["another-model"])
HOUR = timedelta(hours=1)
PATH = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/drift"


def _window(start_minutes: int, psi: float, created: int = 0) -> WindowReport:
    start = (utcnow() - 3 * HOUR).replace(minute=0, second=0, microsecond=0)
    start += timedelta(minutes=start_minutes)
    feature = REPORT.features[0].model_copy(update={"statistics": {"psi": psi}})
    return REPORT.model_copy(
        update={
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "features": [feature],
            "created_at": start + timedelta(seconds=created),
        }
    )


@pytest.fixture
def indexes() -> tuple[MemoryDriftIndex, MemoryPerformanceIndex]:
    return MemoryDriftIndex(), MemoryPerformanceIndex()


@pytest.fixture
def client(indexes: tuple[MemoryDriftIndex, MemoryPerformanceIndex]) -> Iterator[TestClient]:
    drift, performance = indexes
    registry = Registry(FakeBus(), FakeCatalog([MODEL]), performance=performance, drift=drift)
    guard = fake_guard(PRODUCER_RECORD, ELSEWHERE_RECORD)
    with TestClient(create_app(adapters=registry, guard=guard), headers=ADMIN) as client:
        yield client


async def test_the_heatmap_of_the_last_day_by_window_then_by_hour(
    client: TestClient, indexes: tuple[MemoryDriftIndex, MemoryPerformanceIndex]
) -> None:
    drift, _ = indexes
    for minutes, psi in ((0, 0.1), (1, 0.5), (70, 0.05)):
        assert await drift.put(_window(minutes, psi))
    assert not await drift.put(_window(1, 0.9))  # not newer: kept as it was
    assert await drift.put(_window(0, 0.3, created=5))  # newer: replaces
    body = client.get(f"{PATH}/heatmap").json()
    assert body["features"] == ["income", "region"]
    assert body["statistics"] == {"income": "psi", "region": "psi"}
    assert [c["values"] for c in body["columns"]] == [[0.3, None], [0.5, None], [0.05, None]]
    since = _window(0, 0).window_start
    hours = {"since": since.isoformat(), "until": (since + 2 * HOUR).isoformat(), "columns": 2}
    hourly = client.get(f"{PATH}/heatmap", params=hours).json()
    assert hourly["resolution_seconds"] == 3600
    assert [(c["windows"], c["values"][0]) for c in hourly["columns"]] == [(2, 0.5), (1, 0.05)]
    assert client.get(f"{PATH}/heatmap", params={"columns": 0}).status_code in (400, 422)
    start = _window(0, 0).window_start.isoformat()
    assert client.get(f"{PATH}/windows/{start}").json()["features"][0]["statistics"] == {"psi": 0.3}
    assert client.get(f"{PATH}/windows/{_window(5, 0).window_start.isoformat()}").status_code == 404


def test_scope_and_registration_are_checked(client: TestClient) -> None:
    assert client.get(f"{PATH}/heatmap", headers=bearer(ELSEWHERE)).status_code == 403
    unknown = f"/v1/models/{MODEL.model_id}/versions/9.9/drift/heatmap"
    assert client.get(unknown).status_code == 404


async def test_the_fleet_shows_performance_only_to_whom_may_read_it(
    client: TestClient, indexes: tuple[MemoryDriftIndex, MemoryPerformanceIndex]
) -> None:
    drift, performance = indexes
    await drift.put(_window(0, 0.1))
    await performance.put(PERFORMANCE)
    labelled = PERFORMANCE.model_copy(
        update={"revision": 3, "labelled": 300, "created_at": PERFORMANCE.created_at + HOUR}
    )
    await performance.put(labelled)
    await performance.put(labelled.model_copy(update={"revision": 4}))  # no more labels
    (entry,) = client.get("/v1/fleet").json()["versions"]
    assert entry["performance"]["metric"] == "accuracy"
    assert entry["performance"]["value"] == 0.9 and entry["performance"]["reference"] == 0.92
    assert entry["last_label_at"] == labelled.created_at.isoformat()
    assert sum(entry["traffic"]["counts"]) == REPORT.event_count
    (hidden,) = client.get("/v1/fleet", headers=bearer(PRODUCER)).json()["versions"]
    assert hidden["performance"] is None and hidden["performance_readable"] is False
    assert client.get("/v1/fleet", headers=bearer(ELSEWHERE)).json()["versions"] == []
