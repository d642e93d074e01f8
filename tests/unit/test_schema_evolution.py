"""A record written by a newer producer (its schema has a new field with a default) is read by
today's code once that writer schema is registered, and refused with the reason before."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import httpx
import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

import vigil.wire.avro as avro
from tests.samples import PREDICTION, REPORT
from vigil.adapters.schema_registry import SchemaRegistryClient
from vigil.adapters.schema_topic import SchemaTopicFollower
from vigil.wire.avro import AvroSchema, avro_schema, register_writer_schema
from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import PredictionEvent, Record


@pytest.fixture(autouse=True)
def _no_registered_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no schema registered by other processes, and leaves none."""
    monkeypatch.setattr(avro, "_registered", {})


def newer_schema(record_name: str) -> Any:
    """Today's schema of ``record_name`` plus a field a newer producer added (with a default)."""
    schema = copy.deepcopy(avro_schema(record_name).parsed)
    for internal in ("__fastavro_parsed", "__named_schemas"):
        schema.pop(internal)
    schema["fields"].append({"name": "experiment_arm", "type": "string", "default": "control"})
    return parse_schema(schema)


def as_written(schema: Any) -> AvroSchema:
    """A newer producer's writer schema, as ``vigil.wire.avro`` describes this tree's."""
    canonical = to_parsing_canonical_form(schema)
    return AvroSchema(
        schema["name"], schema, canonical, bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    )


def registered(schema: Any) -> str:
    """What the newer producer registers on ``vigil.schemas.v1``: its writer schema's JSON."""
    return as_written(schema).json


def fingerprint_of(schema: Any) -> bytes:
    return as_written(schema).fingerprint


def written_with(schema: Any, record: Record) -> bytes:
    """``record`` as a newer producer writes it: single-object encoding with its own schema."""
    body = io.BytesIO()
    schemaless_writer(body, schema, {**record.model_dump(), "experiment_arm": "b"})
    return b"\xc3\x01" + fingerprint_of(schema) + body.getvalue()


@pytest.mark.parametrize("record", [PREDICTION, REPORT], ids=["PredictionEvent", "WindowReport"])
def test_a_newer_producers_record_is_read_once_its_schema_is_registered(record: Record) -> None:
    name = type(record).__name__
    codec = Codec(type(record))
    message = written_with(newer_schema(name), record)
    with pytest.raises(DecodeError, match=r"unknown writer schema fingerprint .* nor registered"):
        codec.decode(message)
    register_writer_schema(registered(newer_schema(name)))
    assert codec.decode(message) == record


def test_a_registered_schema_of_another_record_is_refused_by_name() -> None:
    message = written_with(newer_schema("WindowReport"), REPORT)
    register_writer_schema(registered(newer_schema("WindowReport")))
    with pytest.raises(DecodeError, match=r"is vigil\.WindowReport, not vigil\.PredictionEvent"):
        Codec(PredictionEvent).decode(message)


def test_the_batch_decoder_reads_newer_predictions_through_the_codec() -> None:
    newer = written_with(newer_schema("PredictionEvent"), PREDICTION)
    current = Codec(PredictionEvent).encode(PREDICTION)
    before = decode_predictions([current, newer])
    assert [i for i, _ in before.failures] == [1]
    register_writer_schema(registered(newer_schema("PredictionEvent")))
    after = decode_predictions([current, newer])
    assert not after.failures
    assert sorted(int(r) for b in after.batches for r in b.rows) == [0, 1]


async def test_the_follower_registers_what_it_reads_and_counts_what_it_cannot_trust() -> None:
    follower = SchemaTopicFollower("127.0.0.1:1")  # never started: no I/O
    schema = newer_schema("WindowReport")
    follower._apply(b"not json", b"{")
    follower._apply(b"0000000000000000", registered(schema).encode())
    assert follower.ignored == {"invalid_schema": 1, "key_mismatch": 1}
    assert avro.registered_writer_schema(fingerprint_of(schema)) is not None


class _FakeRegistryHttp:
    """Stands in for ``httpx.get``: refuses connections until ``up``; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.up = False

    def __call__(self, url: str, timeout: float) -> httpx.Response:
        self.calls += 1
        request = httpx.Request("GET", url)
        if not self.up:
            raise httpx.ConnectError("registry down", request=request)
        schema = json.dumps(avro_schema("PredictionEvent").parsed)
        return httpx.Response(200, json={"schema": schema}, request=request)


def test_a_down_registry_costs_one_call_per_schema_id_per_30_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    http = _FakeRegistryHttp()
    monkeypatch.setattr(httpx, "get", http)
    now = [0.0]
    registry = SchemaRegistryClient("http://registry.test", clock=lambda: now[0])
    for _ in range(100):
        with pytest.raises(LookupError, match="registry down"):
            registry.schema(7)
    assert http.calls == 1
    http.up, now[0] = True, 29.0
    with pytest.raises(LookupError, match="not retried for 30 s"):
        registry.schema(7)
    now[0] = 30.5
    assert registry.schema(7)["name"] == "vigil.PredictionEvent"
    assert registry.schema(7)["name"] == "vigil.PredictionEvent"
    assert http.calls == 2
