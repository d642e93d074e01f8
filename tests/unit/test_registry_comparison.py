"""``GET /v1/models/{id}/comparison`` and ``POST …/promote`` on in-memory indexes and fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest

from registry.api import Registry, create_app
from registry.pairs_index import MemoryPairsIndex, pairs_of
from registry.performance_index import MemoryPerformanceIndex
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.comparison_data import (
    CHALLENGER,
    CHAMPION,
    RETIRED,
    SHADOW,
    UNLABELLED,
    UNLABELLED_DISAGREEING,
    VERSIONS,
    shared_traffic,
    window,
)
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.wire.access import AuditEvent
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import AUDIT, MODELS

MODEL_ID = CHAMPION.model_id
URL = f"/v1/models/{MODEL_ID}/comparison"
SCIENTIST, SCIENTIST_RECORD = api_key("dana", ["data_scientist"], [MODEL_ID])
SME, SME_RECORD = api_key("ana", ["sme"], [MODEL_ID])
ONCALL, ONCALL_RECORD = api_key("pager", ["oncall"])
# Unpaired windows: the champion 880 right of 1,000, the challenger 930 of 1,000.
CHAMPION_ROWS = [[[350, 25], [35, 90]], [[360, 25], [35, 80]]]
CHALLENGER_ROWS = [[[365, 10], [25, 100]], [[370, 10], [25, 95]]]


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def audit() -> FakeBus:
    return FakeBus()


async def _indexes() -> tuple[MemoryPairsIndex, MemoryPerformanceIndex]:
    pairs, performance = MemoryPairsIndex(), MemoryPerformanceIndex()
    events, outcomes, _ = shared_traffic()
    for record in [*events, *outcomes]:
        predicted, label = pairs_of(record)
        await pairs.put([predicted] if predicted else [], [label] if label else [])
    for version, rows in ((CHAMPION, CHAMPION_ROWS), (CHALLENGER, CHALLENGER_ROWS)):
        for hours, matrix in enumerate(rows):
            await performance.put(window(version, hours, matrix))
    return pairs, performance


@pytest.fixture
def client(bus: FakeBus, audit: FakeBus) -> Iterator[TestClient]:
    pairs, performance = asyncio.run(_indexes())
    registry = Registry(
        bus,
        FakeCatalog(VERSIONS, keep_retired=True),
        performance=performance,
        pairs=pairs,
    )
    guard = fake_guard(SCIENTIST_RECORD, SME_RECORD, ONCALL_RECORD, audit=audit)
    with TestClient(create_app(adapters=registry, guard=guard), headers=ADMIN) as client:
        yield client


def test_a_shadow_is_compared_with_its_champion_by_mcnemar_on_shared_requests(
    client: TestClient,
) -> None:
    answer = client.get(URL, params={"versions": "1.0.0,1.1.0"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    both, champion_only, shadow_only, neither = shared_traffic()[2]
    n = both + champion_only + shadow_only + neither
    expected = mcnemar([[both, champion_only], [shadow_only, neither]], exact=True).pvalue
    accuracy = body["accuracy"]
    assert body["test"] == accuracy["test"] == "paired: mcnemar"
    assert (accuracy["n"], accuracy["first_only"], accuracy["second_only"]) == (
        n,
        champion_only,
        shadow_only,
    )
    assert accuracy["p_value"] == pytest.approx(expected)
    assert accuracy["difference"] == pytest.approx((shadow_only - champion_only) / n)
    assert accuracy["low"] > 0 and body["verdict"] == "better"
    assert body["shared"] == {
        "requests": n + UNLABELLED,
        "labelled": n,
        "disagreement_rate": pytest.approx(
            (champion_only + shadow_only + UNLABELLED_DISAGREEING) / (n + UNLABELLED)
        ),
    }
    # The values of the shared labelled requests, paired too.
    assert body["value_per_labelled"]["test"] == "paired: z"
    assert [v["version"] for v in body["versions"]] == ["1.0.0", "1.1.0"]


def test_the_other_way_round_the_shadow_is_worse(client: TestClient) -> None:
    body = client.get(URL, params={"versions": "1.1.0,1.0.0"}).json()
    assert body["verdict"] == "worse" and body["accuracy"]["difference"] < 0


def test_a_challenger_on_its_own_traffic_is_compared_unpaired(client: TestClient) -> None:
    body = client.get(URL, params={"versions": "1.0.0,1.2.0"}).json()
    accuracy = body["accuracy"]
    assert body["test"] == "unpaired: two-proportion z" and "first_only" not in accuracy
    _, p_value = proportions_ztest([930, 880], [1000, 1000])
    assert (accuracy["first"], accuracy["second"]) == pytest.approx((0.88, 0.93))
    assert accuracy["p_value"] == pytest.approx(p_value)
    assert body["verdict"] == "better"
    champion, challenger = body["versions"]
    assert (champion["labelled"], champion["windows"], champion["value"]) == (1000, 2, -3000.0)
    assert champion["metrics"]["accuracy_low"] < 0.88 < champion["metrics"]["accuracy_high"]
    assert challenger["metrics"]["precision"] == pytest.approx(195 / 215)
    assert body["value_per_labelled"]["test"] == "unpaired: welch z"
    assert body["shared"]["requests"] == 0


def test_a_window_outside_since_and_until_is_left_out(client: TestClient) -> None:
    since = window(CHAMPION, 1, CHAMPION_ROWS[1]).window_start.isoformat()
    body = client.get(URL, params={"versions": "1.0.0,1.2.0", "since": since}).json()
    assert [v["windows"] for v in body["versions"]] == [1, 1]
    assert body["accuracy"]["n"] == 1000


def test_without_labelled_traffic_there_is_no_test_and_no_verdict(client: TestClient) -> None:
    body = client.get(URL, params={"versions": "1.1.0,1.2.0"}).json()
    assert (body["test"], body["accuracy"], body["verdict"]) == (
        None,
        None,
        "no significant difference",
    )


@pytest.mark.parametrize("versions", ["1.0.0", "1.0.0,1.0.0", "1.0.0,1.1.0,1.2.0", ","])
def test_versions_must_name_two_versions(client: TestClient, versions: str) -> None:
    answer = client.get(URL, params={"versions": versions})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "versions"


def test_an_unknown_version_is_404_naming_it(client: TestClient) -> None:
    answer = client.get(URL, params={"versions": "1.0.0,7.7.7"})
    assert answer.status_code == 404 and "7.7.7" in answer.json()["detail"]


def test_comparisons_are_for_the_roles_that_read_performance(client: TestClient) -> None:
    params = {"versions": "1.0.0,1.1.0"}
    assert client.get(URL, params=params, headers=bearer(ONCALL)).status_code == 403
    assert client.get(URL, params=params, headers=bearer(SME)).status_code == 200


def _published(bus: FakeBus) -> list[ModelVersion]:
    return bus.records(MODELS, Codec(ModelVersion))


def _promote(client: TestClient, version: str, key: str = SCIENTIST, **body: str) -> object:
    url = f"/v1/models/{MODEL_ID}/versions/{version}/promote"
    return client.post(
        url, json={"reason": "better on a month of traffic", **body}, headers=bearer(key)
    )


def test_a_promotion_swaps_champion_and_audits_the_comparison(
    client: TestClient, bus: FakeBus, audit: FakeBus
) -> None:
    answer = _promote(client, SHADOW.version)
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["promoted"]["status"] == "champion" and body["demoted"] == ["1.0.0"]
    assert body["comparison"]["test"] == "paired: mcnemar"
    assert [(v.version, v.status) for v in _published(bus)] == [
        ("1.1.0", "champion"),
        ("1.0.0", "challenger"),
    ]
    assert client.get(f"/v1/models/{MODEL_ID}/versions/1.1.0").json()["status"] == "champion"
    events = [e for e in audit.records(AUDIT, Codec(AuditEvent)) if e.action.endswith("/promote")]
    (event,) = events
    assert event.status == 200 and event.principal == "dana"
    assert event.detail is not None
    for part in ("promoted 1.1.0 to champion over 1.0.0", "paired: mcnemar", "better", "month"):
        assert part in event.detail


def test_a_challenger_is_promoted_on_its_comparison_with_a_named_version(
    client: TestClient, bus: FakeBus
) -> None:
    answer = _promote(client, CHALLENGER.version, compared_with=SHADOW.version)
    assert answer.status_code == 200  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert [v["version"] for v in body["comparison"]["versions"]] == ["1.1.0", "1.2.0"]
    assert body["demoted"] == ["1.0.0"]


@pytest.mark.parametrize(
    ("version", "body", "status", "says"),
    [
        (RETIRED.version, {}, 409, "retired"),
        ("7.7.7", {}, 404, "7.7.7"),
        (CHAMPION.version, {}, 409, "already the champion"),
        (SHADOW.version, {"compared_with": "7.7.7"}, 422, "compared_with"),
        (SHADOW.version, {"compared_with": SHADOW.version}, 422, "itself"),
    ],
)
def test_a_promotion_that_cannot_be_is_refused_and_changes_nothing(
    client: TestClient, bus: FakeBus, version: str, body: dict[str, str], status: int, says: str
) -> None:
    answer = _promote(client, version, **body)
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    assert says in answer.text  # type: ignore[attr-defined]
    assert _published(bus) == []


def test_only_model_writers_promote_and_a_reason_is_needed(
    client: TestClient, bus: FakeBus
) -> None:
    assert _promote(client, SHADOW.version, key=SME).status_code == 403  # type: ignore[attr-defined]
    url = f"/v1/models/{MODEL_ID}/versions/{SHADOW.version}/promote"
    assert client.post(url, json={"reason": ""}, headers=bearer(SCIENTIST)).status_code == 422
    assert client.post(url, json={}, headers=bearer(SCIENTIST)).status_code == 422
    assert _published(bus) == []
