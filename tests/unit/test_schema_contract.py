"""Every wire record: its pydantic mirror matches its .avsc, and it round-trips Avro and JSON."""

from __future__ import annotations

import io
import json
import types
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import BaseModel, create_model

from tests.samples import ALERT, PERFORMANCE, PREDICTION, SILENCE, TRAFFIC
from tests.samples import SAMPLES as TOPIC_SAMPLES
from vigil.wire import codec as codec_module
from vigil.wire.alert_events import Silence
from vigil.wire.avro import AvroSchema, avro_schema, known_writer_schemas
from vigil.wire.codec import Codec
from vigil.wire.drift_state import (
    DriftColumn,
    DriftEventColumns,
    DriftOpenWindow,
    DriftPartial,
    DriftPartialWindow,
    DriftState,
    WindowProfileState,
)
from vigil.wire.flag_reports import FlaggedItem, FlagReport
from vigil.wire.performance import BusinessValue, PerformanceReport, PerformanceState
from vigil.wire.records import (
    Alert,
    AlertRule,
    ModelVersion,
    PredictionEvent,
    Record,
    TrafficReport,
)
from vigil.wire.topics import CATALOGUE

# Records stored inside other records or state stores rather than on a topic of their own.
EMBEDDED: dict[type[Record], Record] = {
    Alert: ALERT,  # inside the AlertEvents of vigil.alerts.v1
    Silence: SILENCE,
    AlertRule: AlertRule(
        name="income-missing",
        signal="missing_rate",
        condition="change_above",
        threshold=0.5,
        for_windows=3,
        baseline_windows=20,
        severity="high",
        features=["income"],
        enabled=False,
    ),
    WindowProfileState: WindowProfileState(
        format=1,
        fingerprint=1923842197,
        reference_version=3,
        event_count=2,
        ints_size=2,
        floats_size=1,
        extremes_size=0,
        compression="none",
        ints=(2).to_bytes(8, "little") + (1).to_bytes(8, "little"),
        floats=bytes(8),  # 0.0; ASCII bytes, so that the JSON round trip holds too
        mins=b"",
        maxs=b"",
    ),
    BusinessValue: BusinessValue(  # to go inside ModelVersion
        currency="USD",
        true_positive=10.0,
        false_positive=-2.5,
        false_negative=-40.0,
        matrix={"cat": {"cat": 1.0, "dog": -0.5}},
        cost_per_unit_error=0.1,
    ),
    PerformanceState: PerformanceState(  # a performance window in a state store
        format=1,
        task="multiclass",
        labels=["cat", "dog"],
        compression="none",
        ints_size=1,
        floats_size=0,
        ints=(3).to_bytes(8, "little"),
        floats=b"",
    ),
}
# The drift detector's internal topics (``drift_topics``) and the columns they carry. Bytes are
# ASCII, so that the JSON round trip holds too.
_COLUMN = DriftColumn(kinds=b"\x03\x00", numbers=bytes(16), codes=bytes(8), vocab=[])
_EVENTS = DriftEventColumns(
    timestamps=bytes(16), features={"income": _COLUMN}, prediction=_COLUMN, score=bytes(16)
)
DRIFT: dict[type[Record], Record] = {
    DriftEventColumns: _EVENTS,
    DriftPartial: DriftPartial(
        model_id="credit-risk",
        model_version="1.0.0",
        reference_version=2,
        marks={"0": 1_777_636_800_000_000, "5": 1_777_636_801_000_000},
        partitions=6,
        windows=[
            DriftPartialWindow(start=60, events=2, first=61, last=62, profile=b"profile bytes")
        ],
        baseline=_EVENTS,
        dead_lettered=4,
    ),
    DriftState: DriftState(
        model_id="credit-risk",
        model_version="1.0.0",
        reference_version=1,
        windows=[
            DriftOpenWindow(
                key=60, first=61, last=62, events=3, late=1, stale=0, profile=b"profile"
            )
        ],
        marks={"1": 62},
        closed_until=60,
        partitions=6,
        sequence=4,
        baseline=[_EVENTS],
        sequential={"income": [0.5, 2.0, 0.9, 1.1]},
        built_reference=TOPIC_SAMPLES[ModelVersion].reference,  # type: ignore[attr-defined]
    ),
}
# Records on a topic whose catalogue entry names another: the drift detector's heartbeats and
# the performance reports share vigil.metrics.v1 with its window reports.
SHARED: dict[type[Record], Record] = {
    TrafficReport: TRAFFIC.model_copy(update={"dead_lettered": 20}),
    PerformanceReport: PERFORMANCE,
    FlagReport: FlagReport(
        report_id=FlagReport.id_of("credit-risk", "1.0.0", 1_777_636_800_000_000),
        model_id="credit-risk",
        model_version="1.0.0",
        window_start=TRAFFIC.window_start,
        window_end=TRAFFIC.window_end,
        event_count=3,
        judged_items=2,
        counts={"harmful": 1, "ok": 2},
        harmful=[FlaggedItem(prediction_id="p-1", reviewer="ana", comment="unsafe")],
        created_at=TRAFFIC.created_at,
    ),
}
RECORDS = [
    *(t.record for t in CATALOGUE if t.record is not None),
    *EMBEDDED,
    *SHARED,
    *DRIFT,
]
SAMPLES = {**TOPIC_SAMPLES, **EMBEDDED, **SHARED, **DRIFT}


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
    simple = {
        str: "string",
        int: "long",
        float: "double",
        bool: "boolean",
        bytes: "bytes",
        datetime: "timestamp",
    }
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


