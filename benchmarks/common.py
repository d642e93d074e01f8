"""Shared pieces of the benchmarks: the machine line, a registered 20-feature model, events."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vigil.adapters.bus import new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.drift.reference import build_reference
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, ModelVersion, RiskAssessment, utcnow
from vigil.wire.topics import MODELS

FEATURES = [f"f{i}" for i in range(20)]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"


async def register_model(
    settings: VigilSettings,
    features: list[FeatureSpec] | None = None,
    reference: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Publish a model version straight to the models topic: 20 numeric features unless
    ``features`` says otherwise, with a reference profile of ``reference`` rows if given."""
    model_id = f"bench-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    spec = features or [FeatureSpec(name=f, type="numeric") for f in FEATURES]
    version = ModelVersion(
        model_id=model_id,
        version="1",
        task="binary",
        features=spec,
        reference=build_reference(spec, reference, "uploaded", now) if reference else None,
        owner="bench",
        risk=RiskAssessment(probability=1, impact=1, severity="low"),
        created_at=now,
        updated_at=now,
    )
    producer = new_producer(settings.kafka_bootstrap, "bench")
    await producer.start()
    try:
        await publish(producer, MODELS, Codec(ModelVersion), [version], lambda v: v.key)
    finally:
        await producer.stop()
    return model_id


def events(model_id: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(FEATURES))).round(4).tolist()
    run = uuid.uuid4().hex[:8]
    return [
        {
            "prediction_id": f"{run}-{i}",
            "model_id": model_id,
            "model_version": "1",
            "timestamp": 1_790_000_000 + i / 1000,
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": i % 2 == 0,
            "score": 0.5,
        }
        for i, row in enumerate(values)
    ]
