"""The hand-written encoders (PredictionEvent, FeedbackEvent, JoinEntry, Outcome) write exactly
fastavro's bytes."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastavro import schemaless_writer

from vigil.wire import fastencode
from vigil.wire.avro import avro_schema
from vigil.wire.fastencode import encode_feedback_body, encode_prediction_body
from vigil.wire.fastjoin import encode_entry_body, encode_outcome_body
from vigil.wire.joins import JoinEntry, OrphanMark
from vigil.wire.records import FeedbackEvent, Outcome, PredictionEvent


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
    _check_random_events(random.Random(11), 2000)


def test_matches_fastavro_when_its_caches_are_cleared_all_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastencode, "_CACHE_LIMIT", 2)
    _check_random_events(random.Random(13), 300)


def _check_random_events(rng: random.Random, count: int) -> None:
    schema = avro_schema("PredictionEvent").parsed
    for i in range(count):
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


def test_matches_fastavro_on_float_only_features_whatever_their_order() -> None:
    # The usual shape, encoded by one struct per key order: repeated orders, new orders,
    # numpy floats (a float subclass) and special values.
    rng = random.Random(12)
    schema = avro_schema("PredictionEvent").parsed
    names = [f"feature_{j}" * rng.randint(1, 12) for j in range(30)]
    specials = [float("inf"), float("-inf"), float("nan"), -0.0, 5e-324, 1.7976931348623157e308]
    for i in range(1500):
        keys = names[: rng.randint(1, 30)]
        if rng.random() < 0.3:
            keys = rng.sample(keys, len(keys))
        features: dict[str, object] = {
            k: rng.choice(specials) if rng.random() < 0.05 else rng.uniform(-1e6, 1e6) for k in keys
        }
        if rng.random() < 0.1:
            features[keys[0]] = np.float64(0.125)
        event = {
            "prediction_id": f"p-{i}",
            "model_id": f"m{i % 3}",
            "model_version": rng.choice(["1", "2"]),
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
            "features": features,
            "prediction": 0.5,
            "score": None,
            "tags": {},
            "sample_rate": None,
        }
        expected = io.BytesIO()
        schemaless_writer(expected, schema, event)
        assert encode_prediction_body(event) == expected.getvalue(), event


def test_feedback_matches_fastavro_on_random_events() -> None:
    rng = random.Random(14)
    schema = avro_schema("FeedbackEvent").parsed
    for i in range(2000):
        event = {
            "feedback_id": f"f-{i}" * rng.randint(1, 30),
            "prediction_id": f"p-{i}",
            "model_id": rng.choice([None, "m", "é" * 70]),
            "actual": rng.choice([None, True, False, 0, -(2**62), 2.5, np.float64(1.0), "yes"]),
            "flag": rng.choice([None, "incorrect", "unexpected", "harmful", "ok"]),
            "comment": rng.choice([None, "", "c" * rng.randint(0, 200)]),
            "reviewer": rng.choice([None, "ana"]),
            "source": rng.choice(["sme", "ground_truth", "system"]),
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC)
            + timedelta(microseconds=rng.randint(-(10**15), 10**15)),
        }
        expected = io.BytesIO()
        schemaless_writer(expected, schema, event)
        assert encode_feedback_body(event) == expected.getvalue(), event


def _feedback(rng: random.Random, i: int) -> FeedbackEvent:
    return FeedbackEvent(
        feedback_id=f"f-{i}",
        prediction_id=f"p-{i}",
        model_id=rng.choice([None, "m"]),
        actual=rng.choice([None, True, 0, 2.5, "yes"]),
        flag=rng.choice([None, "harmful"]),
        comment=rng.choice([None, "c" * rng.randint(0, 300)]),
        source=rng.choice(["sme", "ground_truth"]),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**7)),
    )


def _prediction(rng: random.Random, i: int) -> PredictionEvent:
    features = {f"x{k}": _value(rng) for k in range(rng.randint(0, 4))}
    return PredictionEvent(
        prediction_id=f"p-{i}",
        model_id="m",
        model_version="1",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**7)),
        features=features,
        prediction=rng.choice([True, 3, 0.5, "cat"]),
        score=rng.choice([None, 0.25]),
    )


def test_join_records_match_fastavro_on_random_ones() -> None:
    """JoinEntry and Outcome, written by ``vigil.wire.fastjoin``, as fastavro writes them."""
    rng = random.Random(15)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    mark = OrphanMark(model_id="m", model_version="1", window_start=when, window_end=when)
    raw = bytes(range(200))
    for i in range(500):
        entry = JoinEntry(
            prediction=rng.choice([None, _prediction(rng, i)]),
            label=rng.choice([None, _feedback(rng, i)]),
            label_joined=rng.choice([True, False]),
            seen_feedback=[f"s{k}" for k in range(rng.randint(0, 40))],
            waiting=[_feedback(rng, k) for k in range(rng.randint(0, 3))],
            first_seen=when + timedelta(microseconds=rng.randint(0, 10**15)),
            orphan=rng.choice([None, mark]),
            prediction_event=rng.choice([None, b"", raw]),
        )
        outcome = Outcome(
            prediction=_prediction(rng, i),
            feedback=_feedback(rng, i),
            joined_at=when + timedelta(microseconds=rng.randint(0, 10**15)),
            replaces=rng.choice([None, _feedback(rng, i + 1)]),
        )
        for record, encode in ((entry, encode_entry_body), (outcome, encode_outcome_body)):
            expected = io.BytesIO()
            schemaless_writer(
                expected, avro_schema(type(record).__name__).parsed, record.model_dump()
            )
            assert encode(record.__dict__) == expected.getvalue(), record
            assert encode(record.model_dump()) == expected.getvalue(), record
