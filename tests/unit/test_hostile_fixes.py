"""What the hostile corpus (``tests/e2e/test_hostile.py``) found, each fixed and pinned here.

- Every process re-parsed each record of ``vigil.schemas.v1`` at start-up, and the topic holds the
  same few schemas thousands of times (every start registers them again): start-up grew by about a
  millisecond per record until the followers' 10 s catch-up timed out and services did not start.
- A body in an unknown ``Content-Encoding`` (``br``, ``x-hostile``) was read as if plain: a valid
  body was stored as if it had been decoded.
- Malformed JSON on the routes FastAPI parses answered 422 naming a "field" ``17`` (a character
  position), and bodies it could not parse (not UTF-8, nested too deeply, gzip on a route that
  does not inflate) answered 400 without saying why.
- The feedback API answered 422 for bodies that are not JSON, where the OpenAPI says 400.
- A reference sample in CSV or Parquet could hold NaN and infinities ("nan", "inf" cells, float
  columns), which the README's input table refuses (JSON cannot carry them): they were stored in
  the profile as missing values and type violations.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from fastavro.schema import parse_schema as fastavro_parse_schema
from pydantic import BaseModel

import vigil.wire.avro as avro
from feedback.api import FeedbackLog, router
from feedback.config import Settings
from registry.handlers import ModelRegistration, new_version, reference_from_rows
from registry.reference import parse_reference
from tests.unit.fakes import FakeBus, FakeCatalog, FakeIdempotencyStore
from vigil.adapters.http import BodyLimit, create_api, install_error_handlers, request_body
from vigil.wire.records import utcnow
from vigil.wire.validation import FieldError, errors_from_pydantic


def _schema(name: str) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": name,
            "namespace": "test",
            "fields": [{"name": "a", "type": "int"}],
        }
    )


def test_a_writer_schema_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[Any] = []
    real = fastavro_parse_schema

    def counting(schema: Any) -> Any:
        parsed.append(schema)
        return real(schema)

    monkeypatch.setattr(avro, "parse_schema", counting)
    monkeypatch.setattr(avro, "_parsed", {})
    text = _schema("Once")
    first = avro.register_writer_schema(text)
    again = avro.register_writer_schema(text)
    assert again is first
    assert len(parsed) == 1
    assert avro.registered_writer_schema(first.fingerprint) is first
    avro.register_writer_schema(_schema("Other"))
    assert len(parsed) == 2
    for _ in range(2):  # an invalid text is refused every time, never remembered
        with pytest.raises(ValueError, match="not a valid Avro schema"):
            avro.register_writer_schema('{"type": "nonsense"}')
    assert '{"type": "nonsense"}' not in avro._parsed


def test_the_parsed_texts_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(avro, "_parsed", {})
    monkeypatch.setattr(avro, "MAX_PARSED_TEXTS", 2)
    schemas = [avro.register_writer_schema(_schema(f"Bounded{i}")) for i in range(3)]
    assert len(avro._parsed) == 2
    assert all(avro.registered_writer_schema(s.fingerprint) is s for s in schemas)


class Body(BaseModel):
    a: int


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimit, max_bytes=1_000_000)
    install_error_handlers(app)

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request_body(request, 1_000_000))}

    @app.post("/model")
    async def model(body: Body) -> Body:
        return body

    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app())


@pytest.mark.parametrize("encoding", ["br", "x-hostile", "gzip, gzip", "compress"])
def test_a_body_in_an_unsupported_content_encoding_is_415(
    client: TestClient, encoding: str
) -> None:
    for path in ("/raw", "/model"):
        answer = client.post(path, content=b'{"a": 1}', headers={"content-encoding": encoding})
        assert answer.status_code == 415, answer.text
        (error,) = answer.json()["errors"]
        assert (error["field"], error["received"]) == ("Content-Encoding", encoding)
        assert encoding in answer.json()["detail"]


def test_identity_and_gzip_bodies_are_still_read(client: TestClient) -> None:
    plain = client.post("/raw", content=b"abc", headers={"content-encoding": "identity"})
    assert plain.json() == {"bytes": 3}
    zipped = client.post(
        "/raw", content=gzip.compress(b"abcd"), headers={"content-encoding": "GZIP"}
    )
    assert zipped.json() == {"bytes": 4}
    assert client.post("/model", json={"a": 1}).json() == {"a": 1}


def test_malformed_json_on_a_parsed_route_is_400_naming_where(client: TestClient) -> None:
    answer = client.post("/model", content=b'{"a": ', headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == "<body>"
    assert error["received"].startswith("invalid JSON (")
    assert "at character 6" in error["received"]
    assert "invalid JSON" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "headers", "says"),
    [
        (b'{"a": "\xff\xfe"}', {}, "not UTF-8"),
        (gzip.compress(b'{"a": 1}'), {"content-encoding": "gzip"}, "Content-Encoding 'gzip'"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, "nested too deeply"),
    ],
)
def test_a_json_body_fastapi_cannot_parse_is_400_saying_why(
    client: TestClient, body: bytes, headers: dict[str, str], says: str
) -> None:
    answer = client.post(
        "/model", content=body, headers={"content-type": "application/json", **headers}
    )
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == "<body>"
    assert says in error["received"]


def test_json_decode_errors_become_a_body_error() -> None:
    details = [
        {
            "type": "json_invalid",
            "loc": ("body", 17),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "Expecting value"},
        }
    ]
    assert errors_from_pydantic(details) == [
        FieldError("<body>", "a JSON document", "invalid JSON (Expecting value at character 17)")
    ]


@pytest.fixture
def feedback() -> TestClient:
    from tests.access import ADMIN, fake_guard

    settings = Settings()
    app = create_api(
        "Vigil feedback",
        "feedback",
        lambda _: FeedbackLog.open(_, settings),
        FeedbackLog(FakeBus(), FakeCatalog(), FakeIdempotencyStore()),
        [router],
        settings,
        guard=fake_guard(),
    )
    return TestClient(app, headers=ADMIN)


@pytest.mark.parametrize(
    ("body", "says"),
    [(b'{"prediction_id": ', "invalid JSON"), (b"[]", "at least one item"), (b"NaN", "JSON")],
)
def test_feedback_that_cannot_be_read_is_400(feedback: TestClient, body: bytes, says: str) -> None:
    with feedback:
        answer = feedback.post(
            "/v1/feedback", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == "<body>"
    assert says in error["expected"] + error["received"]


VERSION = new_version(
    ModelRegistration.model_validate(
        {
            "model_id": "m",
            "version": "1",
            "task": "regression",
            "features": [{"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"}],
            "risk": {"probability": 1, "impact": 1},
            "owner": "tests",
        }
    ),
    utcnow(),
)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity"])
def test_a_csv_reference_with_non_finite_numbers_is_refused(cell: str) -> None:
    body = f"x,c\n1,a\n{cell},b\n".encode()
    sample, errors = parse_reference(VERSION.features, "text/csv", body)
    assert errors == []
    reference, errors = reference_from_rows(VERSION, sample.rows, utcnow())
    assert reference is None
    assert [(e.field, e.received, e.index) for e in errors] == [("features.x", f'"{cell}"', 1)]


def test_a_parquet_reference_with_non_finite_numbers_is_refused() -> None:
    table = pa.table({"x": [1.0, None, float("inf")], "c": ["a", "b", "a"], "score": [0.1] * 3})
    sample, errors = parse_reference(VERSION.features, "", _parquet(table))
    assert sample.rows == []
    assert [(e.field, e.received, e.index) for e in errors] == [("features.x", "Infinity", 2)]
    scores = pa.table({"x": [1.0, 2.0], "c": ["a", "b"], "score": [0.5, float("nan")]})
    _, errors = parse_reference(VERSION.features, "", _parquet(scores))
    assert [(e.field, e.received, e.index) for e in errors] == [("score", "NaN", 1)]


def test_missing_values_are_still_empty_cells_and_nulls() -> None:
    csv_sample, errors = parse_reference(VERSION.features, "text/csv", b"x,c\n,a\n2,b\n")
    assert (csv_sample.rows[0]["x"], errors) == (None, [])
    table = pa.table({"x": [None, 2.0], "c": ["a", "b"]})
    parquet_sample, errors = parse_reference(VERSION.features, "", _parquet(table))
    assert (parquet_sample.rows[0]["x"], errors) == (None, [])
