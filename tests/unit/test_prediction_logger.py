"""The logger's quick pass over valid batches accepts only what the full checks accept, with the
same events, down to the Avro bytes."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from prediction_logger.handlers import Event, PredictionIn, check_batch, valid_events
from tests.samples import MODEL
from vigil.adapters.catalog import ModelCatalog
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, PredictionEvent

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CODEC = Codec(PredictionEvent)
ITEM = TypeAdapter(PredictionIn)

# "mixed": a numeric, a categorical and an optional boolean feature; "wide": 20 required
# numeric features, the shape the uniform check takes.
MIXED = MODEL.model_copy(
    update={
        "model_id": "mixed",
        "version": "1",
        "features": [
            FeatureSpec(name="income", type="numeric"),
            FeatureSpec(name="region", type="categorical"),
            FeatureSpec(name="vip", type="boolean", required=False),
        ],
    }
)
WIDE = MODEL.model_copy(
    update={
        "model_id": "wide",
        "version": "1",
        "features": [FeatureSpec(name=f"f{i}", type="numeric") for i in range(20)],
    }
)


@pytest.fixture(scope="module")
def catalog() -> ModelCatalog:
    catalog = ModelCatalog()
    catalog.apply(MIXED)
    catalog.apply(WIDE)
    return catalog


def _full_path(items: list[Any], catalog: ModelCatalog) -> tuple[int, list[Event]]:
    """Problems and events as the full path finds them, from each item's JSON."""
    parsed: list[PredictionIn | None] = []
    problems = 0
    for item in items:
        try:
            parsed.append(ITEM.validate_json(orjson.dumps(item)))
        except ValidationError:
            parsed.append(None)
            problems += 1
    checked = check_batch(parsed, catalog, NOW)
    return problems + len(checked.problems), checked.events