@pytest.mark.parametrize(
    "record", ["Alert", "DriftPartial", "ModelVersion", "TrafficReport", "WindowReport"]
)
def test_records_written_with_a_previous_schema_still_decode(record: str) -> None:
    """Topics keep what older releases wrote (the compacted models topic forever; partials
    and reports in flight during an upgrade)."""
    model = next(r for r in RECORDS if r.__name__ == record)
    current = avro_schema(record)
    previous = [s for s in known_writer_schemas(record).values() if s is not current]
    assert previous
    for old in previous:
        out = io.BytesIO()
        out.write(b"\xc3\x01" + old.fingerprint)
        schemaless_writer(out, old.parsed, SAMPLES[model].model_dump())
        decoded = Codec(model).decode(out.getvalue())
        fresh = set(model.model_fields) - {f["name"] for f in old.parsed["fields"]}
        assert fresh or old.canonical != current.canonical  # the schema did change (or nested)
        assert decoded.model_dump(exclude=fresh) == SAMPLES[model].model_dump(exclude=fresh)


@pytest.mark.parametrize("record", list(DRIFT), ids=lambda r: r.__name__)
def test_a_drift_record_written_before_a_field_was_added_still_decodes(
    record: type[Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compacted state topic keeps what older releases wrote: once a field is added (with
    a default, and the old schema kept in schemas/history), their records still decode."""
    old = avro_schema(record.__name__)
    written = Codec(record).encode(SAMPLES[record])
    newer = json.loads(old.canonical)
    newer["fields"].append({"name": "added_later", "type": ["null", "string"], "default": None})
    canonical = to_parsing_canonical_form(newer)
    new = AvroSchema(
        old.name,
        parse_schema(newer),
        canonical,
        bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )
    monkeypatch.setattr(codec_module, "avro_schema", lambda name: new)
    monkeypatch.setattr(
        codec_module,
        "known_writer_schemas",
        lambda name: {new.fingerprint: new, old.fingerprint: old},
    )
    mirror = create_model(  # type: ignore[call-overload]
        record.__name__, __base__=record, added_later=(str | None, None)
    )
    decoded = Codec(mirror).decode(written)
    assert decoded.added_later is None
    assert decoded.model_dump(exclude={"added_later"}) == SAMPLES[record].model_dump()
