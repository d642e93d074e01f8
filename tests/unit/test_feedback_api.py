"""The feedback API on fakes: what a label pipeline or a reviewer sees for each request."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from feedback.api import FeedbackLog, create_app
from feedback.config import Settings
from tests.access import ADMIN, api_key, bearer, fake_guard
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from vigil.adapters.idempotency import scoped_id
from vigil.adapters.ports import Claim, Unavailable
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, ModelVersion
from vigil.wire.topics import FEEDBACK

EVENTS = Codec(FeedbackEvent)


def _version(model_id: str, task: str = "binary", **changes: Any) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "model_id": model_id,
            "version": "1",
            "task": task,
            "features": [{"name": "x", "type": "numeric"}],
            "risk": {"probability": 1, "impact": 1, "severity": "low"},
            "owner": "tests",
            "created_at": "2026-11-27T12:00:00Z",
            "updated_at": "2026-11-27T12:00:00Z",
            **changes,
        }
    )


# credit-risk is binary (true/1 positive), price a regression, kind multiclass, old retired;
# later is registered by another process a moment before its feedback comes.
MODELS = [
    _version("credit-risk"),
    _version("price", "regression"),
    _version("kind", "multiclass"),
    _version("old", status="retired"),
]


@pytest.fixture
def log() -> FeedbackLog:
    catalog = FakeCatalog(MODELS, elsewhere=[_version("later", "regression")])
    return FeedbackLog(FakeBus(), catalog, FakeIdempotencyStore())


@pytest.fixture
def client(log: FeedbackLog) -> Iterator[TestClient]:
    with TestClient(create_app(adapters=log, guard=fake_guard()), headers=ADMIN) as client:
        yield client


def _bus(log: FeedbackLog) -> FakeBus:
    assert isinstance(log.bus, FakeBus)
    return log.bus


def _keys(log: FeedbackLog) -> FakeIdempotencyStore:
    assert isinstance(log.keys, FakeIdempotencyStore)
    return log.keys


def _published(log: FeedbackLog) -> list[FeedbackEvent]:
    return _bus(log).records(FEEDBACK, EVENTS)


def _truth(pid: str, actual: object = True, **changes: Any) -> dict[str, Any]:
    return {"prediction_id": pid, "model_id": "credit-risk", "actual": actual, **changes}


def test_feedback_is_accepted_and_published_keyed_by_prediction(
    client: TestClient, log: FeedbackLog
) -> None:
    response = client.post(
        "/v1/feedback",
        json=[
            {"prediction_id": "p1", "actual": True, "feedback_id": "f1"},
            {"prediction_id": "p2", "flag": "harmful", "comment": "rude", "reviewer": "admin"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: v for k, v in body.items() if k != "feedback_ids"} == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }
    assert body["feedback_ids"][0] == "f1"
    assert [(e.feedback_id, e.actual, e.flag, e.reviewer) for e in _published(log)] == [
        ("f1", True, None, "admin"),
        (body["feedback_ids"][1], None, "harmful", "admin"),
    ]
    assert _bus(log).keys(FEEDBACK) == ["p1", "p2"]


def _as_json(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    return orjson.dumps(items), {"content-type": "application/json"}


def _as_ndjson(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    lines = b"\n".join(orjson.dumps(i) for i in items) + b"\n"
    return lines, {"content-type": "application/x-ndjson"}


def _gzipped(form: Any) -> Any:
    def encode(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        body, headers = form(items)
        return gzip.compress(body), {**headers, "content-encoding": "gzip"}

    return encode


@pytest.mark.parametrize(
    "form",
    [_as_json, _as_ndjson, _gzipped(_as_json), _gzipped(_as_ndjson)],
    ids=["json", "ndjson", "gzip-json", "gzip-ndjson"],
)
def test_every_body_form_stores_the_same_feedback(
    client: TestClient, log: FeedbackLog, form: Any
) -> None:
    items = [
        _truth("p1", True, feedback_id="f1", timestamp="2026-11-27T12:00:00Z"),
        _truth("p2", 0, flag="incorrect", comment="fine"),
        {"prediction_id": "p3", "model_id": "price", "actual": 12.5, "source": "ground_truth"},
    ]
    body, headers = form(items)
    response = client.post("/v1/feedback", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    stored = [(e.prediction_id, e.actual, e.flag, e.source) for e in _published(log)]
    assert stored == [
        ("p1", True, None, "sme"),
        ("p2", 0, "incorrect", "sme"),
        ("p3", 12.5, None, "ground_truth"),
    ]
    assert _published(log)[0].timestamp.isoformat() == "2026-11-27T12:00:00+00:00"


def test_one_object_is_a_batch_of_one(client: TestClient, log: FeedbackLog) -> None:
    response = client.post("/v1/feedback", json=_truth("p1"))
    assert (response.status_code, response.json()["accepted"]) == (200, 1)
    assert len(_published(log)) == 1


def test_one_invalid_item_rejects_the_batch_naming_every_problem(
    client: TestClient, log: FeedbackLog
) -> None:
    batch = [_truth("p0"), _truth("p1", "maybe"), {"prediction_id": "p2"}, _truth("p3")]
    response = client.post("/v1/feedback", json=batch)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == (
        "2 of 4 item(s) rejected; nothing was stored (send ?partial=true to store the valid ones)"
    )
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "actual"), (2, "<body>")]
    assert _published(log) == []


def test_partial_stores_the_valid_items_and_lists_the_others(
    client: TestClient, log: FeedbackLog
) -> None:
    batch = [_truth("p0"), _truth("p1", "maybe"), {"prediction_id": "p2"}, _truth("p3")]
    response = client.post("/v1/feedback", params={"partial": "true"}, json=batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 2)
    assert body["errors"][0] == {
        "field": "actual",
        "expected": "true or 1 (the positive class) or false or 0 (the negative),"
        " for model 'credit-risk'",
        "received": '"maybe"',
        "index": 1,
    }
    assert body["errors"][1]["index"] == 2
    assert [e.prediction_id for e in _published(log)] == ["p0", "p3"]
    assert len(body["feedback_ids"]) == 2


def test_a_resent_feedback_id_is_stored_once_and_reported_a_duplicate(
    client: TestClient, log: FeedbackLog
) -> None:
    first = client.post("/v1/feedback", json=[_truth("p1", feedback_id="f1"), _truth("p2")])
    assert (first.json()["accepted"], first.json()["duplicates"]) == (2, 0)
    again = client.post(
        "/v1/feedback",
        json=[
            _truth("p1", feedback_id="f1"),  # sent before
            _truth("p9", feedback_id="f9"),
            _truth("p9", feedback_id="f9"),  # twice in one batch
            _truth("p3", feedback_id="f1"),  # the same id for another prediction is other feedback
            _truth("p2"),  # without an id: never a duplicate
        ],
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["accepted"], body["duplicates"]) == (3, 2)
    assert body["feedback_ids"][:4] == ["f1", "f9", "f9", "f1"]
    stored = [(e.prediction_id, e.feedback_id) for e in _published(log)]
    assert stored.count(("p1", "f1")) == stored.count(("p9", "f9")) == 1
    assert [p for p, _ in stored] == ["p1", "p2", "p9", "p3", "p2"]
    # Only the ids senders gave are kept for de-duplication; generated ones cannot repeat.
    assert set(_keys(log).states) == {
        scoped_id("p1", "f1"),
        scoped_id("p9", "f9"),
        scoped_id("p3", "f1"),
    }


@pytest.mark.parametrize(
    ("item", "field", "expected", "received"),
    [
        (
            {"prediction_id": "p", "model_id": "nope", "actual": 1},
            "model_id",
            "a registered model",
            '"nope"',
        ),
        (
            {"prediction_id": "p", "model_id": "old", "flag": "ok"},
            "model_id",
            "a model with a version that is not retired",
            '"old" (every version is retired)',
        ),
        (
            {"prediction_id": "p", "model_id": "price", "actual": "12.5"},
            "actual",
            "a number (the model is a regression model), for model 'price'",
            '"12.5"',
        ),
        (
            {"prediction_id": "p", "model_id": "price", "actual": True},
            "actual",
            "a number (the model is a regression model), for model 'price'",
            "true",
        ),
        (
            {"prediction_id": "p", "model_id": "credit-risk", "actual": 2},
            "actual",
            "true or 1 (the positive class) or false or 0 (the negative), for model 'credit-risk'",
            "2",
        ),
        (
            {"prediction_id": "p", "model_id": "kind", "actual": 0.5},
            "actual",
            "a class label: text, an integer or a boolean, for model 'kind'",
            "0.5",
        ),
    ],
    ids=[
        "unknown model",
        "retired model",
        "text for a regression",
        "boolean for a regression",
        "not a binary label",
        "fraction for a multiclass",
    ],
)
def test_feedback_its_model_cannot_take_is_422_naming_the_item_and_field(
    client: TestClient,
    log: FeedbackLog,
    item: dict[str, Any],
    field: str,
    expected: str,
    received: str,
) -> None:
    response = client.post("/v1/feedback", json=[_truth("ok"), item])
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": field, "expected": expected, "received": received, "index": 1}
    ]
    assert _published(log) == []


def test_labels_that_fit_their_model_or_name_none_are_accepted(
    client: TestClient, log: FeedbackLog
) -> None:
    batch = [
        _truth("b1", "False"),  # binary: true/false and 1/0, in any case or type
        _truth("b2", 1.0),
        {"prediction_id": "r1", "model_id": "price", "actual": -3},
        {"prediction_id": "m1", "model_id": "kind", "actual": "cat"},
        {"prediction_id": "m2", "model_id": "kind", "actual": 7},
        {"prediction_id": "n1", "actual": "anything: checked once joined"},
        {"prediction_id": "l1", "model_id": "later", "actual": 2.5},  # registered a moment ago
    ]
    response = client.post("/v1/feedback", json=batch)
    assert response.status_code == 200, response.text
    assert len(_published(log)) == len(batch)
    assert isinstance(log.catalog, FakeCatalog) and log.catalog.catch_ups == 1


def test_a_bus_that_fails_means_503_and_the_ids_can_be_resent(
    client: TestClient, log: FeedbackLog
) -> None:
    _bus(log).down = True
    response = client.post("/v1/feedback", json=_truth("p1", feedback_id="f1"))
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["detail"] == (
        "Kafka is unavailable (KafkaConnectionError); nothing was stored, retry later"
    )
    assert _keys(log).states == {}  # the claim was given back
    _bus(log).down = False
    resent = client.post("/v1/feedback", json=_truth("p1", feedback_id="f1"))
    assert (resent.status_code, resent.json()["accepted"]) == (200, 1)


class _DownKeys(FakeIdempotencyStore):
    async def claim(self, ids: Sequence[str]) -> list[Claim]:
        raise Unavailable("Redis", "ConnectionError")


def test_an_idempotency_redis_that_fails_means_503(log: FeedbackLog) -> None:
    down = FeedbackLog(log.bus, log.catalog, _DownKeys())
    with TestClient(create_app(adapters=down, guard=fake_guard()), headers=ADMIN) as client:
        response = client.post("/v1/feedback", json=_truth("p1", feedback_id="f1"))
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["detail"] == (
        "Redis is unavailable (ConnectionError); nothing was stored, retry later"
    )
    assert _published(log) == []


def test_an_id_another_request_is_storing_is_503_retry_shortly(
    client: TestClient, log: FeedbackLog
) -> None:
    _keys(log).states[scoped_id("p2", "busy")] = "pending"
    response = client.post(
        "/v1/feedback", json=[_truth("p1", feedback_id="free"), _truth("p2", feedback_id="busy")]
    )
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    assert "feedback_ids are being stored by another request" in response.json()["detail"]
    assert _keys(log).states == {scoped_id("p2", "busy"): "pending"}  # "free" given back
    assert _published(log) == []


def test_a_catalog_that_cannot_catch_up_means_503(client: TestClient, log: FeedbackLog) -> None:
    assert isinstance(log.catalog, FakeCatalog)
    log.catalog.down = True
    response = client.post("/v1/feedback", json=_truth("p1", model_id="unheard-of"))
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert _published(log) == []


def test_oversized_batches_and_deep_nesting_are_413_naming_the_limit(log: FeedbackLog) -> None:
    settings = Settings(feedback_max_body_bytes=5_000, feedback_max_items=3)
    with TestClient(create_app(settings, log, guard=fake_guard()), headers=ADMIN) as client:
        too_big = client.post("/v1/feedback", json={"prediction_id": "p", "comment": "x" * 6_000})
        assert too_big.status_code == 413
        assert too_big.json()["detail"] == "the request body is over the limit of 5000 bytes"
        many = client.post("/v1/feedback", json=[{"prediction_id": "p", "actual": 1}] * 4)
        assert many.status_code == 413
        assert many.json()["errors"][0]["expected"] == "batch of at most 3 items"
        deep: object = 1
        for _ in range(40):
            deep = [deep]
        nested = client.post("/v1/feedback", json={"prediction_id": "p", "actual": deep})
        assert nested.status_code == 413
        assert nested.json()["errors"][0]["expected"] == "JSON nesting of at most 32 levels"
        bomb = client.post(
            "/v1/feedback",
            content=gzip.compress(orjson.dumps([_truth(f"p{i}") for i in range(3)]) * 100),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert bomb.status_code == 413
        assert bomb.json()["detail"] == "the inflated body is over the limit of 5000 bytes"
    assert _published(log) == []


def test_the_author_is_the_keys_principal_and_sources_follow_roles(log: FeedbackLog) -> None:
    ana, ana_key = api_key("ana", ["sme"], ["credit-risk"])
    app_secret, app_key = api_key("label-pipeline", ["producer"], ["credit-risk"])
    guard = fake_guard(ana_key, app_key)
    with TestClient(create_app(adapters=log, guard=guard)) as client:
        review = {"prediction_id": "p1", "model_id": "credit-risk", "flag": "incorrect"}
        assert client.post("/v1/feedback", json=review, headers=bearer(ana)).status_code == 200
        forged = client.post(
            "/v1/feedback", json={**review, "reviewer": "bob"}, headers=bearer(ana)
        )
        assert forged.status_code == 422 and forged.json()["errors"][0]["field"] == "reviewer"
        truth = {"prediction_id": "p1", "model_id": "credit-risk", "actual": 1}
        as_sme = client.post(
            "/v1/feedback", json={**truth, "source": "ground_truth"}, headers=bearer(ana)
        )
        assert as_sme.status_code == 403 and as_sme.json()["errors"][0]["field"] == "source"
        as_producer = client.post(
            "/v1/feedback", json={**truth, "source": "ground_truth"}, headers=bearer(app_secret)
        )
        assert as_producer.status_code == 200
        unscoped = client.post(
            "/v1/feedback", json={"prediction_id": "p2", "flag": "ok"}, headers=bearer(ana)
        )
        assert unscoped.status_code == 403 and unscoped.json()["errors"][0]["received"] == "missing"
        mixed = client.post(
            "/v1/feedback", json=[review, {**review, "model_id": "other"}], headers=bearer(ana)
        )
        assert mixed.status_code == 403 and mixed.json()["errors"][0]["index"] == 1
        # With partial, what the key may not send is listed like any invalid item.
        partial = client.post(
            "/v1/feedback",
            params={"partial": "true"},
            json=[{**review, "model_id": "other"}, {**review, "prediction_id": "p3"}],
            headers=bearer(ana),
        )
        assert partial.status_code == 200, partial.text
        assert (partial.json()["accepted"], partial.json()["rejected"]) == (1, 1)
        assert partial.json()["errors"][0]["field"] == "model_id"
    authors = [(e.reviewer, e.source) for e in _published(log)]
    assert authors == [("ana", "sme"), ("label-pipeline", "ground_truth"), ("ana", "sme")]
