"""Reference samples as uploaded: JSON rows, CSV or Parquet, into typed rows.

Every format gives rows of feature values keyed by feature name. Three more columns are taken
when the spec has no feature of that name: ``prediction`` (the model's output on the row) and
``score`` (its probability or confidence), so that prediction drift has a reference too, and
``actual`` (the row's true outcome), so that performance has one. A JSON row may also be shaped
like a logged prediction: ``{"features": {...}, "prediction": ..., "actual": ...}``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from registry.handlers import reference_from_rows
from vigil.adapters.http import InputRejected
from vigil.wire.records import FeatureSpec, ModelVersion, ReferenceProfile, utcnow
from vigil.wire.validation import FieldError, describe

__all__ = ["ReferenceSample", "TooManyRows", "parse_reference", "profile_sample"]

PARQUET_MAGIC = b"PAR1"
NON_FINITE = "a finite number, or null for a missing value"
OUTPUTS = ("prediction", "score", "actual")


# What pyarrow and the csv module raise on a body they cannot read (ArrowInvalid is a
# ValueError, but ArrowNotImplementedError and ArrowTypeError are not).
_UNREADABLE = (ValueError, OSError, TypeError, NotImplementedError, pa.ArrowException, csv.Error)


class TooManyRows(Exception):
    """A sample with more rows than the registry takes."""

    def __init__(self, limit: int, received: str) -> None:
        super().__init__(f"more than {limit} rows")
        self.limit = limit
        self.received = received


@dataclass
class ReferenceSample:
    rows: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[Any] | None = None
    scores: list[float | None] | None = None
    actuals: list[Any] | None = None


def _format(content_type: str, body: bytes) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if body[:4] == PARQUET_MAGIC or kind in (
        "application/vnd.apache.parquet",
        "application/x-parquet",
    ):
        return "parquet"
    if kind in ("text/csv", "application/csv"):
        return "csv"
    return "json"


def _records(fmt: str, body: bytes, max_rows: int) -> tuple[list[Any], list[FieldError]]:
    """The uploaded rows as Python objects, or why the body cannot be read."""
    try:
        if fmt == "parquet":
            rows, non_finite = _parquet_rows(body, max_rows)
            return ([], non_finite) if non_finite else (rows, [])
        if fmt == "csv":
            return _csv_rows(body, max_rows), []
        data = orjson.loads(body)
    except _UNREADABLE as exc:
        expected = {"parquet": "a Parquet file", "csv": "UTF-8 CSV with a header row"}
        if isinstance(exc, csv.Error) and "field limit" in str(exc):
            expected["csv"] = f"CSV fields of at most {csv.field_size_limit()} characters"
        return [], [FieldError("<body>", expected.get(fmt, "a JSON array of rows"), str(exc)[:200])]
    if not isinstance(data, list):
        return [], [FieldError("<body>", "a JSON array of rows", describe(data))]
    if len(data) > max_rows:
        raise TooManyRows(max_rows, f"{len(data)} rows")
    return data, []


def _parquet_rows(body: bytes, max_rows: int) -> tuple[list[Any], list[FieldError]]:
    """The rows of a Parquet file, its row count checked (from the footer) before reading, and
    its NaN or infinite numbers (numbers are finite; a missing value is null)."""
    file = pq.ParquetFile(pa.BufferReader(body))
    if file.metadata.num_rows > max_rows:
        raise TooManyRows(max_rows, f"{file.metadata.num_rows} rows")
    table = file.read()
    errors = [
        error
        for name, kind in zip(table.column_names, table.schema.types, strict=True)
        if pa.types.is_floating(kind) and (error := _non_finite(name, table.column(name)))
    ]
    rows: list[Any] = [] if errors else table.to_pylist()
    return rows, errors


def _non_finite(name: str, column: pa.ChunkedArray) -> FieldError | None:
    """The first NaN or infinite value of a float column, as an error; None if it has none."""
    bad = pc.invert(pc.fill_null(pc.is_finite(column), True))
    if not pc.any(bad).as_py():
        return None
    index = pc.index(bad, True).as_py()
    field = name if name in OUTPUTS else f"features.{name}"
    return FieldError(field, NON_FINITE, describe(column[index].as_py()), index)


def _csv_rows(body: bytes, max_rows: int) -> list[Any]:
    """The rows of a CSV body; cells beyond the header's columns go under the key ``None``."""
    rows: list[Any] = []
    for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
        if len(rows) == max_rows:
            raise TooManyRows(max_rows, f"more than {max_rows} rows")
        rows.append(dict(row))
    return rows


