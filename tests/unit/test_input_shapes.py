"""The allowed shapes of values, ids, names and timestamps, enforced at every HTTP edge.

Each hostile value here was accepted before (and echoed as null, wrapped around, dead-lettered
downstream, or stored as it came); now it is refused with a 422 naming the field, or, for an
integer beyond Avro's long in a feature value or label, stored as the double it is.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from feedback.api import FeedbackLog
from feedback.api import create_app as feedback_app
from feedback.config import Settings as FeedbackSettings
from feedback.handlers import FeedbackIn
from prediction_logger.api import PredictionLog
from prediction_logger.api import create_app as logger_app
from prediction_logger.config import Settings
from prediction_logger.handlers import PredictionIn, check_batch, valid_events
from registry.api import Registry
from registry.api import create_app as registry_app
from tests.access import ADMIN, fake_guard
from tests.samples import MODEL, one_feature_model
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import FeedbackEvent, PredictionEvent
from vigil.wire.shapes import Identifier, Name, is_identifier, is_name
from vigil.wire.topics import FEEDBACK, PREDICTIONS

BIG = 2**63 + 5  # wrapped to -6 by Avro's long before
HOSTILE_IDS = ["", ".", "..", "a/b", "../x", "a b", "a\r\nb", "a\x00b", "<b>x</b>", "x" * 129, "é"]
GOOD_IDS = ["credit-risk", "1.0.1795824322", "5f0c2a9e8b7d4c3fa1e2d3c4b5a69788", "order:17_b", "A"]
HOSTILE_NAMES = ["", "a\nb", "a\rb", "a\x00b", "a\tb", "a\u2028b", "\u202eevil", "x" * 129]
GOOD_NAMES = ["income", "income (€)", "<b>bold</b> is text", "a b", "x" * 128, "région"]


@pytest.fixture
def registry() -> Iterator[TestClient]:
    with TestClient(
        registry_app(adapters=Registry(FakeBus(), FakeCatalog([MODEL])), guard=fake_guard()),
        headers=ADMIN,
    ) as client:
        yield client


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def logger(bus: FakeBus) -> Iterator[TestClient]:
    log = PredictionLog(bus, FakeCatalog([MODEL]), FakeIdempotencyStore())
    with TestClient(logger_app(Settings(), log, guard=fake_guard()), headers=ADMIN) as client:
        yield client


@pytest.fixture
def feedback(bus: FakeBus) -> Iterator[TestClient]:
    with TestClient(
        feedback_app(
            adapters=FeedbackLog(bus, FakeCatalog([MODEL]), FakeIdempotencyStore()),
            guard=fake_guard(),
        ),
        headers=ADMIN,
    ) as client:
        yield client


def _post_raw(client: TestClient, url: str, body: Any, method: str = "POST") -> Any:
    """Send a body with NaN or infinities as Python's json writes them (most clients do)."""
    content = json.dumps(body)  # allow_nan: NaN, Infinity, -Infinity
    headers = {"content-type": "application/json"}
    return client.request(method, url, content=content, headers=headers)


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


# -- numbers: finite, and integers within Avro's long -------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_ranges_and_business_costs_are_refused(registry: TestClient, bad: float) -> None:
    body = one_feature_model("m")
    body["features"] = [{"name": "x", "type": "numeric", "min": bad}]
    assert _fields(_post_raw(registry, "/v1/models", body)) == ["features.0.min"]
    costs = {**one_feature_model("m"), "business_costs": {"false_positive": bad}}
    response = _post_raw(registry, "/v1/models", costs)
    assert _fields(response) == ["business_costs"]
    assert "false_positive" in response.json()["errors"][0]["expected"]
    assert response.json()["errors"][0]["received"] != '{"false_positive":null}'


@pytest.mark.parametrize(
    ("setting", "bad"),
    [
        ("threshold", float("nan")),
        ("window_seconds", float("inf")),
        ("lateness_seconds", float("inf")),
        ("drift_share", float("nan")),
        ("feature_thresholds", {"income": float("-inf")}),
        ("window_events", BIG),
        ("min_events", 2**64 - 1),
    ],
)
def test_non_finite_or_oversized_drift_settings_are_refused(
    registry: TestClient, setting: str, bad: Any
) -> None:
    url = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/drift"
    assert _fields(_post_raw(registry, url, {setting: bad}, "PUT")) == [setting]


