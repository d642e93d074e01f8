"""HTTP bulk ingest: events/s and request latency for 1,000-event JSON batches of 20 features.

Starts its own prediction logger processes on free ports against the running Kafka and Redis:
the service as it runs (API key checked, each request audited) and, as the baseline for what
keys cost, the same service with the check and the audit taken out
(``benchmarks/ingest_server.py --open``), in alternating rounds.
Targets: >= 20,000 events/s on the 2-core development machine; keys within a few percent.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import numpy as np
import orjson
from tests.access import api_key, publish_keys, revoked
from tests.drift_workers import free_port

from benchmarks.common import events, machine, register_model
from vigil.adapters.settings import VigilSettings

__all__ = ["post_batches", "timed_round"]

BATCHES, BATCH, CONCURRENCY, ROUNDS = 60, 1000, 4, 3


async def post_batches(url: str, bodies: list[bytes], key: str) -> list[float]:
    """POST each JSON body to ``url``, ``CONCURRENCY`` at a time; each request's seconds."""
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            response = await client.post(
                url,
                content=body,
                headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
            )
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return latencies


def timed_round(
    command: list[str], port_variable: str, path: str, items: list[Any], key: str
) -> tuple[float, list[float]]:
    """Start the server ``command`` on a free port (the environment variable ``port_variable``
    says which), post ``items`` to ``path`` as JSON arrays of ``BATCH``, the first 5 to warm it
    up: items/s of the others, and each request's seconds. The server is stopped after."""
    bodies = [orjson.dumps(items[i : i + BATCH]) for i in range(0, len(items), BATCH)]
    port = free_port()
    env = {**os.environ, port_variable: str(port), "VIGIL_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(post_batches(url + path, bodies[:5], key))  # warm-up
        start = time.perf_counter()
        latencies = asyncio.run(post_batches(url + path, bodies[5:], key))
        return len(items[5 * BATCH :]) / (time.perf_counter() - start), latencies
    finally:
        server.terminate()
        server.wait(10)


def _round(model_id: str, key: str, extra: list[str], seed: int) -> tuple[float, list[float]]:
    """One server, one warm-up, one timed run: events/s and request latencies."""
    os.environ["VIGIL_PREDICTION_LOGGER_REDIS_PREFIX"] = f"bench:{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "benchmarks.ingest_server", *extra]
    all_events = events(model_id, (BATCHES + 5) * BATCH, seed=seed)
    return timed_round(command, "VIGIL_PREDICTION_LOGGER_PORT", "/v1/predictions", all_events, key)


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(register_model(settings))
    key, record = api_key(f"bench-{model_id}", ["producer"], [model_id])
    asyncio.run(publish_keys(settings.kafka_bootstrap, record))
    keyed: list[float] = []
    open_: list[float] = []
    latencies: list[float] = []
    for n in range(ROUNDS):
        rate, times = _round(model_id, key, [], seed=2 * n)
        keyed.append(rate)
        latencies += times
        open_.append(_round(model_id, key, ["--open"], seed=2 * n + 1)[0])
    asyncio.run(publish_keys(settings.kafka_bootstrap, revoked(record)))
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    with_keys, without = float(np.median(keyed)), float(np.median(open_))
    print(
        f"HTTP bulk ingest ({machine()}): {BATCHES} batches x {BATCH} events, "
        f"{CONCURRENCY} concurrent clients, median of {ROUNDS} alternating rounds"
    )
    print(f"  {with_keys:,.0f} events/s with API keys and audit   (target >= 20,000)")
    print(
        f"  {without:,.0f} events/s without (baseline)   keys cost {1 - with_keys / without:+.1%}"
    )
    print(f"  rounds with keys: {', '.join(f'{r:,.0f}' for r in keyed)}")
    print(f"  rounds without:   {', '.join(f'{r:,.0f}' for r in open_)}")
    print(f"  request latency with keys p50 {p50:.0f} ms, p99 {p99:.0f} ms")


if __name__ == "__main__":
    main()
