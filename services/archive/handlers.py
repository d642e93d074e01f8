"""The archive's logic: prediction records into Parquet inference tables. No Kafka here.

Files are partitioned by model, version and date (``paths``: every path is built there and
stays under the root, whatever ids producers send). A chunk is a run of consecutive offsets of
one Kafka partition. Its rows are written as one file per (model_id, model_version, date), each
named ``part-<partition>-<first>-<last>`` after the chunk's offsets, so writing the same chunk
again replaces the same files. Before the files, a manifest records the chunk's bounds: after a
crash the stage re-reads from its last commit and cuts the chunk at the same offset, rewriting
identical files. Offsets are committed only once the files holding them are durably written, so
a crash and restart leave neither gaps nor duplicate rows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from functools import cached_property
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    Incoming,
    Output,
    StageLogic,
    TopicPartitionKey,
)
from vigil.wire.archive_paths import component, inside, partition_directory
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import PredictionEvent

__all__ = ["SCHEMA", "ArchiveFiles", "Archiving", "Row"]

log = logging.getLogger(__name__)
CODEC = Codec(PredictionEvent)

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

    @cached_property
    def day(self) -> str:
        """The UTC date of the event: its partition directory."""
        return self.event.timestamp.astimezone(UTC).date().isoformat()

    @cached_property
    def json_columns(self) -> tuple[str, str, str]:
        """Features, prediction and tags as JSON."""
        e = self.event
        features, prediction, tags = (
            orjson.dumps(v).decode() for v in (e.features, e.prediction, e.tags)
        )
        return features, prediction, tags

    def check(self) -> None:
        """Raises ValueError, OverflowError or TypeError if the row cannot be written."""
        _ = self.day, self.json_columns


def _table(rows: Sequence[Row]) -> pa.Table:
    columns: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        e = row.event
        columns["prediction_id"].append(e.prediction_id)
        columns["model_id"].append(e.model_id)
        columns["model_version"].append(e.model_version)
        columns["timestamp"].append(e.timestamp)
        features, prediction, tags = row.json_columns
        columns["features"].append(features)
        columns["prediction"].append(prediction)
        columns["score"].append(e.score)
        columns["tags"].append(tags)
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
        return inside(self.root, f"{self.root}/_manifests/{component(topic)}-{partition}.json")

    def pending_chunk_end(self, topic: str, partition: int, committed: int) -> int | None:
        """Last offset of a chunk that was being written at or after ``committed``, if any."""
        path = self._manifest(topic, partition)
        if not self.fs.exists(path):
            return None
        manifest = json.loads(self.fs.cat_file(path))
        last: int = manifest["last"]
        return last if manifest["first"] >= committed else None

    def remove_temporary(self, topic: str, partition: int) -> list[str]:
        """Delete temporary files a killed writer left of ``partition``'s chunks (they are
        written again, under another name); returns their paths."""
        if not self.local:
            return []
        patterns = [
            f"{self.root}/model=*/version=*/date=*/part-{partition:03d}-*.parquet.tmp-*",
            f"{self._manifest(topic, partition)}.tmp-*",
        ]
        stale = [path for pattern in patterns for path in self.fs.glob(pattern)]
        for path in stale:
            self.fs.rm_file(path)
        return stale

    def write_chunk(self, topic: str, partition: int, rows: Sequence[Row]) -> list[str]:
        """Durably write one chunk (rows of one partition, in offset order); returns the paths."""
        first, last = rows[0].offset, rows[-1].offset
        self._put(
            self._manifest(topic, partition), json.dumps({"first": first, "last": last}).encode()
        )
        groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
        for row in rows:
            groups[(row.event.model_id, row.event.model_version, row.day)].append(row)
        paths = []
        for (model_id, version, day), group in sorted(groups.items()):
            directory = partition_directory(self.root, model_id, version, day)
            path = f"{directory}/part-{partition:03d}-{first:020d}-{last:020d}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(_table(group), sink, compression="zstd")
            self._put(path, sink.getvalue().to_pybytes())
            paths.append(path)
        return paths

    def _put(self, path: str, data: bytes) -> None:
        path = inside(self.root, path)
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


def _row(record: Incoming) -> Row | str:
    """The record as a row, or why it cannot be archived (it is dead-lettered, and counted)."""
    try:
        row = Row(CODEC.decode(record.value), record.partition, record.offset)
    except DecodeError as exc:
        return exc.reason
    except Exception as exc:  # never stop the archive for one record
        return f"undecodable: {type(exc).__name__}: {exc}"
    try:
        row.check()
    except (ValueError, OverflowError, TypeError) as exc:
        return f"not archivable: {type(exc).__name__}: {exc}"
    return row


@dataclass
class _Chunk:
    opened: float
    rows: list[Row] = field(default_factory=list)
    next_offset: int = 0  # past the last record absorbed (rows and dead letters alike)


class Archiving(StageLogic):
    """Buffers each partition's rows into chunks and writes them when due."""

    def __init__(
        self,
        files: ArchiveFiles,
        max_rows: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.clock = clock
        # Per partition, oldest first; all but the last were cut at an interrupted chunk's end.
        self.chunks: dict[TopicPartitionKey, list[_Chunk]] = {}
        self.cut_at: dict[TopicPartitionKey, int] = {}
        self.rejects: list[DeadLetter] = []

    async def absorb(self, records: Sequence[Incoming]) -> None:
        for record in records:
            tp = (record.topic, record.partition)
            chunks = self.chunks.setdefault(tp, [])
            if not chunks:
                chunks.append(_Chunk(self.clock()))
            chunk = chunks[-1]
            chunk.next_offset = record.offset + 1
            row = _row(record)
            if isinstance(row, Row):
                chunk.rows.append(row)
            else:
                self.rejects.append(DeadLetter(record, row))
            if tp in self.cut_at and record.offset >= self.cut_at[tp]:
                del self.cut_at[tp]
                chunks.append(_Chunk(self.clock()))

    def _ready(self, tp: TopicPartitionKey, now: float) -> list[_Chunk]:
        """The chunks of ``tp`` to write now, oldest first."""
        chunks = self.chunks.get(tp, [])
        ready = [c for c in chunks[:-1] if c.next_offset]
        last = chunks[-1] if chunks else None
        if (
            last is not None
            and last.next_offset
            and tp not in self.cut_at
            and (len(last.rows) >= self.max_rows or now - last.opened >= self.max_seconds)
        ):
            ready.append(last)
        return ready

    def due(self, now: float) -> bool:
        return any(self._ready(tp, now) for tp in self.chunks)

    async def flush(self) -> Output:
        """Write the due chunks durably; commit past them."""
        now = self.clock()
        commit: dict[TopicPartitionKey, int] = {}
        for tp in list(self.chunks):
            for chunk in self._ready(tp, now):
                if chunk.rows:
                    rows = chunk.rows
                    paths = await asyncio.to_thread(self.files.write_chunk, tp[0], tp[1], rows)
                    log.info(
                        "%s-%d: archived offsets %d..%d in %d file(s)",
                        *tp,
                        rows[0].offset,
                        rows[-1].offset,
                        len(paths),
                    )
                commit[tp] = chunk.next_offset
                self.chunks[tp].remove(chunk)
            if not self.chunks[tp]:
                del self.chunks[tp]
        output = Output(dead_letters=self.rejects, commit=commit)
        self.rejects = []
        return output

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        for tp in assigned.partitions:
            topic, partition = tp
            for path in await asyncio.to_thread(self.files.remove_temporary, topic, partition):
                log.info("removed %s, left by an interrupted write", path)
            committed = assigned.committed.get(tp) or 0
            end = self.files.pending_chunk_end(topic, partition, committed)
            if end is not None:
                log.info("%s-%d: rewriting the interrupted chunk ending at offset %d", *tp, end)
                self.cut_at[tp] = end
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        # Unwritten rows are read again by the partition's next owner.
        for tp in partitions:
            self.chunks.pop(tp, None)
            self.cut_at.pop(tp, None)
        self.rejects = []