def test_integers_beyond_a_long_are_stored_as_doubles_never_wrapped(
    logger: TestClient, bus: FakeBus
) -> None:
    event = {
        "prediction_id": "p-big",
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "features": {"income": BIG, "region": "eu"},
        "prediction": 2**64 - 1,
    }
    assert logger.post("/v1/predictions", json=event).status_code == 200
    (stored,) = bus.records(PREDICTIONS, Codec(PredictionEvent))
    assert stored.features["income"] == float(BIG)
    assert stored.prediction == float(2**64 - 1)
    # A long stays a long, exactly.
    event = {**event, "prediction_id": "p-long", "features": {"income": 2**63 - 1, "region": "eu"}}
    assert logger.post("/v1/predictions", json=event).status_code == 200
    assert bus.records(PREDICTIONS, Codec(PredictionEvent))[1].features["income"] == 2**63 - 1


def test_a_feedback_label_beyond_a_long_is_a_double(feedback: TestClient, bus: FakeBus) -> None:
    response = feedback.post("/v1/feedback", json={"prediction_id": "p-1", "actual": BIG})
    assert response.status_code == 200, response.text
    (stored,) = bus.records(FEEDBACK, Codec(FeedbackEvent))
    assert stored.actual == float(BIG)


def test_non_finite_scores_are_refused_even_when_the_json_parser_reads_them() -> None:
    with pytest.raises(ValidationError, match="finite"):
        PredictionIn.model_validate_json(
            '{"model_id": "m", "model_version": "1", "features": {}, "prediction": 1, "score": NaN}'
        )


# -- timestamps: 1970-01-01 .. 2100-01-01 UTC, and not far ahead of the server's clock ------


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        -1,
    ],
)
def test_timestamps_outside_the_range_are_refused(
    logger: TestClient, feedback: TestClient, stamp: object
) -> None:
    event = {
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
        "timestamp": stamp,
    }
    assert _fields(logger.post("/v1/predictions", json=[event])) == ["timestamp"]
    given = {"prediction_id": "p-1", "flag": "ok", "timestamp": stamp}
    assert _fields(feedback.post("/v1/feedback", json=given)) == ["timestamp"]


def test_a_time_without_timezone_is_utc(logger: TestClient, bus: FakeBus) -> None:
    event = {
        "prediction_id": "p-naive",
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "timestamp": "2026-11-27T12:00:00",
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
    }
    assert logger.post("/v1/predictions", json=event).status_code == 200
    (stored,) = bus.records(PREDICTIONS, Codec(PredictionEvent))
    assert stored.timestamp == datetime(2026, 11, 27, 12, tzinfo=UTC)


def _at(offset: timedelta, i: int = 0) -> dict[str, Any]:
    return {
        "prediction_id": f"p-{i}",
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "timestamp": (datetime.now(UTC) + offset).isoformat(),
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
    }


def test_events_far_ahead_of_the_server_clock_are_refused(
    logger: TestClient, feedback: TestClient
) -> None:
    batch = [_at(timedelta(seconds=60), 0), _at(timedelta(hours=1), 1), _at(timedelta(0), 2)]
    response = logger.post("/v1/predictions", json=batch)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["index"]) == ("timestamp", 1)
    assert "300 s after the server's clock" in error["expected"]
    assert logger.post("/v1/predictions", json=[batch[0], batch[2]]).status_code == 200
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    given = {"prediction_id": "p-1", "flag": "ok", "timestamp": ahead}
    assert _fields(feedback.post("/v1/feedback", json=given)) == ["timestamp"]


def test_the_clock_skew_tolerance_is_a_setting_passed_to_the_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_MAX_CLOCK_SKEW_SECONDS", "3600")
    assert VigilSettings().max_clock_skew_seconds == 3600
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    item = _at(timedelta(0))
    item["timestamp"] = (now + timedelta(minutes=30)).isoformat()
    catalog = FakeCatalog([MODEL])
    assert valid_events([item], catalog, now) is None
    assert valid_events([item], catalog, now, max_clock_skew=3600) is not None
    parsed = [PredictionIn.model_validate(item)]
    assert check_batch(parsed, catalog, now).errors[0].field == "timestamp"
    assert not check_batch(parsed, catalog, now, max_clock_skew=3600).problems
    given = {"prediction_id": "p-1", "flag": "ok", "timestamp": item["timestamp"]}
    with pytest.raises(ValidationError, match="timestamp"):
        FeedbackIn.model_validate(given, context={"now": now})
    FeedbackIn.model_validate(given, context={"now": now, "max_clock_skew": 3600})