def _typed(value: Any) -> Any:
    """A value with the type of everything in it, so that 1 and 1.0 and True differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return (datetime, value, value.tzinfo)
    return (type(value), value)


def _assert_same(quick: list[Event], full: list[Event], items: list[Any]) -> None:
    assert len(quick) == len(full) == len(items)
    for q, f, item in zip(quick, full, items, strict=True):
        if item.get("prediction_id") is None:  # generated: random on both paths
            assert len(q["prediction_id"]) == 32
            q = {**q, "prediction_id": f["prediction_id"]}
        assert _typed(q) == _typed(f)
        assert CODEC.encode_dict(q) == CODEC.encode_dict(f)


def _mixed(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "prediction_id": f"p-{i}",
        "model_id": "mixed",
        "model_version": "1",
        "features": {"income": 52_000.5, "region": "eu", "vip": True},
        "prediction": True,
        **fields,
    }


VALID = [
    _mixed(0),
    _mixed(1, timestamp=1_790_000_000.123456),
    _mixed(2, timestamp=1_790_000_000_123),  # milliseconds
    _mixed(3, timestamp="2026-11-27T12:00:00.5+05:30"),
    _mixed(4, timestamp="2026-11-27T12:00:00"),  # naive
    _mixed(5, timestamp="1790000000"),
    _mixed(6, timestamp=None, score=None, sample_rate=None, prediction_id=None),
    _mixed(7, score=1, sample_rate=1, prediction=3),
    _mixed(8, score=0.25, sample_rate=0.5, prediction="approve", tags={"variant": "a"}),
    _mixed(9, prediction=-0.0, features={"income": None, "region": None}),
    _mixed(10, features={"income": 3, "region": "", "vip": None}, tags={}),
    _mixed(12, prediction_id="order:12.a_b-C", tags={"région (€)": "a\nb <i>"}),
    _mixed(13, features={"income": 2**63 - 1, "region": "eu"}, prediction=-(2**63)),
    _mixed(14, timestamp="2026-11-27T12:05:00Z"),  # NOW + the clock skew tolerance
    _mixed(15, timestamp="1970-01-01T00:00:00Z"),
    {k: v for k, v in _mixed(11).items() if k != "prediction_id"},
    {
        "model_id": "wide",
        "model_version": "1",
        "timestamp": 1_790_000_000.5,
        "features": {f"f{i}": i / 7 for i in range(20)},
        "prediction": 0.5,
        "score": 0.5,
    },
]


def test_a_valid_batch_takes_the_quick_pass_with_the_events_of_the_full_one(
    catalog: ModelCatalog,
) -> None:
    quick = valid_events(VALID, catalog, NOW)
    assert quick is not None
    problems, full = _full_path(VALID, catalog)
    assert problems == 0
    _assert_same(quick, full, VALID)


@pytest.mark.parametrize(
    "item",
    [
        _mixed(0, model_version="2"),  # not registered
        _mixed(0, features={"income": "12", "region": "eu"}),
        _mixed(0, features={"income": 1, "region": "eu", "colour": "red"}),
        _mixed(0, features={"region": "eu"}),
        _mixed(0, features={"income": True, "region": "eu"}),
        _mixed(0, extra=1),
        _mixed(0, prediction_id=""),
        _mixed(0, prediction_id="x" * 201),
        _mixed(0, prediction=None),
        _mixed(0, score="0.5"),  # pydantic would read it: the full path does
        _mixed(0, score=True),
        _mixed(0, sample_rate=0),
        _mixed(0, sample_rate=1.5),
        _mixed(0, tags=None),
        _mixed(0, tags={"a": 1}),
        _mixed(0, timestamp=True),
        _mixed(0, timestamp="yesterday"),
        _mixed(0, timestamp=[1]),
        _mixed(0, prediction_id=".."),
        _mixed(0, prediction_id="a\nb"),
        _mixed(0, prediction_id="x" * 129),
        _mixed(0, features={"income": 2**63, "region": "eu"}),  # read as a double
        _mixed(0, prediction=2**64 - 1),
        _mixed(0, score=float("nan")),
        _mixed(0, score=float("inf")),
        _mixed(0, tags={"": "x"}),
        _mixed(0, tags={"a\r\nb": "x"}),
        _mixed(0, tags={"a": "x" * 1025}),
        _mixed(0, tags={"a": "\x00"}),
        _mixed(0, timestamp="0001-01-01T00:00:00+14:00"),
        _mixed(0, timestamp="2100-01-01T00:00:00Z"),
        _mixed(0, timestamp="2026-11-27T12:05:00.000001Z"),  # beyond the clock skew tolerance
        _mixed(0, timestamp=-1),
        [1, 2],
        "event",
    ],
)
def test_anything_else_takes_the_full_path(item: Any, catalog: ModelCatalog) -> None:
    assert valid_events([*VALID, item], catalog, NOW) is None


def _value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            1,
            -7,
            2**53,
            2**53 + 1,
            2**63 - 1,
            0.0,
            -0.0,
            0.5,
            1.5,
            1e300,
            "",
            "0.5",
            "eu",
            "2026-11-27T12:00:00Z",
            "x" * 201,
            # hostile shapes: ids, names, long integers and times each path must refuse alike
            "x" * 129,
            "..",
            "a\r\nb",
            "a\x00b",
            "<b>x</b>",
            "order:1.a_b-C",
            2**63,
            2**64 - 1,
            -(2**63),
            "0001-01-01T00:00:00+14:00",
            "1969-12-31T23:59:59Z",
            "2099-12-31T23:59:59",
            "2026-11-27T12:04:59Z",
            "2026-11-27T12:05:01Z",
            1_790_000_000_000_000_000,
            {"": "x"},
            {"a\nb": "x"},
            {"a": "x" * 1025},
            [],
            {},
            {"a": "b"},
            {"a": 1},
        ]
    )


def _mutated(rng: random.Random, i: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_mixed(i),
        "timestamp": rng.choice([None, 1_790_000_000 + i / 1000, "2026-11-27T12:00:00Z"]),
        "score": rng.random(),
        "tags": {"variant": "a"},
    }
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(4)
        if action == 0:
            item[rng.choice(list(item))] = _value(rng)
        elif action == 1:
            item.pop(rng.choice(list(item)))
        elif action == 2 and isinstance(item.get("features"), dict):
            features = dict(item["features"])
            features[rng.choice(["income", "region", "vip", "other"])] = _value(rng)
            item["features"] = features
        elif isinstance(item.get("features"), dict):
            features = dict(item["features"])
            features.pop(rng.choice(["income", "region", "vip"]), None)
            item["features"] = features
    return item


def test_random_items_pass_quickly_only_when_the_full_path_agrees(
    catalog: ModelCatalog,
) -> None:
    rng = random.Random(7)
    quick_ones = 0
    for i in range(4000):
        item = _mutated(rng, i)
        quick = valid_events([item], catalog, NOW)
        problems, full = _full_path([item], catalog)
        if quick is not None:
            quick_ones += 1
            assert problems == 0, item
            _assert_same(quick, full, [item])
    assert quick_ones > 200  # the test does exercise the quick pass
