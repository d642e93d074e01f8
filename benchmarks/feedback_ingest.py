"""HTTP feedback ingest: labels/s and request latency for 1,000-label JSON batches.

What a ground-truth pipeline sends: each label with its own feedback_id (so that a resend is
stored once), its prediction_id and model_id, and a true outcome for the registered binary
model. Starts its own feedback service processes (``python -m feedback``, API key checked and
each request audited) on free ports against the running Kafka and Redis, one per round.
Target: >= 20,000 labels/s on the 2-core development machine.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from typing import Any

import numpy as np
from tests.access import api_key, publish_keys, revoked

from benchmarks.common import machine, register_model
from benchmarks.ingest import BATCH, BATCHES, CONCURRENCY, ROUNDS, timed_round
from vigil.adapters.settings import VigilSettings


def labels(model_id: str, n: int) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    return [
        {
            "feedback_id": f"{run}-f{i}",
            "prediction_id": f"{run}-{i}",
            "model_id": model_id,
            "actual": i % 3 == 0,
            "source": "ground_truth",
        }
        for i in range(n)
    ]


def _round(model_id: str, key: str) -> tuple[float, list[float]]:
    """One server, one warm-up, one timed run: labels/s and request latencies."""
    os.environ["VIGIL_FEEDBACK_REDIS_PREFIX"] = f"bench:{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "feedback"]
    items = labels(model_id, (BATCHES + 5) * BATCH)
    return timed_round(command, "VIGIL_FEEDBACK_PORT", "/v1/feedback", items, key)


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(register_model(settings))
    key, record = api_key(f"bench-{model_id}", ["producer"], [model_id])
    asyncio.run(publish_keys(settings.kafka_bootstrap, record))
    rates: list[float] = []
    latencies: list[float] = []
    for _ in range(ROUNDS):
        rate, times = _round(model_id, key)
        rates.append(rate)
        latencies += times
    asyncio.run(publish_keys(settings.kafka_bootstrap, revoked(record)))
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(
        f"HTTP feedback ingest ({machine()}): {BATCHES} batches x {BATCH} labels with their own"
        f" feedback_ids, {CONCURRENCY} concurrent clients, median of {ROUNDS} rounds"
    )
    print(f"  {float(np.median(rates)):,.0f} labels/s with API keys and audit   (target >= 20,000)")
    print(f"  rounds: {', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"  request latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")


if __name__ == "__main__":
    main()