_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


def _from_text(value: str, kind: str) -> Any:
    """A CSV cell as the feature type wants it; the text itself when it does not parse."""
    text = value.strip()
    if text == "":
        return None
    if kind == "numeric":
        try:
            number = float(text)
        except ValueError:
            return value
        if not math.isfinite(number):  # "nan", "inf": refused as text (a missing value is empty)
            return value
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if kind == "boolean":
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else value
    return value


def _output(text: str) -> Any:
    """A CSV prediction, score or actual: true/false, a number, else the label as written."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return _from_text(text, "numeric")


def parse_reference(
    spec: Sequence[FeatureSpec], content_type: str, body: bytes, max_rows: int = 1_000_000
) -> tuple[ReferenceSample, list[FieldError]]:
    """The rows (feature name -> value), predictions, scores and actuals of an uploaded sample.

    Raises TooManyRows past ``max_rows``.
    """
    fmt = _format(content_type, body)
    records, errors = _records(fmt, body, max_rows)
    if errors:
        return ReferenceSample(), errors
    names = {f.name for f in spec}
    kinds = {f.name: f.type for f in spec}
    sample = ReferenceSample()
    predictions: list[Any] = []
    scores: list[Any] = []
    actuals: list[Any] = []
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            errors.append(FieldError("<row>", "an object of feature values", describe(record), i))
            continue
        row = dict(record)
        if None in row:  # a CSV row with more cells than the header has columns
            cells = len(row) - 1 + len(row.pop(None))
            errors.append(FieldError("<row>", f"{len(row)} cells, as in the header", str(cells), i))
            continue
        if "features" not in names and isinstance(row.get("features"), Mapping):
            outputs = {k: row[k] for k in OUTPUTS if k in row}
            row = dict(row["features"])
        else:
            outputs = {k: row.pop(k) for k in OUTPUTS if k not in names and k in row}
        if fmt == "csv":
            row = {
                k: _from_text(v, kinds[k]) if k in kinds and isinstance(v, str) else v
                for k, v in row.items()
            }
            outputs = {k: _output(v) if isinstance(v, str) else v for k, v in outputs.items()}
        sample.rows.append(row)
        predictions.append(outputs.get("prediction"))
        scores.append(outputs.get("score"))
        actuals.append(outputs.get("actual"))
    for i, score in enumerate(scores):
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            errors.append(FieldError("score", "a number or null", describe(score), i))
    if any(p is not None for p in predictions):
        sample.predictions = predictions
    if any(s is not None for s in scores):
        sample.scores = scores
    if any(a is not None for a in actuals):
        sample.actuals = actuals
    return sample, errors


def profile_sample(
    current: ModelVersion, content_type: str, body: bytes, max_rows: int
) -> ReferenceProfile:
    """The reference profile of an uploaded sample; 422 if it is invalid (on a worker thread:
    parsing and profiling a large sample take seconds)."""
    sample, errors = parse_reference(current.features, content_type, body, max_rows)
    if not errors and not sample.rows:
        raise InputRejected(
            "the reference sample has no rows",
            [FieldError("<body>", "at least one row", "no rows")],
        )
    reference = None
    if not errors:
        reference, errors = reference_from_rows(
            current, sample.rows, utcnow(), sample.predictions, sample.scores, sample.actuals
        )
    if errors or reference is None:
        raise InputRejected(f"{len(errors)} invalid value(s) in the reference rows", errors)
    return reference
