"""Metric labels from input stay bounded; the idempotency Redis defaults to the shared one."""

from __future__ import annotations

import doctest

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from prediction_logger import metrics
from prediction_logger.api import PredictionLog, create_app
from prediction_logger.config import Settings
from tests.access import ADMIN, fake_guard
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from tests.unit.test_prediction_logger_api import MODEL, _event
from vigil.adapters import metrics as bounded
from vigil.adapters.metrics import OTHER, BoundedLabels


def test_the_first_values_keep_their_label_and_later_ones_are_other() -> None:
    labels = BoundedLabels(2, "model_id")
    assert [labels(v) for v in ["a", "b", "a", "c", "d", "b"]] == ["a", "b", "a", OTHER, OTHER, "b"]
    assert len(labels) == 2
    with pytest.raises(ValueError, match="at least one"):
        BoundedLabels(0)


def test_the_docstring_example_runs() -> None:
    assert doctest.testmod(bounded).failed == 0


def _accepted(model_id: str) -> float:
    value = REGISTRY.get_sample_value("vigil_predictions_accepted_total", {"model_id": model_id})
    return value or 0.0


def test_the_logger_counts_models_past_the_limit_under_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "MODEL_IDS", BoundedLabels(500, "model_id"))
    models = [MODEL.model_copy(update={"model_id": f"label-{i}"}) for i in range(3)]
    log = PredictionLog(FakeBus(), FakeCatalog(models), FakeIdempotencyStore())
    before = {m: _accepted(m) for m in ["label-0", "label-1", "label-2", OTHER]}
    with TestClient(
        create_app(Settings(metrics_max_model_labels=1), log, guard=fake_guard()), headers=ADMIN
    ) as client:
        batch = [_event(f"p{i}", model_id=f"label-{i % 3}") for i in range(6)]
        assert client.post("/v1/predictions", json=batch).json()["accepted"] == 6
    after = {m: _accepted(m) - before[m] for m in before}
    assert after == {"label-0": 2, "label-1": 0, "label-2": 0, OTHER: 4}


def test_the_idempotency_redis_is_the_shared_one_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VIGIL_IDEMPOTENCY_REDIS_URL", raising=False)
    monkeypatch.setenv("VIGIL_REDIS_URL", "redis://state:6379/0")
    assert Settings().idempotency_url == "redis://state:6379/0"
    monkeypatch.setenv("VIGIL_IDEMPOTENCY_REDIS_URL", "redis://keys:6380/0")
    assert Settings().idempotency_url == "redis://keys:6380/0"
    assert Settings().redis_url == "redis://state:6379/0"
