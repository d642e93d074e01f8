"""The Parquet archive: a kill -9 of its process and a restart leave each event exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import duckdb

from tests.samples import PREDICTION
from vigil.adapters.bus import ensure_topics, new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import PREDICTIONS, Topic


def _count(root: Path) -> tuple[int, int]:
    """(rows, distinct prediction ids) in the archive, read the way the README shows."""
    if not list(root.rglob("*.parquet")):
        return 0, 0
    query = (
        "select count(*), count(distinct prediction_id) "
        f"from read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
    )
    ((rows, distinct),) = duckdb.execute(query).fetchall()
    return rows, distinct


async def _produce(bootstrap: str, topic: Topic, start: int, n: int) -> None:
    events = [
        PREDICTION.model_copy(
            update={
                "prediction_id": f"a-{i}",
                "model_version": f"{i % 2}",
                "timestamp": PREDICTION.timestamp + timedelta(hours=i % 48),
            }
        )
        for i in range(start, start + n)
    ]
    producer = new_producer(bootstrap, "test-archive")
    await producer.start()
    try:
        await publish(producer, topic, Codec(PredictionEvent), events, lambda e: e.prediction_id)
    finally:
        await producer.stop()


def _archive(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "archive"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait(root: Path, done: int, seconds: float = 60) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and _count(root)[0] < done:
        time.sleep(0.3)
    return _count(root)


def test_a_killed_archive_restarts_without_gaps_or_duplicates(
    infra: VigilSettings, tmp_path: Path
) -> None:
    topic = Topic(f"test-archive-{uuid.uuid4().hex[:8]}", 3, "prediction_id", PredictionEvent)
    asyncio.run(ensure_topics(infra.kafka_bootstrap, [topic]))
    root = tmp_path / "archive"
    env = {
        **os.environ,
        "VIGIL_ARCHIVE_URL": str(root),
        "VIGIL_ARCHIVE_TOPIC": topic.name,
        "VIGIL_ARCHIVE_GROUP_ID": f"test-{topic.name}",
        "VIGIL_ARCHIVE_MAX_ROWS": "150",
        "VIGIL_ARCHIVE_MAX_SECONDS": "0.5",
    }
    log = tmp_path / "archive.log"
    asyncio.run(_produce(infra.kafka_bootstrap, topic, 0, 3000))
    first = _archive(env, log)
    try:
        assert _wait(root, 1)[0] > 0, log.read_text()[-3000:]
        asyncio.run(_produce(infra.kafka_bootstrap, topic, 3000, 1000))
        first.send_signal(signal.SIGKILL)  # mid-stream, possibly mid-write
        first.wait()
        asyncio.run(_produce(infra.kafka_bootstrap, topic, 4000, 1000))
        second = _archive(env, log)
        try:
            rows, distinct = _wait(root, 5000)
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert (rows, distinct) == (5000, 5000), log.read_text()[-3000:]
    # Partitioned by model, version and date, as the README's DuckDB one-liner expects.
    dates = {p.name for p in root.glob("model_id=*/model_version=*/date=*")}
    assert dates == {"date=2026-05-01", "date=2026-05-02", "date=2026-05-03"}
    assert not list(root.rglob("*.tmp-*"))


def test_the_archive_reads_the_real_predictions_topic_by_default() -> None:
    from archive.config import Settings

    assert Settings.model_fields["archive_topic"].default == PREDICTIONS.name


def test_an_interrupted_chunk_is_cut_again_at_the_same_offset_and_replaced(tmp_path: Path) -> None:
    from archive.handlers import ArchiveFiles, Row

    files = ArchiveFiles(str(tmp_path))
    rows = [
        Row(PREDICTION.model_copy(update={"prediction_id": f"r{i}"}), 2, 100 + i) for i in range(5)
    ]
    paths = files.write_chunk("t", 2, rows)
    # Written but not committed (the process died): the chunk is cut again at offset 104.
    assert files.pending_chunk_end("t", 2, committed=100) == 104
    assert files.pending_chunk_end("t", 2, committed=105) is None  # committed: nothing pending
    assert files.write_chunk("t", 2, rows) == paths  # the same files, replaced, not added
    assert _count(tmp_path) == (5, 5)
    assert paths[0].endswith("part-002-00000000000000000100-00000000000000000104.parquet")


def test_a_restarted_archive_removes_the_temporary_files_a_killed_writer_left(
    tmp_path: Path,
) -> None:
    from archive.handlers import ArchiveFiles, Row

    files = ArchiveFiles(str(tmp_path))
    rows = [Row(PREDICTION, 1, 7)]
    (path,) = files.write_chunk("t", 1, rows)
    stale = [Path(f"{path}.tmp-99999"), tmp_path / "_manifests" / "t-1.json.tmp-99999"]
    other = Path(path.replace("part-001-", "part-002-") + ".tmp-99999")  # not this partition's
    for p in [*stale, other]:
        p.write_bytes(b"half a file")
    assert sorted(files.remove_temporary("t", 1)) == sorted(str(p) for p in stale)
    assert not any(p.exists() for p in stale)
    assert other.exists()
    assert _count(tmp_path) == (1, 1)
