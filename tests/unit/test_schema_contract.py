"""Every wire record: its pydantic mirror matches its .avsc, and it round-trips Avro and JSON."""

from __future__ import annotations

import io
import types
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from fastavro import schemaless_writer
from pydantic import BaseModel

from tests.samples import PREDICTION, SAMPLES
from vigil.wire.avro import avro_schema, known_writer_schemas
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, Record
from vigil.wire.topics import CATALOGUE

RECORDS = [t.record for t in CATALOGUE if t.record is not None]


def _avro_shape(schema: Any, named: dict[str, Any]) -> frozenset[Any]:
    """A comparable shape of an Avro type: the set of its alternatives."""
    if isinstance(schema, list):
        return frozenset().union(*(_avro_shape(s, named) for s in schema))
    if isinstance(schema, str):
        if schema in named:
            return _avro_shape(named[schema], named)
        return frozenset({"long" if schema == "int" else schema})
    if schema.get("logicalType") == "timestamp-micros":
        return frozenset({"timestamp"})
    kind = schema["type"]
    if kind in ("record", "enum"):
        named[schema["name"]] = schema
        named[schema["name"].split(".")[-1]] = schema
    if kind == "record":
        fields = tuple(
            (f["name"], _avro_shape(f["type"], named), "default" in f) for f in schema["fields"]
        )
        return frozenset({("record", schema["name"].split(".")[-1], fields)})
    if kind == "enum":
        return frozenset({("enum", tuple(schema["symbols"]))})
    if kind == "array":
        return frozenset({("array", _avro_shape(schema["items"], named))})
    if kind == "map":
        return frozenset({("map", _avro_shape(schema["values"], named))})
    return _avro_shape(kind, named)


def _python_shape(annotation: Any) -> frozenset[Any]:
    """The same shape for a pydantic field annotation."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return frozenset().union(*(_python_shape(a) for a in get_args(annotation)))
    if origin is Literal:
        return frozenset({("enum", get_args(annotation))})
    if origin is list:
        return frozenset({("array", _python_shape(get_args(annotation)[0]))})
    if origin is dict:
        return frozenset({("map", _python_shape(get_args(annotation)[1]))})
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = tuple(
            (name, _python_shape(f.annotation), not f.is_required())
            for name, f in annotation.model_fields.items()
        )
        return frozenset({("record", annotation.__name__, fields)})
    simple = {str: "string", int: "long", float: "double", bool: "boolean", datetime: "timestamp"}
    return frozenset({"null" if annotation is type(None) else simple[annotation]})


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_pydantic_mirror_matches_avsc(record: type[Record]) -> None:
    assert _python_shape(record) == _avro_shape(avro_schema(record.__name__).parsed, {})


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_round_trips_through_avro_single_object_encoding(record: type[Record]) -> None:
    codec = Codec(record)
    data = codec.encode(SAMPLES[record])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.schema.fingerprint
    assert codec.decode(data) == SAMPLES[record]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_round_trips_through_json(record: type[Record]) -> None:
    codec = Codec(record)
    assert codec.decode(SAMPLES[record].model_dump_json().encode()) == SAMPLES[record]


def test_feature_values_keep_their_types_through_avro() -> None:
    decoded = Codec(PredictionEvent).decode(Codec(PredictionEvent).encode(PREDICTION))
    assert [type(v) for v in decoded.features.values()] == [float, int, str, bool, type(None)]


@pytest.mark.parametrize("record", ["ModelVersion", "WindowReport"])
def test_records_written_with_a_previous_schema_still_decode(record: str) -> None:
    """Topics keep what older releases wrote (the compacted models topic forever)."""
    model = next(r for r in RECORDS if r.__name__ == record)
    current = avro_schema(record)
    (old,) = [s for s in known_writer_schemas(record).values() if s is not current]
    out = io.BytesIO()
    out.write(b"\xc3\x01" + old.fingerprint)
    schemaless_writer(out, old.parsed, SAMPLES[model].model_dump())
    decoded = Codec(model).decode(out.getvalue())
    fresh = set(model.model_fields) - {f["name"] for f in old.parsed["fields"]}
    assert fresh  # the schema did change
    assert decoded.model_dump(exclude=fresh) == SAMPLES[model].model_dump(exclude=fresh)
