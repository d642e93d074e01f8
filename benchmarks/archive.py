"""Archive throughput: events/s from a Kafka topic into Parquet files."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid

from aiokafka import AIOKafkaConsumer

from benchmarks.common import events, machine
from prediction_logger.archive import Archiver
from prediction_logger.archive_files import ArchiveFiles
from prediction_logger.config import ArchiveSettings
from vigil.adapters.bus import ensure_topics
from vigil.sdk.transport import KafkaTransport
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import Topic

N = 100_000


async def _bench(directory: str) -> float:
    settings = ArchiveSettings(archive_url=directory, archive_max_rows=25_000)
    topic = Topic(f"bench-archive-{uuid.uuid4().hex[:8]}", 3, "prediction_id", PredictionEvent)
    await ensure_topics(settings.kafka_bootstrap, [topic])
    transport = KafkaTransport(settings.kafka_bootstrap, topic.name)
    await transport.start()
    rows = events("bench-archive", N)
    for i in range(0, N, 5000):
        await transport.send(rows[i : i + 5000])
    await transport.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-{topic.name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    archiver = Archiver(consumer, ArchiveFiles(directory), settings)
    consumer.subscribe([topic.name], listener=archiver)
    await consumer.start()
    archived = 0
    original = archiver.flush

    async def counting_flush(tp: object) -> None:
        nonlocal archived
        archived += len(archiver.rows.get(tp, []))  # type: ignore[call-overload]
        await original(tp)  # type: ignore[arg-type]

    archiver.flush = counting_flush  # type: ignore[method-assign]
    start = time.perf_counter()
    task = asyncio.create_task(archiver.run())
    while archived < N:
        await asyncio.sleep(0.05)
        for tp in list(archiver.rows):  # flush the tail without waiting for its age
            if archived + sum(len(r) for r in archiver.rows.values()) >= N:
                await archiver.flush(tp)
    elapsed = time.perf_counter() - start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await consumer.stop()
    return N / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        rate = asyncio.run(_bench(directory))
    print(f"Archive ({machine()}): {N:,} events of 20 features from Kafka to Parquet")
    print(f"  {rate:,.0f} events/s written (decode, Parquet zstd, fsync, commit)")


if __name__ == "__main__":
    main()
