"""The archive's files: Parquet inference tables partitioned by model, version and date.

A chunk is a run of consecutive offsets of one Kafka partition. Its rows are written as one
file per (model_id, model_version, date), each named ``part-<partition>-<first>-<last>``
after the chunk's offsets, so writing the same chunk again replaces the same files. Before the
files, a manifest records the chunk's bounds: after a crash the consumer re-reads from its last
commit and cuts the chunk at the same offset, rewriting identical files.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from vigil.wire.records import PredictionEvent

SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("model_id", pa.string()),
        ("model_version", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("features", pa.string()),
        ("prediction", pa.string()),
        ("score", pa.float64()),
        ("tags", pa.string()),
        ("sample_rate", pa.float64()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)


@dataclass(frozen=True)
class Row:
    event: PredictionEvent
    partition: int
    offset: int


def _table(rows: Sequence[Row]) -> pa.Table:
    columns: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        e = row.event
        columns["prediction_id"].append(e.prediction_id)
        columns["model_id"].append(e.model_id)
        columns["model_version"].append(e.model_version)
        columns["timestamp"].append(e.timestamp)
        columns["features"].append(orjson.dumps(e.features).decode())
        columns["prediction"].append(orjson.dumps(e.prediction).decode())
        columns["score"].append(e.score)
        columns["tags"].append(orjson.dumps(e.tags).decode())
        columns["sample_rate"].append(e.sample_rate)
        columns["kafka_partition"].append(row.partition)
        columns["kafka_offset"].append(row.offset)
    return pa.table({name: columns[name] for name in SCHEMA.names}, schema=SCHEMA)


class ArchiveFiles:
    """Writes chunks under a local directory or fsspec URL."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = url_to_fs(url)
        self.local = isinstance(self.fs, LocalFileSystem)
        self.fs.makedirs(self.root, exist_ok=True)

    def _manifest(self, topic: str, partition: int) -> str:
        return f"{self.root}/_manifests/{topic}-{partition}.json"

    def pending_chunk_end(self, topic: str, partition: int, committed: int) -> int | None:
        """Last offset of a chunk that was being written at or after ``committed``, if any."""
        path = self._manifest(topic, partition)
        if not self.fs.exists(path):
            return None
        manifest = json.loads(self.fs.cat_file(path))
        last: int = manifest["last"]
        return last if manifest["first"] >= committed else None

    def write_chunk(self, topic: str, partition: int, rows: Sequence[Row]) -> list[str]:
        """Durably write one chunk (rows of one partition, in offset order); returns the paths."""
        first, last = rows[0].offset, rows[-1].offset
        self._put(
            self._manifest(topic, partition), json.dumps({"first": first, "last": last}).encode()
        )
        groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
        for row in rows:
            day = row.event.timestamp.astimezone(UTC).date().isoformat()
            groups[(row.event.model_id, row.event.model_version, day)].append(row)
        paths = []
        for (model_id, version, day), group in sorted(groups.items()):
            directory = f"{self.root}/model_id={model_id}/model_version={version}/date={day}"
            path = f"{directory}/part-{partition:03d}-{first:020d}-{last:020d}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(_table(group), sink, compression="zstd")
            self._put(path, sink.getvalue().to_pybytes())
            paths.append(path)
        return paths

    def _put(self, path: str, data: bytes) -> None:
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if not self.local:  # object stores replace a whole object atomically
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        directory = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
