"""``GET /v1/models/{id}/versions/{v}/performance`` on an index held in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from registry.performance_index import MemoryPerformanceIndex, is_performance_report
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.samples import MODEL, PERFORMANCE, REPORT
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.codec import Codec
from vigil.wire.performance import PerformanceReport
from vigil.wire.records import WindowReport


def _window(hours: int, revision: int = 1) -> PerformanceReport:
    start = PERFORMANCE.window_start + timedelta(hours=hours)
    return PERFORMANCE.model_copy(
        update={
            "window_start": start,
            "window_end": start + timedelta(hours=1),
            "revision": revision,
        }
    )


@pytest.fixture
def index() -> MemoryPerformanceIndex:
    return MemoryPerformanceIndex()


ONCALL, ONCALL_RECORD = api_key("pager", ["oncall"])
ELSEWHERE, ELSEWHERE_RECORD = api_key("sme-b", ["sme"], ["another-model"])


@pytest.fixture
def client(index: MemoryPerformanceIndex) -> Iterator[TestClient]:
    registry = Registry(FakeBus(), FakeCatalog([MODEL]), performance=index)
    guard = fake_guard(ONCALL_RECORD, ELSEWHERE_RECORD)
    with TestClient(create_app(adapters=registry, guard=guard), headers=ADMIN) as client:
        yield client


async def test_each_window_once_at_its_latest_revision_within_since_and_until(
    client: TestClient, index: MemoryPerformanceIndex
) -> None:
    for hours, revision in ((0, 1), (0, 4), (1, 1), (2, 2), (0, 3)):
        await index.put(_window(hours, revision))
    path = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/performance"
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert [(w["window_start"], w["revision"]) for w in answer.json()] == [
        (_window(0).window_start.isoformat().replace("+00:00", "Z"), 4),
        (_window(1).window_start.isoformat().replace("+00:00", "Z"), 1),
        (_window(2).window_start.isoformat().replace("+00:00", "Z"), 2),
    ]
    since = _window(1).window_start.isoformat()
    until = _window(2).window_start.isoformat()
    middle = client.get(path, params={"since": since, "until": until}).json()
    assert [w["revision"] for w in middle] == [1]


def test_an_unknown_version_is_404(client: TestClient) -> None:
    answer = client.get(f"/v1/models/{MODEL.model_id}/versions/9.9/performance")
    assert answer.status_code == 404


def test_only_performance_reports_are_indexed() -> None:
    assert is_performance_report(Codec(PerformanceReport).encode(PERFORMANCE))
    assert not is_performance_report(Codec(WindowReport).encode(REPORT))
    assert not is_performance_report(b'{"report_id": "x"}')
    assert not is_performance_report(None)


async def test_fairness_is_each_windows_fairness_and_segments(
    client: TestClient, index: MemoryPerformanceIndex
) -> None:
    await index.put(_window(0, 2))
    path = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/fairness"
    (window,) = client.get(path).json()
    assert set(window) == {
        "report_id",
        "window_start",
        "window_end",
        "revision",
        "labelled",
        "fairness",
        "segments",
    }
    assert window["revision"] == 2


def test_performance_is_for_the_roles_that_judge_models_in_their_scope(
    client: TestClient,
) -> None:
    for route in ("performance", "fairness"):
        path = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/{route}"
        assert client.get(path, headers=bearer(ONCALL)).status_code == 403
        refused = client.get(path, headers=bearer(ELSEWHERE))
        assert refused.status_code == 403 and MODEL.model_id in refused.text
