"""The codec reads every accepted wire format and names the reason for everything else."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import schemaless_writer

from tests.samples import PREDICTION
from vigil.adapters.schema_registry import SchemaRegistryClient
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import PredictionEvent

CODEC = Codec(PredictionEvent)


def test_reads_a_json_object_as_a_kafka_cli_would_send_it() -> None:
    message = json.dumps(
        {
            "prediction_id": "p-9",
            "model_id": "m",
            "model_version": "1",
            "timestamp": "2026-05-01T12:00:00Z",
            "features": {"x": 1.5},
            "prediction": "approve",
        }
    ).encode()
    event = CODEC.decode(message)
    assert event.prediction == "approve"
    assert event.features == {"x": 1.5}


class _Registry(SchemaRegistryClient):
    """A registry that knows one schema id, without HTTP."""

    def __init__(self) -> None:
        super().__init__("http://registry.invalid")
        self._cache[42] = CODEC.schema.parsed


def test_reads_confluent_framing_when_a_registry_is_configured() -> None:
    body = io.BytesIO()
    schemaless_writer(body, CODEC.schema.parsed, PREDICTION.model_dump())
    framed = b"\x00" + (42).to_bytes(4, "big") + body.getvalue()
    assert Codec(PredictionEvent, _Registry()).decode(framed) == PREDICTION


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (b"\x00\x00\x00\x00\x2a\x02", "no schema registry is configured"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown writer schema fingerprint"),
        (b"\xc3\x01\x2b", "truncated single-object header"),
        (b"hello", "unknown encoding"),
        (b'{"prediction_id": ', "invalid JSON"),
        (b'{"prediction_id": "p"}', "not a valid PredictionEvent: model_id"),
    ],
)
def test_rejects_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(data)
    assert reason in caught.value.reason


def test_rejects_a_corrupt_or_padded_avro_body() -> None:
    good = CODEC.encode(PREDICTION)
    with pytest.raises(DecodeError, match="corrupt Avro body"):
        CODEC.decode(good[:20])
    with pytest.raises(DecodeError, match="trailing bytes"):
        CODEC.decode(good + b"\x00")
