"""The Parquet archive: a kill -9 of its process and a restart leave each event exactly once;
hostile ids are archived under its root and poison records dead-lettered, and it keeps going."""

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
import orjson

from tests.kafka_tools import Message, end_offsets, read_from
from tests.samples import PREDICTION
from vigil.adapters.bus import ensure_topics, new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import DEADLETTER, PREDICTIONS, Topic

HOSTILE_IDS = [
    "x/../../tmp/escaped",
    "../../../../../../tmp/escaped",
    "/tmp/escaped",
    "nul\0byte",
    "x" * 256,
    "é" * 5_000,
    "/" * 300,
    ".",
    "..",
    "",
    "模型 🙂",
]


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


async def _produce_hostile(bootstrap: str, topic: Topic, poison: list[bytes]) -> int:
    """An event for each hostile (model_id, model_version) pair, then the ``poison`` values."""
    events = [
        PREDICTION.model_copy(
            update={"prediction_id": f"h-{i}", "model_id": m, "model_version": HOSTILE_IDS[-1 - i]}
        )
        for i, m in enumerate(HOSTILE_IDS)
    ]
    producer = new_producer(bootstrap, "test-archive-hostile")
    await producer.start()
    try:
        await publish(producer, topic, Codec(PredictionEvent), events, lambda e: e.prediction_id)
        for value in poison:
            await producer.send_and_wait(topic.name, key=b"poison", value=value, partition=0)
    finally:
        await producer.stop()
    return len(events)


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
    dates = {p.name for p in root.glob("model=*/version=*/date=*")}
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


def test_hostile_ids_stay_under_the_root_and_poison_is_dead_lettered(
    infra: VigilSettings, tmp_path: Path
) -> None:
    topic = Topic(f"test-archive-{uuid.uuid4().hex[:8]}", 2, "prediction_id", PredictionEvent)
    asyncio.run(ensure_topics(infra.kafka_bootstrap, [topic]))
    root, outside = tmp_path / "archive", tmp_path / "tmp"
    outside.mkdir()
    env = {
        **os.environ,
        "VIGIL_ARCHIVE_URL": str(root),
        "VIGIL_ARCHIVE_TOPIC": topic.name,
        "VIGIL_ARCHIVE_GROUP_ID": f"test-{topic.name}",
        "VIGIL_ARCHIVE_MAX_SECONDS": "0.3",
    }
    year_one = PREDICTION.model_dump(mode="json") | {"timestamp": "0001-01-01T00:00:00+14:00"}
    poison = [b"garbage", orjson.dumps(year_one)]
    dead_start = asyncio.run(end_offsets(infra.kafka_bootstrap, DEADLETTER.name))
    sent = asyncio.run(_produce_hostile(infra.kafka_bootstrap, topic, poison))
    log = tmp_path / "archive.log"
    archive = _archive(env, log)
    try:
        rows, distinct = _wait(root, sent)
        assert archive.poll() is None, log.read_text()[-3000:]  # still running
        # More traffic after the hostile ids is archived too.
        asyncio.run(_produce(infra.kafka_bootstrap, topic, 0, 20))
        rows, distinct = _wait(root, sent + 20)
        assert archive.poll() is None, log.read_text()[-3000:]
    finally:
        archive.terminate()
        archive.wait(10)
    # Every event is under the root (and each is in one file only): none was written elsewhere.
    assert (rows, distinct) == (sent + 20, sent + 20), log.read_text()[-3000:]
    assert not [p for p in outside.rglob("*") if p.is_file()]
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root.resolve())
    query = f"select model_id from read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
    archived = {m for (m,) in duckdb.execute(query).fetchall()}
    assert set(HOSTILE_IDS) <= archived

    def mine(messages: list[Message]) -> list[Message]:
        return [
            m for m in messages if dict(m.headers).get("vigil.source.topic") == topic.name.encode()
        ]

    letters = mine(
        asyncio.run(read_from(infra.kafka_bootstrap, dead_start, lambda ms: len(mine(ms)) >= 2, 20))
    )
    assert sorted(m.value for m in letters) == sorted(poison)
    assert all(dict(m.headers)["vigil.reason"] for m in letters)
