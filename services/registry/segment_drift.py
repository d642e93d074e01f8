"""Drift per segment, asked for: ``GET /v1/models/{id}/versions/{v}/drift/segments``.

The drift detector judges each version's windows as a whole. Asked for one of the segments a
version declares (a category, a binned number, a tag, or the crossed pair), the registry reads
that version's predictions of the period from the archive's inference tables (the Parquet files
``python -m archive`` writes under ``VIGIL_REGISTRY_ARCHIVE_URL``, the archive's
``VIGIL_ARCHIVE_URL``) and judges each group against the version's reference
(``vigil.drift.segments``): which group drifted, on which features. At most
``VIGIL_REGISTRY_SEGMENT_DRIFT_MAX_ROWS`` rows are read (the answer says when it stopped).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from vigil.drift.segments import SegmentRows
from vigil.wire.archive_paths import partition_directory
from vigil.wire.base import as_utc
from vigil.wire.records import ModelVersion

__all__ = ["read_archive"]

_COLUMNS = ["model_id", "model_version", "timestamp", "features", "prediction", "score", "tags"]


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = as_utc(since).date(), as_utc(until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=d) for d in range((last - first).days + 1)]


def read_archive(
    url: str, version: ModelVersion, since: datetime, until: datetime, max_rows: int
) -> SegmentRows:
    """The version's rows with ``since <= timestamp < until``, from its date directories."""
    fs, root = url_to_fs(url)
    found = SegmentRows()
    for day in _days(since, until):
        directory = partition_directory(root, version.model_id, version.version, day.isoformat())
        for path in sorted(fs.glob(f"{directory}/*.parquet")):
            table = pq.read_table(path, columns=_COLUMNS, filesystem=fs)
            keep = pc.and_(
                pc.and_(
                    pc.equal(table["model_id"], version.model_id),
                    pc.equal(table["model_version"], version.version),
                ),
                pc.and_(
                    pc.greater_equal(table["timestamp"], as_utc(since)),
                    pc.less(table["timestamp"], as_utc(until)),
                ),
            )
            table = table.filter(keep)
            room = max_rows - len(found.features)
            if table.num_rows > room:
                table, found.truncated = table.slice(0, room), True
            columns = table.to_pydict()
            found.features += [orjson.loads(f) for f in columns["features"]]
            found.tags += [orjson.loads(t) or {} for t in columns["tags"]]
            found.predictions += [orjson.loads(p) for p in columns["prediction"]]
            found.scores += columns["score"]
            if found.truncated:
                return found
    return found
