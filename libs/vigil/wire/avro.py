"""The Avro contract: loads ``schemas/*.avsc`` and fingerprints them for single-object encoding."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

__all__ = ["SCHEMA_DIR", "AvroSchema", "avro_schema", "known_writer_schemas"]

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


@dataclass(frozen=True)
class AvroSchema:
    """A parsed schema with its CRC-64-AVRO fingerprint (8 bytes, little-endian as on the wire)."""

    name: str
    parsed: Any
    canonical: str
    fingerprint: bytes


def _load(path: Path) -> AvroSchema:
    parsed: Any = load_schema(str(path))
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
