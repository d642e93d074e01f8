"""Why the drift worker reads with aiokafka's getmany() and not a faust agent.

Reads the same 500,000 prediction messages (bytes only, no decoding, no profiling) two ways in
a fresh process each: a faust agent over ``stream.take_events(5000)`` and a plain
``AIOKafkaConsumer.getmany()`` loop. The worker needs >= 100,000 events/s *with* decoding and
profiling, so the bare consumer must leave most of the CPU for that work.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer

from benchmarks.common import machine
from benchmarks.drift import _produce, _register, _start_group_at_end
from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import PREDICTIONS

N = int(os.environ.get("BENCH_CONSUME_EVENTS", 500_000))


def _faust(group: str, bootstrap: str) -> None:
    import faust

    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(
        PREDICTIONS.name,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    seen = {"count": 0, "start": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> Any:
        async for events in stream.take_events(5000, within=0.5):
            if not seen["count"]:
                seen["start"] = time.perf_counter()
            seen["count"] += len(events)
            if seen["count"] >= N:
                rate = seen["count"] / (time.perf_counter() - seen["start"])
                os.write(1, f"\n{rate:.0f}\n".encode())  # faust redirects sys.stdout
                os._exit(0)
            yield None

    faust.Worker(app, loglevel="error", quiet=True).execute_from_commandline()


async def _getmany(group: str, bootstrap: str) -> None:
    consumer = AIOKafkaConsumer(
        PREDICTIONS.name,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    count, start = 0, 0.0
    while count < N:
        batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
        got = sum(len(b) for b in batches.values())
        if got and not count:
            start = time.perf_counter()
        count += got
    print(f"{count / (time.perf_counter() - start):.0f}", flush=True)
    os._exit(0)


def _run(mode: str, group: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.drift_consume", mode, group],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    numbers = re.findall(r"^(\d+)$", out.stdout, re.MULTILINE)  # faust adds terminal codes
    return float(numbers[-1])


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(_register(settings))
    groups = {mode: f"bench-consume-{mode}-{uuid.uuid4().hex[:6]}" for mode in ("faust", "getmany")}
    for group in groups.values():
        asyncio.run(_start_group_at_end(settings, group))
    asyncio.run(_produce(settings, model_id, N, 3))
    print(f"reading {N:,} prediction messages, bytes only ({machine()})")
    for mode, group in groups.items():
        print(f"  {mode:>8}: {_run(mode, group):,.0f} messages/s")


if __name__ == "__main__":
    if len(sys.argv) == 3:  # one measurement, in its own process
        mode, group = sys.argv[1:]
        bootstrap = VigilSettings().kafka_bootstrap
        if mode == "faust":
            sys.argv = [sys.argv[0], "worker"]  # faust's own command line
            _faust(group, bootstrap)
        else:
            asyncio.run(_getmany(group, bootstrap))
    else:
        main()
