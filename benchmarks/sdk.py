"""The SDK: cost of log() in the calling thread, and events/s delivered straight to Kafka.

Targets: median log() <= 5 us; >= 100,000 events/s delivered from one process.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time

from benchmarks.common import FEATURES, machine, register_model
from vigil.adapters.settings import VigilSettings
from vigil.sdk import PredictionLogger

N = 200_000


def main() -> None:
    settings = VigilSettings()
    model_id = asyncio.run(register_model(settings))
    features = dict.fromkeys(FEATURES, 0.5)
    with tempfile.TemporaryDirectory() as spool:
        logger = PredictionLogger(
            f"kafka://{settings.kafka_bootstrap}", spool_dir=spool, queue_size=N + 1
        )
        per_call = []
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(N // 1000):
            t0 = time.perf_counter()
            for _ in range(1000):
                logger.log(model_id, "1", features, True, score=0.7)
            per_call.append((time.perf_counter() - t0) / 1000)
        logged = time.perf_counter() - start
        assert logger.flush(within=300), logger.stats()
        delivered = time.perf_counter() - start
        # Both threads' CPU: unlike the rates, barely moved by other work on the machine.
        cpu = time.process_time() - cpu
        stats = logger.stats()
        logger.close()
    print(f"SDK ({machine()}): {N:,} events of 20 features, direct to Kafka")
    print(
        f"  log() in the calling thread: median {statistics.median(per_call) * 1e6:.1f} us "
        f"(target <= 5 us); {N / logged:,.0f} calls/s"
    )
    rate = stats.sent / delivered
    print(
        f"  delivered: {stats.sent:,} in {delivered:.1f} s = {rate:,.0f} events/s "
        f"(target >= 100,000); dropped {stats.dropped}"
    )
    print(f"  CPU of this process (logging and delivery): {cpu / N * 1e6:.1f} us per event")


if __name__ == "__main__":
    main()
