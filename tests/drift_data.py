"""Seeded, vectorised event batches for the drift analytics tests (no Python object per event)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from vigil.wire.columns import BOOLEAN, DOUBLE, LONG, MISSING, STRING, Batch, Column
from vigil.wire.records import DriftConfig, FeatureSpec, ModelVersion, RiskAssessment, Severity

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CARDINALITIES = [2, 5, 8, 12, 20]
NUMERIC = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(len(CARDINALITIES))]
SPEC = [FeatureSpec(name=n, type="numeric") for n in NUMERIC] + [
    FeatureSpec(name=n, type="categorical") for n in CATEGORICAL
]

Floats = npt.NDArray[np.float64]


def numeric_column(values: npt.ArrayLike, kind: int = DOUBLE) -> Column:
    x = np.ascontiguousarray(values, dtype=np.float64)
    n = x.size
    return Column(np.full(n, kind, dtype=np.int8), x, np.full(n, -1, dtype=np.int32), [])


def string_column(codes: npt.ArrayLike, vocab: list[str]) -> Column:
    c = np.asarray(codes, dtype=np.int32)
    n = c.size
    return Column(np.full(n, STRING, dtype=np.int8), np.full(n, np.nan), c, vocab)


def missing_column(n: int) -> Column:
    return Column(
        np.full(n, MISSING, dtype=np.int8), np.full(n, np.nan), np.full(n, -1, dtype=np.int32), []
    )


def make_batch(
    features: dict[str, Column],
    prediction: Column | None = None,
    score: Floats | None = None,
) -> Batch:
    n = len(next(iter(features.values())))
    return Batch(
        "m",
        "1",
        np.arange(n, dtype=np.intp),
        np.zeros(n, dtype=np.int64),
        features,
        prediction if prediction is not None else missing_column(n),
        score if score is not None else np.full(n, np.nan),
    )


def zipf(cardinality: int) -> Floats:
    p = 1.0 / np.arange(1, cardinality + 1)
    return p / p.sum()


def events(rng: np.random.Generator, n: int, shift: float = 0.0) -> Batch:
    """A model's events: 20 numeric features of many shapes, 5 categorical, label and score.

    Numeric: 5 normal sharing a latent factor (correlated), 3 lognormal, 3 Student-t with 2
    degrees of freedom (no variance), 3 Poisson counts (longs, many ties), 2 uniform, 2
    exponential, 2 zero-inflated normal. Categorical: Zipf over 2, 5, 8, 12 and 20 values.
    ``shift`` moves every numeric feature by that many of its (rough) standard deviations.
    """
    z = rng.normal(size=n)
    columns: dict[str, Column] = {}
    values: list[tuple[Floats, int]] = []
    values += [(0.6 * z + 0.8 * rng.normal(size=n) + shift, DOUBLE) for _ in range(5)]
    values += [(rng.lognormal(shift, 1.0, n), DOUBLE) for _ in range(3)]
    values += [(rng.standard_t(2, n) + shift, DOUBLE) for _ in range(3)]
    values += [(rng.poisson(4 + 2 * shift, n).astype(np.float64), LONG) for _ in range(3)]
    values += [(rng.random(n) + 0.3 * shift, DOUBLE) for _ in range(2)]
    values += [(rng.exponential(2.0, n) + 2 * shift, DOUBLE) for _ in range(2)]
    values += [
        (np.where(rng.random(n) < 0.3, 0.0, rng.normal(5.0 + shift, 1.0, n)), DOUBLE)
        for _ in range(2)
    ]
    for name, (x, kind) in zip(NUMERIC, values, strict=True):
        columns[name] = numeric_column(x, kind)
    for name, cardinality in zip(CATEGORICAL, CARDINALITIES, strict=True):
        codes = rng.choice(cardinality, n, p=zipf(cardinality))
        columns[name] = string_column(codes, [f"v{i}" for i in range(cardinality)])
    score = 1.0 / (1.0 + np.exp(-z))
    label = numeric_column((rng.random(n) < score).astype(np.float64), BOOLEAN)
    return make_batch(columns, label, score)


def model_version(
    severity: Severity = "medium",
    features: list[FeatureSpec] | None = None,
    drift: DriftConfig | None = None,
    task: Literal["binary", "multiclass", "regression"] = "binary",
) -> ModelVersion:
    return ModelVersion(
        model_id="m",
        version="1",
        task=task,
        features=features if features is not None else SPEC,
        owner="tests",
        risk=RiskAssessment(probability=3, impact=3, severity=severity),
        drift=drift if drift is not None else DriftConfig(),
        created_at=T0,
        updated_at=T0,
    )