def test_the_services_use_the_configured_clock_skew(bus: FakeBus) -> None:
    """VIGIL_MAX_CLOCK_SKEW_SECONDS reaches both HTTP edges that take event times."""
    log = PredictionLog(bus, FakeCatalog([MODEL]), FakeIdempotencyStore())
    ahead = _at(timedelta(minutes=30))
    given = {"prediction_id": "p-9", "flag": "ok", "timestamp": ahead["timestamp"]}
    with TestClient(
        logger_app(Settings(max_clock_skew_seconds=3600), log, guard=fake_guard()), headers=ADMIN
    ) as client:
        assert client.post("/v1/predictions", json=ahead).status_code == 200
    with TestClient(logger_app(Settings(), log, guard=fake_guard()), headers=ADMIN) as client:
        assert (
            client.post("/v1/predictions", json={**ahead, "prediction_id": "q"}).status_code == 422
        )
    lenient = FeedbackSettings(max_clock_skew_seconds=3600)
    with TestClient(
        feedback_app(
            lenient,
            adapters=FeedbackLog(bus, FakeCatalog([MODEL]), FakeIdempotencyStore()),
            guard=fake_guard(),
        ),
        headers=ADMIN,
    ) as client:
        assert client.post("/v1/feedback", json=given).status_code == 200


# -- ids and names ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_ids_are_refused_with_the_expected_shape(
    registry: TestClient, logger: TestClient, feedback: TestClient, bad: str
) -> None:
    response = registry.post("/v1/models", json={**one_feature_model("m"), "version": bad})
    assert _fields(response) == ["version"]
    assert response.json()["errors"][0]["expected"].startswith("an id: 1 to 128 characters")
    event = {
        "prediction_id": bad,
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
    }
    assert _fields(logger.post("/v1/predictions", json=event)) == ["prediction_id"]
    given = {"prediction_id": "p-1", "feedback_id": bad, "model_id": bad, "flag": "ok"}
    assert _fields(feedback.post("/v1/feedback", json=given)) == ["feedback_id", "model_id"]


@pytest.mark.parametrize("good", GOOD_IDS)
def test_ids_of_the_allowed_shape_are_accepted(registry: TestClient, good: str) -> None:
    response = registry.post("/v1/models", json={**one_feature_model(good), "version": good})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("bad", HOSTILE_NAMES)
def test_hostile_names_are_refused(
    registry: TestClient, logger: TestClient, feedback: TestClient, bad: str
) -> None:
    body = {**one_feature_model("m"), "features": [{"name": bad, "type": "numeric"}]}
    assert _fields(registry.post("/v1/models", json=body)) == ["features.0.name"]
    assert _fields(registry.post("/v1/models", json={**one_feature_model("m"), "owner": bad}))
    event = {
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
        "tags": {bad: "x"},
    }
    assert _fields(logger.post("/v1/predictions", json=event)) == [f"tags.{bad}.[key]"]
    given = {"prediction_id": "p-1", "flag": "ok", "reviewer": bad}
    assert _fields(feedback.post("/v1/feedback", json=given)) == ["reviewer"]


@pytest.mark.parametrize("good", GOOD_NAMES)
def test_names_of_the_allowed_shape_are_accepted(registry: TestClient, good: str) -> None:
    body = {**one_feature_model("m"), "features": [{"name": good, "type": "numeric"}]}
    assert registry.post("/v1/models", json=body).status_code == 201


def test_free_text_is_capped_and_has_no_nul(feedback: TestClient, logger: TestClient) -> None:
    for comment in ["a\x00b", "x" * 10_001]:
        given = {"prediction_id": "p-1", "flag": "ok", "comment": comment}
        assert _fields(feedback.post("/v1/feedback", json=given)) == ["comment"]
    event = {
        "model_id": MODEL.model_id,
        "model_version": MODEL.version,
        "features": {"income": 1, "region": "eu"},
        "prediction": True,
        "tags": {"variant": "x" * 1025},
    }
    assert _fields(logger.post("/v1/predictions", json=event)) == ["tags.variant"]
    comment = "line one\nline two <b>"
    given = {"prediction_id": "p-1", "flag": "ok", "comment": comment}
    assert feedback.post("/v1/feedback", json=given).status_code == 200


def test_the_plain_checks_agree_with_the_pydantic_types() -> None:
    """The logger's fast path uses the plain functions; the models use the types."""
    rng = random.Random(9)
    alphabet = "aZ09._:-/ \n\r\t\x00\x7f\x85\u2028\u202eé€<>"
    ids, names = TypeAdapter(Identifier), TypeAdapter(Name)
    samples = HOSTILE_IDS + GOOD_IDS + HOSTILE_NAMES + GOOD_NAMES + ["a\n", "x" * 128]
    samples += ["".join(rng.choices(alphabet, k=rng.randint(0, 6))) for _ in range(3000)]
    for text in samples:
        for plain, typed in ((is_identifier, ids), (is_name, names)):
            try:
                typed.validate_python(text)
                valid = True
            except ValidationError:
                valid = False
            assert plain(text) == valid, (plain.__name__, text)
