"""The registry API on fakes: registration, duplicates, 404s, reference uploads, and If-Match."""

from __future__ import annotations

import asyncio
import gzip
import io
from collections.abc import Iterator, Sequence

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from registry.api import Registry, create_app
from registry.config import Settings
from tests.access import ADMIN, fake_guard
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeBus, FakeCatalog, FakeRevisionLocks
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion
from vigil.wire.topics import MODELS

VERSIONS = Codec(ModelVersion)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog([MODEL], keep_retired=True)


@pytest.fixture
def client(bus: FakeBus, catalog: FakeCatalog) -> Iterator[TestClient]:
    with TestClient(
        create_app(adapters=Registry(bus, catalog), guard=fake_guard()), headers=ADMIN
    ) as client:
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


# Hostile or unlucky input: refused with a clear 4xx, or 503 when Kafka is down; never a 500.

REFERENCE = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/reference"


@pytest.fixture
def strict(bus: FakeBus, catalog: FakeCatalog) -> Iterator[TestClient]:
    settings = Settings(
        registry_max_reference_rows=10,
        registry_max_record_bytes=20_000,
        registry_max_reference_bytes=100_000,
    )
    with TestClient(
        create_app(settings, Registry(bus, catalog), guard=fake_guard()), headers=ADMIN
    ) as client:
        yield client


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client: TestClient, bus: FakeBus) -> None:
    huge_owner = {**one_feature_model("big"), "owner": "x" * (2 * 1024 * 1024)}
    response = client.post("/v1/models", json=huge_owner)
    assert response.status_code == 413
    assert "over the limit of 1048576 bytes" in response.json()["detail"]
    chunked = client.post(
        "/v1/models",
        content=iter([b"[" * 600_000] * 2),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    assert bus.messages == {}


def test_json_nested_deeper_than_the_limit_is_refused_naming_it(client: TestClient) -> None:
    deep: object = 1.0
    for _ in range(40):
        deep = {"a": deep}
    url = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/drift"
    response = client.put(url, json={"threshold": 0.2, "feature_thresholds": deep})
    assert response.status_code == 413
    assert response.json()["errors"][0]["expected"] == "JSON nesting of at most 32 levels"


def test_a_record_over_kafkas_message_limit_is_413_and_not_published(
    strict: TestClient, bus: FakeBus
) -> None:
    model = one_feature_model("cats")
    model["features"] = [
        {"name": "c", "type": "categorical", "categories": [f"category-{i}" for i in range(2_000)]}
    ]
    response = strict.post("/v1/models", json=model)
    assert response.status_code == 413
    assert "model version record is over the limit of 20000 bytes" in response.json()["detail"]
    assert bus.messages == {}


def test_kafka_down_is_503_with_retry_after(
    client: TestClient, bus: FakeBus, catalog: FakeCatalog
) -> None:
    bus.down = True
    refused = client.post("/v1/models", json=one_feature_model("m", "2"))
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
    catalog.down = True
    unread = client.post("/v1/models", json=one_feature_model("m", "3"))
    assert (unread.status_code, unread.headers["retry-after"]) == (503, "5")
    assert client.get(f"/v1/models/{MODEL.model_id}/versions/9").status_code == 503


def _csv(client: TestClient, text: str) -> dict[str, object]:
    response = client.post(REFERENCE, content=text.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 422, response.text
    body: dict[str, object] = response.json()
    return body


def test_unreadable_csv_is_422_naming_the_problem(client: TestClient, bus: FakeBus) -> None:
    long_field = _csv(client, 'income,region\n1,"' + "x" * 200_000 + '"\n')
    assert long_field["errors"] == [
        {
            "field": "<body>",
            "expected": "CSV fields of at most 131072 characters",
            "received": "field larger than field limit (131072)",
        }
    ]
    extra = _csv(client, "income,region,unknown\n1,eu,2,3,4\n")
    assert extra["errors"] == [
        {"field": "<row>", "expected": "3 cells, as in the header", "received": "5", "index": 0}
    ]
    assert bus.messages == {}


def _parquet_pyarrow_cannot_read() -> bytes:
    """A file whose footer's Arrow schema has an integer type pyarrow does not implement.

    Reading it raises ArrowNotImplementedError, which is not a ValueError.
    """
    sink = io.BytesIO()
    pq.write_table(pa.table({"income": [1.0, 2.0], "region": ["eu", "us"]}), sink)
    field_type = b"///8AAAEFEAAAABw"  # within the base64 of the Arrow schema
    assert sink.getvalue().count(field_type) == 1
    return sink.getvalue().replace(field_type, b"///8AAAECEAAAABw")


def test_a_malformed_parquet_file_is_422(client: TestClient) -> None:
    headers = {"content-type": "application/vnd.apache.parquet"}
    for body in (b"PAR1garbage", b"PAR1" + b"\x00" * 100 + b"PAR1", _parquet_pyarrow_cannot_read()):
        response = client.post(REFERENCE, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["expected"] == "a Parquet file"


def test_a_reference_over_the_row_cap_is_413_naming_it(strict: TestClient) -> None:
    table = pa.table({"income": list(range(11)), "region": ["eu"] * 11})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    headers = {"content-type": "application/vnd.apache.parquet"}
    parquet = strict.post(REFERENCE, content=sink.getvalue(), headers=headers)
    assert parquet.status_code == 413
    assert parquet.json()["errors"][0] == {
        "field": "<body>",
        "expected": "reference sample of at most 10 rows",
        "received": "11 rows",
    }
    rows = [{"income": i, "region": "eu"} for i in range(11)]
    assert strict.post(REFERENCE, json=rows).status_code == 413
    csv = "income,region\n" + "1,eu\n" * 11
    assert (
        strict.post(REFERENCE, content=csv, headers={"content-type": "text/csv"}).status_code == 413
    )


def test_a_gzip_bomb_is_refused_as_it_inflates(strict: TestClient) -> None:
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    response = strict.post(REFERENCE, content=bomb, headers=headers)
    assert response.status_code == 413
    assert response.json()["detail"] == "the inflated body is over the limit of 100000 bytes"


def test_unreadable_bodies_are_400_in_the_house_shape(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    broken = client.post("/v1/models", content=b'{"model_id": ', headers=headers)
    assert broken.status_code in (400, 422)
    assert set(broken.json()) == {"detail", "errors"}
    truncated = client.post(
        REFERENCE,
        content=gzip.compress(b'[{"income": 1, "region": "eu"}]')[:-8],
        headers={**headers, "content-encoding": "gzip"},
    )
    assert truncated.status_code == 400
    assert truncated.json()["errors"][0]["received"] == "truncated"
    assert set(client.get("/v1/nowhere").json()) == {"detail", "errors"}


# Optimistic concurrency: every version has an ETag; updates honour If-Match and are
# serialised per version by the revision locks (shared by every replica in production).

VERSION_URL = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}"
DRIFT = f"{VERSION_URL}/drift"
ROWS = [{"income": float(i), "region": "eu" if i % 3 else "us"} for i in range(200)]


class SlowBus(FakeBus):
    """A bus whose writes take a while, as Kafka's acknowledgements do: concurrent requests
    overlap in the read-modify-write window that the locks must protect."""

    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        await asyncio.sleep(0.05)
        await super().send(topic, messages)


@pytest.fixture
def locks() -> FakeRevisionLocks:
    return FakeRevisionLocks()


@pytest.fixture
def locked(bus: FakeBus, catalog: FakeCatalog, locks: FakeRevisionLocks) -> Iterator[TestClient]:
    settings = Settings(registry_lock_wait_seconds=0.05)
    with TestClient(
        create_app(settings, Registry(bus, catalog, locks), guard=fake_guard()), headers=ADMIN
    ) as client:
        yield client


def test_each_write_answers_a_new_etag_that_reads_then_serve(locked: TestClient) -> None:
    first = locked.get(VERSION_URL).headers["etag"]
    drift = locked.put(DRIFT, json={"window_seconds": 120}, headers={"if-match": first})
    assert drift.status_code == 200, drift.text
    second = drift.headers["etag"]
    upload = locked.post(f"{VERSION_URL}/reference", json=ROWS, headers={"if-match": second})
    assert upload.status_code == 200, upload.text
    third = upload.headers["etag"]
    assert len({first, second, third}) == 3
    assert locked.get(VERSION_URL).headers["etag"] == third
    again = locked.put(DRIFT, json={"window_seconds": 120})  # no If-Match: still accepted
    assert again.status_code == 200
    assert again.headers["etag"] != third  # the same settings again are still a new revision


def test_a_stale_etag_is_412_naming_the_current_one_and_changes_nothing(
    locked: TestClient, bus: FakeBus
) -> None:
    stale = locked.get(VERSION_URL).headers["etag"]
    assert locked.put(DRIFT, json={"window_seconds": 120}).status_code == 200
    current = locked.get(VERSION_URL).headers["etag"]
    published = len(bus.messages[MODELS.name])
    for refused in (
        locked.put(DRIFT, json={"window_seconds": 300}, headers={"if-match": stale}),
        locked.post(f"{VERSION_URL}/reference", json=ROWS, headers={"if-match": stale}),
        locked.put(DRIFT, json={"window_seconds": 300}, headers={"if-match": f"W/{current}"}),
    ):
        assert refused.status_code == 412, refused.text
        assert refused.headers["etag"] == current
        assert refused.json()["errors"] == [
            {
                "field": "If-Match",
                "expected": current,
                "received": refused.request.headers["if-match"],
            }
        ]
    assert len(bus.messages[MODELS.name]) == published
    assert locked.get(VERSION_URL).json()["drift"]["window_seconds"] == 120
    star = locked.put(DRIFT, json={"window_seconds": 300}, headers={"if-match": "*"})
    assert star.status_code == 200


async def test_concurrent_uploads_get_consecutive_reference_versions(
    catalog: FakeCatalog, locks: FakeRevisionLocks
) -> None:
    bus = SlowBus()
    app = create_app(adapters=Registry(bus, catalog, locks), guard=fake_guard())
    async with app.router.lifespan_context(app), _client(app) as client:
        before = (await client.get(VERSION_URL)).json()["reference"]
        n = before["version"] if before else 0
        uploads = [client.post(f"{VERSION_URL}/reference", json=ROWS) for _ in range(2)]
        answers = await asyncio.gather(*uploads)
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["reference_version"] for a in answers) == [n + 1, n + 2]
    assert len({a.headers["etag"] for a in answers}) == 2
    history = max(answers, key=lambda a: a.json()["reference_version"]).json()["history"]
    assert [h["version"] for h in history][-2:] == [n + 1, n + 2]
    assert locks.holders == {}  # every lock given back


async def test_concurrent_writes_from_one_revision_one_wins_the_other_is_412(
    catalog: FakeCatalog, locks: FakeRevisionLocks
) -> None:
    app = create_app(adapters=Registry(SlowBus(), catalog, locks), guard=fake_guard())
    async with app.router.lifespan_context(app), _client(app) as client:
        etag = (await client.get(VERSION_URL)).headers["etag"]
        writes = [
            client.put(DRIFT, json={"window_seconds": s}, headers={"if-match": etag})
            for s in (120, 300)
        ]
        answers = await asyncio.gather(*writes)
        final = (await client.get(VERSION_URL)).json()["drift"]["window_seconds"]
    assert sorted(a.status_code for a in answers) == [200, 412]
    (winner,) = [a for a in answers if a.status_code == 200]
    assert final == winner.json()["drift"]["window_seconds"]


def test_a_version_locked_elsewhere_too_long_is_409_and_redis_down_is_503(
    locked: TestClient, bus: FakeBus, locks: FakeRevisionLocks
) -> None:
    locks.holders[f"{MODEL.model_id}/{MODEL.version}"] = "another replica"
    busy = locked.put(DRIFT, json={"window_seconds": 120})
    assert (busy.status_code, busy.headers["retry-after"]) == (409, "1")
    assert "being changed by another request" in busy.json()["detail"]
    locks.holders.clear()
    locks.down = True
    down = locked.post(f"{VERSION_URL}/reference", json=ROWS)
    assert (down.status_code, down.headers["retry-after"]) == (503, "5")
    assert locked.get(VERSION_URL).status_code == 200  # reads do not need Redis
    assert bus.messages == {}


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry", headers=ADMIN
    )


async def test_a_version_registered_twice_at_once_is_stored_once(
    catalog: FakeCatalog, locks: FakeRevisionLocks
) -> None:
    bus = SlowBus()
    app = create_app(adapters=Registry(bus, catalog, locks), guard=fake_guard())
    async with app.router.lifespan_context(app), _client(app) as client:
        posts = [client.post("/v1/models", json=one_feature_model("twice")) for _ in range(2)]
        answers = await asyncio.gather(*posts)
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert bus.keys(MODELS) == ["twice/1"]


def test_a_version_is_retired_with_if_match_and_keeps_its_record(client: TestClient) -> None:
    etag = client.get(VERSION_URL).headers["etag"]
    retired = client.put(
        f"{VERSION_URL}/status", json={"status": "retired"}, headers={"if-match": etag}
    )
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert client.get(VERSION_URL).json()["features"]  # the registry serves the full record
    stale = client.put(
        f"{VERSION_URL}/status", json={"status": "champion"}, headers={"if-match": etag}
    )
    assert stale.status_code == 412
    assert client.put(f"{VERSION_URL}/status", json={"status": "gone"}).status_code == 422


def test_the_registry_refuses_bins_that_do_not_increase(client: TestClient) -> None:
    body = one_feature_model("seg", "1") | {"segments": [{"name": "x", "bins": [3, 3]}]}
    response = client.post("/v1/models", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "segments[0].bins" and "increasing" in error["expected"]


def test_the_registry_keeps_declared_segments(client: TestClient) -> None:
    body = one_feature_model("seg", "2") | {
        "segments": [{"name": "x", "bins": [1, 2]}, {"name": "region", "tag": True}],
        "segment_cross": ["x", "region"],
        "fairness": {"min_group_size": 30},
    }
    response = client.post("/v1/models", json=body)
    assert response.status_code == 201, response.text
    found = client.get("/v1/models/seg/versions/2").json()
    assert [s["name"] for s in found["segments"]] == ["x", "region"]
    assert found["fairness"]["min_group_size"] == 30
