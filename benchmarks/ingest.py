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

import httpx
import numpy as np
import orjson
from tests.access import api_key, publish_keys, revoked
from tests.drift_workers import free_port

from benchmarks.common import events, machine, register_model
from vigil.adapters.settings import VigilSettings

BATCHES, BATCH, CONCURRENCY, ROUNDS = 60, 1000, 4, 3


async def _run(url: str, bodies: list[bytes], key: str) -> list[float]:
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


def _serve(extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "VIGIL_PREDICTION_LOGGER_PORT": str(port),
        "VIGIL_PREDICTION_LOGGER_REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
        "VIGIL_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.ingest_server", *extra], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return server, url


def _round(model_id: str, key: str, extra: list[str], seed: int) -> tuple[float, list[float]]:
    """One server, one warm-up, one timed run: events/s and request latencies."""
    all_events = events(model_id, (BATCHES + 5) * BATCH, seed=seed)
    bodies = [orjson.dumps(all_events[i : i + BATCH]) for i in range(0, len(all_events), BATCH)]
    server, url = _serve(extra)
    try:
        asyncio.run(_run(url + "/v1/predictions", bodies[:5], key))  # warm-up
        start = time.perf_counter()
        latencies = asyncio.run(_run(url + "/v1/predictions", bodies[5:], key))
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(10)
    return BATCHES * BATCH / elapsed, latencies


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
