"""Rejected input says which field, what was expected and what came."""

from __future__ import annotations

import random

from pydantic import BaseModel

from vigil.wire.records import FeatureSpec
from vigil.wire.validation import FeatureCheck, FieldError, check_features, parse_batch

SPEC = [
    FeatureSpec(name="income", type="numeric", min=0, max=100),
    FeatureSpec(name="region", type="categorical", categories=["eu"]),
    FeatureSpec(name="vip", type="boolean", required=False),
]


def test_valid_features_and_nulls_pass() -> None:
    assert check_features(SPEC, {"income": 3, "region": "eu", "vip": None}) == []


def test_out_of_range_and_unknown_categories_are_drift_not_errors() -> None:
    assert check_features(SPEC, {"income": 1e9, "region": "mars"}) == []


def test_type_errors_missing_and_unknown_features_are_named() -> None:
    errors = check_features(SPEC, {"income": "12", "vip": 1, "colour": "red"}, index=4)
    assert errors == [
        FieldError("features.income", "a number or null", '"12"', 4),
        FieldError("features.region", "a string or null", "nothing", 4),
        FieldError("features.vip", "true, false or null", "1", 4),
        FieldError(
            "features.colour",
            "one of the registered features ['income', 'region', 'vip']",
            '"red"',
            4,
        ),
    ]


def test_a_boolean_is_not_a_number() -> None:
    assert check_features(SPEC[:1], {"income": True})[0].received == "true"


class Item(BaseModel):
    name: str
    size: int


def test_parse_batch_lists_every_bad_item_by_index() -> None:
    parsed, errors = parse_batch(b'[{"name": "a", "size": 1}, {"name": 2}, 7]', Item)
    assert parsed[0] == Item(name="a", size=1)
    assert parsed[1:] == [None, None]
    assert [e.as_dict() for e in errors] == [
        {"field": "name", "expected": "a valid string", "received": "2", "index": 1},
        {
            "field": "size",
            "expected": "a value (the field is required)",
            "received": "nothing",
            "index": 1,
        },
        {"field": "<item>", "expected": "a JSON object", "received": "7", "index": 2},
    ]


def test_parse_batch_accepts_a_single_object_and_rejects_bad_json() -> None:
    assert parse_batch(b'{"name": "a", "size": 1}', Item)[0] == [Item(name="a", size=1)]
    _, errors = parse_batch(b"{nope", Item)
    assert errors[0].field == "<body>"
    assert errors[0].expected == "a JSON object or array"


def test_a_compiled_check_passes_only_features_check_features_accepts() -> None:
    rng = random.Random(5)
    values = [None, True, False, 0, 7, -1.5, "", "eu", [], {}]
    wide = [FeatureSpec(name=f"f{i}", type="numeric") for i in range(5)]
    for spec in (SPEC, wide, SPEC[:2], []):
        check = FeatureCheck.of(spec)
        names = [f.name for f in spec] + ["colour"]
        passed = 0
        for _ in range(3000):
            features = {n: rng.choice(values) for n in names if rng.random() < 0.85}
            if check.passes(features):
                passed += 1
                assert check_features(spec, features) == [], features
        assert passed > 0
    assert FeatureCheck.of(SPEC).passes({"income": 3, "region": "eu", "vip": None})
    assert FeatureCheck.of(wide).passes({f"f{i}": 0.5 for i in range(5)})
    assert not FeatureCheck.of(wide).passes({f"f{i}": 0.5 for i in range(4)})
