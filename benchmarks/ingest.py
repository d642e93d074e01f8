"""HTTP bulk ingest: events/s and request latency for 1,000-event JSON batches of 20 features.

Starts its own prediction logger process on a free port against the running Kafka and Redis.
Target: >= 20,000 events/s on the 2-core development machine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
import orjson
from tests.drift_workers import free_port

from benchmarks.common import events, machine, register_model
from vigil.adapters.settings import VigilSettings

BATCHES, BATCH, CONCURRENCY = 60, 1000, 4


async def _run(url: str, bodies: list[bytes]) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(register_model(settings))
    port = free_port()
    env = {
        **os.environ,
        "VIGIL_PREDICTION_LOGGER_PORT": str(port),
        "VIGIL_PREDICTION_LOGGER_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
        "VIGIL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", "prediction_logger"], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        all_events = events(model_id, (BATCHES + 5) * BATCH)
        bodies = [orjson.dumps(all_events[i : i + BATCH]) for i in range(0, len(all_events), BATCH)]
        asyncio.run(_run(url + "/v1/predictions", bodies[:5]))  # warm-up
        start = time.perf_counter()
        latencies = asyncio.run(_run(url + "/v1/predictions", bodies[5:]))
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(10)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(
        f"HTTP bulk ingest ({machine()}): {BATCHES} batches x {BATCH} events, "
        f"{CONCURRENCY} concurrent clients"
    )
    print(f"  {BATCHES * BATCH / elapsed:,.0f} events/s   (target >= 20,000)")
    print(f"  request latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")


if __name__ == "__main__":
    main()
