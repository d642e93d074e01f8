"""One drift worker process: events/s with Avro decoding, and resident memory as events pile up.

A model with 20 numeric and 5 categorical features and an uploaded reference; the events are
written to ``vigil.predictions.v1`` first, then one worker (a fresh group that starts exactly
at them) reads them all. Target: >= 100,000 events/s. Memory is read after 1M events and after
``BENCH_DRIFT_RSS_EVENTS`` (default 10M) events, which keep arriving meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from tests.drift_workers import DriftWorkers

from benchmarks.common import machine, register_model
from vigil.adapters.bus import new_producer, send_keyed
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, PredictionEvent
from vigil.wire.topics import PREDICTIONS

NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
CATEGORIES = np.array([f"cat{i}" for i in range(12)])
N = int(os.environ.get("BENCH_DRIFT_EVENTS", 1_000_000))
RSS_EVENTS = int(os.environ.get("BENCH_DRIFT_RSS_EVENTS", 10_000_000))
CHUNK = 100_000
BASE = time.time() - 3600  # event time of the first event


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, len(NUMERIC))).round(5), rng.choice(
        CATEGORIES, (n, len(CATEGORICAL))
    )


async def _register(settings: VigilSettings) -> str:
    spec = [FeatureSpec(name=f, type="numeric") for f in NUMERIC] + [
        FeatureSpec(name=f, type="categorical") for f in CATEGORICAL
    ]
    numbers, cats = _rows(np.random.default_rng(0), 5000)
    rows = [
        dict(zip(NUMERIC, n, strict=True)) | dict(zip(CATEGORICAL, c, strict=True))
        for n, c in zip(numbers.tolist(), cats.tolist(), strict=True)
    ]
    return await register_model(settings, spec, rows)


async def _start_group_at_end(settings: VigilSettings, group: str) -> None:
    """Commit the group's offsets at the topic's current end: the worker reads what follows."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(PREDICTIONS.name, p) for p in range(PREDICTIONS.partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


async def _produce(
    settings: VigilSettings, model_id: str, n: int, seed: int, first: int = 0
) -> None:
    """Write events ``first`` .. ``first + n - 1``: 2,000 per second of event time from BASE."""
    codec = Codec(PredictionEvent)
    rng = np.random.default_rng(seed)
    producer = new_producer(settings.kafka_bootstrap, "bench-drift", linger_ms=20)
    await producer.start()
    try:
        for offset in range(0, n, CHUNK):
            size = min(CHUNK, n - offset)
            numbers, cats = _rows(rng, size)
            messages = []
            for i, (nums, cs) in enumerate(zip(numbers.tolist(), cats.tolist(), strict=True)):
                event = {
                    "prediction_id": f"{seed}-{first + offset + i}",
                    "model_id": model_id,
                    "model_version": "1",
                    "timestamp": int((BASE + (first + offset + i) / 2000) * 1_000_000),  # µs
                    "features": dict(zip(NUMERIC, nums, strict=True))
                    | dict(zip(CATEGORICAL, cs, strict=True)),
                    "prediction": (offset + i) % 2 == 0,
                    "score": 0.5,
                    "tags": {},
                    "sample_rate": None,
                }
                messages.append((event["prediction_id"].encode(), codec.encode_dict(event)))
            await send_keyed(producer, PREDICTIONS.name, messages)
    finally:
        await producer.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_profiled(workers: DriftWorkers, count: int) -> float:
    """Wait until the worker committed ``count`` events; returns its seconds of profiling."""
    while True:
        status = workers.status("w")
        if int(status["events_profiled"]) >= count:  # type: ignore[call-overload]
            return float(status["profiling_seconds"])  # type: ignore[arg-type]
        time.sleep(0.2)


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(_register(settings))
    with tempfile.TemporaryDirectory() as logs:
        workers = DriftWorkers(
            Path(logs),
            {"VIGIL_DRIFT_AUTO_OFFSET_RESET": "earliest", "VIGIL_LOG_LEVEL": "WARNING"},
            predictions=PREDICTIONS.name,  # the events below go to the real topic
        )
        asyncio.run(_start_group_at_end(settings, workers.app_id))
        print(f"drift worker ({machine()}): 20 numeric + 5 categorical features, Avro")
        asyncio.run(_produce(settings, model_id, N, 1))
        try:
            workers.start("w")
            workers.wait_ready("w")
            seconds = _wait_profiled(workers, N)
            pid = workers.processes["w"].pid
            print(
                f"  throughput, one worker: {N:,} events in {seconds:.1f} s = {N / seconds:,.0f} "
                "events/s (target >= 100,000)"
            )
            print(f"  resident memory after {N:,} events: {_rss_mb(pid):,.0f} MiB")
            done = N
            for checkpoint in sorted({RSS_EVENTS // 2, RSS_EVENTS}):
                if checkpoint <= done:
                    continue
                asyncio.run(_produce(settings, model_id, checkpoint - done, 2, first=done))
                _wait_profiled(workers, checkpoint)
                done = checkpoint
                print(f"  resident memory after {checkpoint:,} events: {_rss_mb(pid):,.0f} MiB")
        finally:
            workers.stop()


if __name__ == "__main__":
    main()
