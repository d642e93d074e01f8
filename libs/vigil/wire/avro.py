"""The Avro contract: loads ``schemas/*.avsc`` and fingerprints them for single-object encoding.

Besides the schemas in this tree, a process knows the writer schemas other processes registered
(a newer producer's, during a rolling upgrade): ``register_writer_schema`` adds one, an adapter
fills it from the compacted ``vigil.schemas.v1`` topic, and ``registered_writer_schema`` is
what a decoder asks when a fingerprint is not in ``known_writer_schemas``. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fastavro.schema import fingerprint, load_schema, parse_schema, to_parsing_canonical_form

__all__ = [
    "SCHEMA_DIR",
    "AvroSchema",
    "avro_schema",
    "current_schemas",
    "known_writer_schemas",
    "register_writer_schema",
    "registered_writer_schema",
]

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


@dataclass(frozen=True)
class AvroSchema:
    """A parsed schema with its CRC-64-AVRO fingerprint (8 bytes, little-endian as on the wire)."""

    name: str
    parsed: Any
    canonical: str
    fingerprint: bytes

    @property
    def json(self) -> str:
        """The full schema as JSON text, fastavro's bookkeeping left out.

        What a writer registers: the parsing canonical form (which the fingerprint is of) drops
        logical types such as ``timestamp-micros``, and a reader needs them.
        """
        return orjson.dumps(_public(self.parsed)).decode()


def _public(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def _load(path: Path) -> AvroSchema:
    return _fingerprinted(load_schema(str(path)))


def _fingerprinted(parsed: Any) -> AvroSchema:
    canonical = to_parsing_canonical_form(parsed)
    # fastavro returns the CRC-64-AVRO value as the hex of its little-endian bytes.
    return AvroSchema(
        name=parsed["name"],
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


@cache
def avro_schema(record_name: str) -> AvroSchema:
    """The current schema of a record, e.g. ``avro_schema("PredictionEvent")``."""
    return _load(SCHEMA_DIR / f"vigil.{record_name}.avsc")


@cache
def known_writer_schemas(record_name: str) -> dict[bytes, AvroSchema]:
    """Every schema a producer may have written this record with: current and past versions."""
    schemas = [avro_schema(record_name)]
    history = SCHEMA_DIR / "history"
    if history.is_dir():
        schemas += [_load(p) for p in sorted(history.glob(f"vigil.{record_name}.*.avsc"))]
    return {s.fingerprint: s for s in schemas}


def current_schemas() -> list[AvroSchema]:
    """Every schema of ``schemas/*.avsc`` as this tree writes it (what a producer registers)."""
    paths = sorted(SCHEMA_DIR.glob("vigil.*.avsc"))
    return [avro_schema(p.name[len("vigil.") : -len(".avsc")]) for p in paths]


# Writer schemas registered by other processes, by fingerprint: process-wide, filled by an
# adapter (``vigil.adapters.schema_topic``), read by every Codec on an unknown fingerprint.
_registered: dict[bytes, AvroSchema] = {}
# Schemas already parsed, by their JSON text. Every process registers its schemas when it
# starts, so the schema topic holds the same few texts thousands of times until compaction
# runs: each is parsed once (parsing takes about a millisecond, reading a record microseconds).
_parsed: dict[str, AvroSchema] = {}
MAX_PARSED_TEXTS = 10_000  # distinct texts remembered; beyond, texts are parsed every time


def register_writer_schema(text: str) -> AvroSchema:
    """Remember a writer schema (its JSON text); ValueError if it is not a valid Avro schema."""
    schema = _parsed.get(text)
    if schema is None:
        try:
            schema = _fingerprinted(parse_schema(orjson.loads(text)))
        except Exception as exc:  # orjson and fastavro raise many types on bad schemas
            raise ValueError(f"not a valid Avro schema: {type(exc).__name__}: {exc}") from exc
        if len(_parsed) < MAX_PARSED_TEXTS:
            _parsed[text] = schema
    _registered[schema.fingerprint] = schema
    return schema


def registered_writer_schema(fingerprint: bytes) -> AvroSchema | None:
    """A registered writer schema by its 8-byte fingerprint, or None."""
    return _registered.get(fingerprint)
