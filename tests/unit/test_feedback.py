"""Feedback logic without I/O: the quick pass over valid batches accepts only what FeedbackIn
accepts, with the same feedback down to the Avro bytes; which labels a model takes."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from feedback.handlers import Feedback, parsed_items, quick_items, read_items
from feedback.labels import ModelLabels, check_models
from tests.samples import MODEL
from vigil.adapters.catalog import ModelCatalog
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureProfile, FeedbackEvent, ModelVersion, ReferenceProfile

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CODEC = Codec(FeedbackEvent)


def _full_path(items: list[Any]) -> tuple[list[Feedback | None], int]:
    """What FeedbackIn makes of each item, read back from its JSON (as a body would be)."""
    parsed, errors = parsed_items([orjson.loads(orjson.dumps(item)) for item in items], NOW)
    return parsed, len(errors)


def _typed(items: list[Feedback | None]) -> list[Any]:
    """The items with the type of every value, so that 1, 1.0 and True differ."""
    return [item and {k: (type(v), v, getattr(v, "tzinfo", None)) for k, v in item.items()}
            for item in items]  # fmt: skip


def _encoded(feedback: Feedback) -> bytes:
    return CODEC.encode_dict({**feedback, "feedback_id": "f", "timestamp": NOW})


VALID = [
    {"prediction_id": "p-0", "actual": True},
    {"prediction_id": "p-1", "actual": 0, "flag": "incorrect", "model_id": "m"},
    {"prediction_id": "p-2", "actual": "approve", "source": "ground_truth", "feedback_id": "f:2"},
    {"prediction_id": "p-3", "flag": "ok", "comment": "a\nb <i>", "reviewer": "Ana (€)"},
    {"prediction_id": "p-4", "actual": -0.0, "timestamp": 1_790_000_000.123456},
    {"prediction_id": "p-5", "actual": 2**63 - 1, "timestamp": "2026-11-27T12:00:00.5+05:30"},
    {"prediction_id": "p-6", "actual": 1.5, "timestamp": "2026-11-27T12:00:00"},  # naive: UTC
    {"prediction_id": "p-7", "actual": "", "timestamp": "2026-11-27T12:05:00Z", "source": "system"},
    {"prediction_id": "p-8", "actual": None, "flag": "harmful", "comment": None, "model_id": None},
]


def test_a_valid_batch_takes_the_quick_pass_with_the_feedback_of_the_full_one() -> None:
    quick, errors = read_items(VALID, NOW)
    full, problems = _full_path(VALID)
    assert (errors, problems) == ([], 0)
    assert _typed(quick) == _typed(full)
    assert [_encoded(q) for q in quick if q] == [_encoded(f) for f in full if f]


@pytest.mark.parametrize(
    "item",
    [
        {"prediction_id": "p"},  # neither actual nor flag
        {"prediction_id": "p", "actual": None, "flag": None},
        {"prediction_id": "p", "actual": 2**63},  # read as a double
        {"prediction_id": "p", "actual": [1]},
        {"prediction_id": "p", "flag": "bogus"},
        {"prediction_id": "p", "flag": ["ok"]},
        {"prediction_id": "p", "actual": 1, "source": "oracle"},
        {"prediction_id": "p", "actual": 1, "source": None},
        {"prediction_id": "..", "actual": 1},
        {"prediction_id": 12, "actual": 1},
        {"actual": 1},
        {"prediction_id": "p", "actual": 1, "feedback_id": "a/b"},
        {"prediction_id": "p", "actual": 1, "comment": "c" * 10_001},
        {"prediction_id": "p", "actual": 1, "comment": "a\x00b"},
        {"prediction_id": "p", "actual": 1, "reviewer": "a\r\nb"},
        {"prediction_id": "p", "actual": 1, "reviewer": ""},
        {"prediction_id": "p", "actual": 1, "timestamp": True},
        {"prediction_id": "p", "actual": 1, "timestamp": "2026-11-27T12:05:00.000001Z"},
        {"prediction_id": "p", "actual": 1, "timestamp": "2100-01-01T00:00:00Z"},
        {"prediction_id": "p", "actual": 1, "evil": 1},
        [1, 2],
    ],
)
def test_anything_else_takes_the_full_path(item: Any) -> None:
    assert quick_items([*VALID, item], NOW) is None
    parsed, errors = read_items([*VALID, item], NOW)
    full, problems = _full_path([*VALID, item])
    assert (_typed(parsed), len(errors)) == (_typed(full), problems)
    assert {e.index for e in errors} <= {len(VALID)}


def _value(rng: random.Random) -> Any:
    return rng.choice(
        [None, True, False, 0, 1, 2**63, -(2**63), 0.5, -0.0, "", "ok", "harmful", "sme",
         "ground_truth", "x" * 129, "..", "a\r\nb", "a\x00b", "order:1.a_b-C", "1790000000",
         "2026-11-27T12:04:59Z", "2026-11-27T12:05:01Z", "1969-12-31T23:59:59Z", [], {}, 1e300]
    )  # fmt: skip


def test_random_items_pass_quickly_only_when_the_full_path_agrees() -> None:
    rng = random.Random(5)
    fields = ["feedback_id", "prediction_id", "model_id", "actual", "flag", "comment",
              "reviewer", "source", "timestamp", "other"]  # fmt: skip
    quick_ones = 0
    for i in range(4000):
        item: dict[str, Any] = {"prediction_id": f"p-{i}", "actual": rng.choice([True, 1, "a"])}
        for _ in range(rng.randint(1, 3)):
            item[rng.choice(fields)] = _value(rng)
        if rng.random() < 0.3:
            item.pop(rng.choice(list(item)))
        quick, errors = read_items([item], NOW)
        full, problems = _full_path([item])
        assert _typed(quick) == _typed(full), item
        assert bool(errors) == bool(problems), item
        quick_ones += not errors
    assert quick_ones > 400  # the test does exercise the quick pass


def _binary(
    positive: str | None, predicted: list[str] | None = None, status: str = "champion"
) -> ModelVersion:
    prediction = None
    if predicted is not None:
        prediction = FeatureProfile(
            name="prediction", type="categorical", count=10, missing=0, all_categories=predicted
        )
    reference = ReferenceProfile(
        source="uploaded", row_count=10, created_at=NOW, features=[], prediction=prediction
    )
    return MODEL.model_copy(
        update={"positive_label": positive, "reference": reference, "status": status}
    )


@pytest.mark.parametrize(
    ("version", "accepted", "refused"),
    [
        (_binary(None), [True, "FALSE", 1, 0.0, "0"], ["yes", 2, 0.5]),
        (_binary("True"), [True, "false"], ["no"]),
        (_binary("fraud", ["fraud", "legit"]), ["fraud", "legit"], ["Fraud", True, "other"]),
        # No negative known (no reference of its predictions, or only the positive in it): any
        # class label is taken rather than refuse every negative.
        (_binary("fraud"), ["fraud", "legit", 3, False], [0.5]),
        (_binary("fraud", ["fraud"]), ["legit"], [0.5]),
    ],
)
def test_a_binary_model_takes_its_positive_label_or_its_negative(
    version: ModelVersion, accepted: list[Any], refused: list[Any]
) -> None:
    labels = ModelLabels.of("credit-risk", [version])
    assert [a for a in accepted if labels.problem(a, 0) is not None] == []
    assert [r for r in refused if labels.problem(r, 0) is None] == []


def test_a_model_with_versions_of_several_tasks_takes_what_any_live_one_takes() -> None:
    catalog = ModelCatalog()
    catalog.apply(_binary(None).model_copy(update={"version": "1"}))
    catalog.apply(_binary(None).model_copy(update={"version": "2", "task": "regression"}))
    catalog.apply(_binary("fraud", ["fraud", "ok"], "retired").model_copy(update={"version": "3"}))
    items: list[Feedback | None] = [
        {"model_id": "credit-risk", "actual": actual} for actual in [True, 2.5, "fraud", "0"]
    ]
    (error,) = check_models([None, *items], catalog)
    assert (error.index, error.field) == (3, "actual")
    assert error.expected == (
        "true or 1 (the positive class) or false or 0 (the negative) or a number (the model is a"
        " regression model), for model 'credit-risk'"
    )
