"""The hand-written PredictionEvent encoder writes exactly fastavro's bytes."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

from fastavro import schemaless_writer

from vigil.avro import avro_schema
from vigil.fastencode import encode_prediction_body


def _value(rng: random.Random) -> object:
    return rng.choice(
        [
            None,
            True,
            False,
            rng.randint(-(2**62), 2**62),
            rng.randint(-70, 70),
            rng.uniform(-1e9, 1e9),
            float("inf"),
            -0.0,
            "",
            "é" * rng.randint(0, 90),
        ]
    )


def test_matches_fastavro_on_random_events() -> None:
    rng = random.Random(11)
    schema = avro_schema("PredictionEvent").parsed
    for i in range(2000):
        event = {
            "prediction_id": f"p-{i}" * rng.randint(1, 40),
            "model_id": "m",
            "model_version": "1.0.0",
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC)
            + timedelta(microseconds=rng.randint(-(10**15), 10**15)),
            "features": {f"f{j}": _value(rng) for j in range(rng.randint(0, 70))},
            "prediction": rng.choice([True, False, 3, -(2**40), 0.25, "approve"]),
            "score": rng.choice([None, 0.5, 1e-300]),
            "tags": rng.choice([{}, {"variant": "champion", "région": "eu"}]),
            "sample_rate": rng.choice([None, 0.1]),
        }
        expected = io.BytesIO()
        schemaless_writer(expected, schema, event)
        assert encode_prediction_body(event) == expected.getvalue(), event
