"""Bytes <-> records for every Vigil topic.

Writes Avro single-object encoding (``C3 01`` + 8-byte schema fingerprint + body). Reads that,
with Avro schema resolution from any writer schema it knows (this tree's, its history's, or one
a newer producer registered: ``vigil.wire.avro.register_writer_schema``), JSON objects (so any
Kafka client can produce), and Confluent-framed Avro (``00`` + 4-byte schema id) when a
schema-registry URL is configured.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import orjson
from fastavro import schemaless_reader, schemaless_writer
from pydantic import ValidationError

from vigil.wire.avro import (
    AvroSchema,
    avro_schema,
    known_writer_schemas,
    registered_writer_schema,
)
from vigil.wire.fastencode import encode_feedback_body, encode_prediction_body
from vigil.wire.fastjoin import encode_entry_body, encode_outcome_body
from vigil.wire.joins import JoinEntry
from vigil.wire.records import FeedbackEvent, Outcome, PredictionEvent, Record

__all__ = ["Codec", "DecodeError", "WriterSchemas"]

R = TypeVar("R", bound=Record)
SINGLE_OBJECT_MARKER = b"\xc3\x01"
_FAST_BODIES: dict[type[Record], Callable[[Mapping[str, Any]], bytes]] = {
    PredictionEvent: encode_prediction_body,
    FeedbackEvent: encode_feedback_body,
    JoinEntry: encode_entry_body,
    Outcome: encode_outcome_body,
}
CONFLUENT_MAGIC = 0


class DecodeError(ValueError):
    """A message that is not a valid record; ``reason`` says why, for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WriterSchemas(Protocol):
    """Where Confluent-framed messages' writer schemas come from, by schema id (a port: the
    HTTP client lives in ``vigil.adapters.schema_registry``)."""

    def schema(self, schema_id: int) -> Any:
        """The parsed writer schema registered under ``schema_id``; LookupError if unknown."""
        ...


class Codec(Generic[R]):
    """Encodes and decodes one record type, e.g. ``Codec(PredictionEvent)``."""

    def __init__(self, model: type[R], registry: WriterSchemas | None = None) -> None:
        self.model = model
        self.schema = avro_schema(model.__name__)
        self._writers = known_writer_schemas(model.__name__)
        self._registry = registry
        self._header = SINGLE_OBJECT_MARKER + self.schema.fingerprint
        # The hottest records have hand-written encoders that write fastavro's exact bytes.
        self._fast_body = _FAST_BODIES.get(model)

    @property
    def header(self) -> bytes:
        """What every record this codec writes starts with: marker and schema fingerprint."""
        return self._header

    def encode(self, record: R) -> bytes:
        """Avro single-object encoding of ``record``."""
        if self._fast_body is not None:
            return self._header + self._fast_body(record.__dict__)
        return self.encode_dict(record.model_dump())

    def encode_dict(self, record: dict[str, Any]) -> bytes:
        """Single-object encoding of a plain dict shaped like the record."""
        if self._fast_body is not None:
            return self._header + self._fast_body(record)
        out = io.BytesIO()
        out.write(SINGLE_OBJECT_MARKER)
        out.write(self.schema.fingerprint)
        schemaless_writer(out, self.schema.parsed, record)
        return out.getvalue()

    def decode(self, data: bytes | None) -> R:
        """A validated record from any accepted wire format; raises DecodeError otherwise."""
        raw = self.decode_dict(data)
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "<record>"
            raise DecodeError(
                f"not a valid {self.model.__name__}: {field}: {first['msg']}"
                f" ({exc.error_count()} error(s))"
            ) from exc

    def decode_dict(self, data: bytes | None) -> dict[str, Any]:
        """The record as a plain dict, not yet validated against the pydantic model."""
        if not data:
            raise DecodeError("empty message")
        head = data[:2]
        if head == SINGLE_OBJECT_MARKER:
            return self._read_single_object(data)
        if data[0] == CONFLUENT_MAGIC and len(data) > 5:
            return self._read_confluent(data)
        if data.lstrip()[:1] == b"{":
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise DecodeError(f"invalid JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise DecodeError("JSON message is not an object")
            return value
        raise DecodeError(
            f"unknown encoding (first bytes {data[:4].hex()}): expected Avro single-object"
            " encoding (c301), a JSON object, or Confluent framing (00)"
        )

    def _read_single_object(self, data: bytes) -> dict[str, Any]:
        if len(data) < 10:
            raise DecodeError("truncated single-object header")
        writer = self._writers.get(data[2:10]) or self._registered_writer(data[2:10])
        return self._read_body(data[10:], writer.parsed)

    def _registered_writer(self, fingerprint: bytes) -> AvroSchema:
        """A writer schema this tree does not have (a newer producer's), if it was registered."""
        writer = registered_writer_schema(fingerprint)
        if writer is None:
            raise DecodeError(
                f"unknown writer schema fingerprint {fingerprint.hex()} for"
                f" {self.model.__name__}: neither in schemas/ nor registered on vigil.schemas.v1"
            )
        if writer.name != self.schema.name:
            raise DecodeError(
                f"writer schema {fingerprint.hex()} is {writer.name}, not {self.schema.name}"
            )
        return writer

    def _read_confluent(self, data: bytes) -> dict[str, Any]:
        schema_id = int.from_bytes(data[1:5], "big")
        if self._registry is None:
            raise DecodeError(
                f"Confluent-framed message (schema id {schema_id}) but no schema registry"
                " is configured (VIGIL_SCHEMA_REGISTRY_URL)"
            )
        try:
            writer = self._registry.schema(schema_id)
        except (LookupError, ValueError) as exc:
            raise DecodeError(f"schema id {schema_id} not available from registry: {exc}") from exc
        return self._read_body(data[5:], writer)

    def _read_body(self, body: bytes, writer: Any) -> dict[str, Any]:
        buffer = io.BytesIO(body)
        try:
            record: Any = schemaless_reader(buffer, writer, self.schema.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        if buffer.tell() != len(body):
            raise DecodeError(f"{len(body) - buffer.tell()} trailing bytes after the Avro body")
        if not isinstance(record, dict):
            raise DecodeError("Avro body is not a record")
        return record
