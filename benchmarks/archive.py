"""Archive throughput: events/s from a Kafka topic into Parquet files."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid

from archive.config import Settings
from archive.worker import archive_stage
from benchmarks.common import events, machine
from vigil.adapters.bus import ensure_topics
from vigil.adapters.stage_logic import Output
from vigil.sdk.transport import KafkaTransport
from vigil.wire.records import PredictionEvent
from vigil.wire.topics import Topic

N = 100_000


async def _bench(directory: str) -> float:
    topic = Topic(f"bench-archive-{uuid.uuid4().hex[:8]}", 3, "prediction_id", PredictionEvent)
    # The tail is written once it is 0.2 s old: a small share of the run.
    settings = Settings(
        archive_url=directory,
        archive_topic=topic.name,
        archive_group_id=f"bench-{topic.name}",
        archive_max_rows=25_000,
        archive_max_seconds=0.2,
    )
    await ensure_topics(settings.kafka_bootstrap, [topic])
    transport = KafkaTransport(settings.kafka_bootstrap, topic.name)
    await transport.start()
    rows = events("bench-archive", N)
    for i in range(0, N, 5000):
        await transport.send(rows[i : i + 5000])
    await transport.stop()

    stage = archive_stage(settings)
    committed: dict[tuple[str, int], int] = {}
    original = stage.logic.committed
    done = asyncio.Event()

    def counting(output: Output) -> None:  # the topic is new: offsets count the events
        committed.update(output.commit or {})
        original(output)
        if sum(committed.values()) >= N:
            done.set()

    stage.logic.committed = counting  # type: ignore[method-assign]
    await stage.start()
    start = time.perf_counter()
    task = asyncio.create_task(stage.run())
    await done.wait()
    elapsed = time.perf_counter() - start
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await stage.stop()
    return N / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        rate = asyncio.run(_bench(directory))
    print(f"Archive ({machine()}): {N:,} events of 20 features from Kafka to Parquet")
    print(f"  {rate:,.0f} events/s written (decode, Parquet zstd, fsync, commit)")


if __name__ == "__main__":
    main()
