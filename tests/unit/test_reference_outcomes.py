"""A reference sample's true outcomes (``actual``): taken from JSON rows, rows shaped like a
logged prediction, CSV and Parquet, counted into the reference's packed performance with the
version's task and positive label, and refused with a 422 naming the row and field when the
model cannot have them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as sk

from registry.api import Registry, create_app
from registry.handlers import ModelRegistration, new_version, reference_from_rows
from registry.reference import parse_reference
from tests.access import ADMIN, fake_guard
from tests.samples import MODEL
from tests.unit.fakes import FakeBus, FakeCatalog
from vigil.performance import WindowPerformance, realised_metrics
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, ModelVersion, utcnow
from vigil.wire.topics import MODELS

URL = f"/v1/models/{MODEL.model_id}/versions/{MODEL.version}/reference"


def _version(task: str, positive_label: str | None = None) -> ModelVersion:
    registration = {
        "model_id": "m",
        "version": "1",
        "task": task,
        "features": [{"name": "x", "type": "numeric"}],
        "risk": {"probability": 1, "impact": 1},
        "owner": "tests",
        "positive_label": positive_label,
    }
    return new_version(ModelRegistration.model_validate(registration), utcnow())


def _outcomes(version: ModelVersion, rows: list[dict[str, Any]]) -> WindowPerformance | None:
    sample, errors = parse_reference(version.features, "application/json", _json(rows))
    assert errors == []
    reference, errors = reference_from_rows(
        version, sample.rows, utcnow(), sample.predictions, sample.scores, sample.actuals
    )
    assert errors == [] and reference is not None
    assert [f.name for f in reference.features] == ["x"]  # actual is no feature
    if reference.performance is None:
        return None
    return WindowPerformance.from_bytes(reference.performance)


def _json(rows: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(rows)


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def client(bus: FakeBus) -> Iterator[TestClient]:
    # credit-risk: binary, positive label "default".
    app = create_app(adapters=Registry(bus, FakeCatalog([MODEL])), guard=fake_guard())
    with TestClient(app, headers=ADMIN) as client:
        yield client


def test_labelled_rows_become_the_references_outcomes(client: TestClient, bus: FakeBus) -> None:
    rows = [
        {
            "income": float(i),
            "region": "eu",
            "prediction": "default" if i % 4 else "repaid",
            "score": (i % 4) / 4 + 0.1,
            **({"actual": "default" if i % 3 else "repaid"} if i < 300 else {}),
        }
        for i in range(400)
    ]
    response = client.post(URL, json=rows)
    assert response.status_code == 200, response.text
    assert (response.json()["row_count"], response.json()["labelled"]) == (400, 300)
    (published,) = bus.records(MODELS, Codec(ModelVersion))
    assert published.reference is not None and published.reference.performance is not None
    window = WindowPerformance.from_bytes(published.reference.performance)
    assert (window.task, window.positive_label, window.labelled) == ("binary", "default", 300)
    y = [r["actual"] == "default" for r in rows[:300]]
    predicted = [r["prediction"] == "default" for r in rows[:300]]
    metrics = realised_metrics(window)
    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert metrics["recall"] == pytest.approx(sk.recall_score(y, predicted))
    assert metrics["roc_auc"] == pytest.approx(
        sk.roc_auc_score(y, [r["score"] for r in rows[:300]]), abs=0.005
    )


def test_a_sample_without_actuals_has_no_outcomes(client: TestClient) -> None:
    response = client.post(URL, json=[{"income": 1.0, "region": "eu", "prediction": "default"}])
    assert response.status_code == 200, response.text
    assert response.json()["labelled"] == 0
    assert _outcomes(_version("binary"), [{"x": 1, "actual": True}]) is None  # no prediction


def test_wrong_labels_are_422_naming_the_row_and_field(client: TestClient) -> None:
    rows = [
        {"income": 1.0, "region": "eu", "prediction": "default", "actual": "repaid"},
        {"income": 2.0, "region": "eu", "prediction": "repaid", "actual": "maybe", "score": 0.3},
        {"income": 3.0, "region": "eu", "prediction": "default", "actual": 0.5},
        {"income": 4.0, "region": "eu", "prediction": "default", "actual": True, "score": 1.5},
    ]
    response = client.post(URL, json=rows)
    assert response.status_code == 422
    expected = "'default' (the positive class) or 'repaid' (the negative)"
    assert response.json()["errors"] == [
        {"field": "actual", "expected": expected, "received": '"maybe"', "index": 1},
        {"field": "actual", "expected": expected, "received": "0.5", "index": 2},
        {"field": "actual", "expected": expected, "received": "true", "index": 3},
        {
            "field": "score",
            "expected": "a probability in [0, 1] (the model is binary)",
            "received": "1.5",
            "index": 3,
        },
    ]


@pytest.mark.parametrize(
    ("task", "prediction", "actual", "field"),
    [
        ("regression", 2.5, "high", "actual"),
        ("regression", "high", 2.5, "prediction"),
        ("regression", 2.5, True, "actual"),
        ("binary", True, "yes", "actual"),
        ("binary", True, 2, "actual"),
        ("multiclass", "cat", 0.5, "actual"),
        ("multiclass", "cat", {"label": "dog"}, "actual"),
    ],
)
def test_a_label_the_task_cannot_have_is_named(
    task: str, prediction: Any, actual: Any, field: str
) -> None:
    version = _version(task)
    rows = [{"x": 1, "prediction": prediction, "actual": actual}]
    sample, errors = parse_reference(version.features, "application/json", _json(rows))
    assert errors == []
    reference, errors = reference_from_rows(
        version, sample.rows, utcnow(), sample.predictions, sample.scores, sample.actuals
    )
    assert reference is None
    assert [(e.field, e.index) for e in errors] == [(field, 0)]


def test_labels_are_read_as_the_task_reads_them() -> None:
    binary = _outcomes(
        _version("binary"),
        [
            {"x": 1, "prediction": 1, "score": 0.9, "actual": "TRUE"},
            {"x": 2, "prediction": "false", "score": 0.2, "actual": 0},
            {"features": {"x": 3}, "prediction": True, "score": 0.7, "actual": False},
        ],
    )
    assert binary is not None and binary.binary is not None
    assert binary.binary.confusion() == (1, 1, 1, 0)
    regression = _outcomes(
        _version("regression"),
        [{"x": 1, "prediction": 10.0, "actual": 12}, {"x": 2, "prediction": 7, "actual": 10.0}],
    )
    assert regression is not None
    assert realised_metrics(regression)["mae"] == pytest.approx(2.5)
    classes = _outcomes(
        _version("multiclass"),
        [{"x": 1, "prediction": "cat", "actual": "cat"}, {"x": 1, "prediction": 2, "actual": 2.0}],
    )
    assert classes is not None and realised_metrics(classes)["accuracy"] == 1.0


def test_csv_and_parquet_take_an_actual_column_unless_it_is_a_feature() -> None:
    version = _version("binary")
    body = b"x,prediction,score,actual\n1,true,0.9,true\n2,false,0.4,true\n3,true,0.6,\n"
    sample, errors = parse_reference(version.features, "text/csv", body)
    assert errors == [] and sample.actuals == [True, True, None]
    table = pa.table(
        {"x": [1.0, 2.0], "prediction": [True, False], "score": [0.9, 0.4], "actual": [1, 0]}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    sample, errors = parse_reference(version.features, "", sink.getvalue())
    assert errors == [] and sample.actuals == [1, 0]
    reference, errors = reference_from_rows(
        version, sample.rows, utcnow(), sample.predictions, sample.scores, sample.actuals
    )
    assert reference is not None and reference.performance is not None
    assert WindowPerformance.from_bytes(reference.performance).labelled == 2
    spec = [*version.features, FeatureSpec(name="actual", type="numeric")]
    sample, _ = parse_reference(spec, "text/csv", b"x,actual,prediction\n1,5,true\n")
    assert sample.actuals is None and sample.rows == [{"x": 1, "actual": 5}]
