"""Batch decoding throughput: Kafka message values -> columns, as the drift detector reads them.

Prints events/s for batches of 5,000 PredictionEvents with 20 numeric and 5 categorical
features: ``vigil.wire.batchdecode.decode_predictions`` against fastavro's per-message reader (and
the per-message codec with validation, which the drift detector used before). Each figure is
the best of several rounds, since other work may share the machine.

Then a hostile batch: 20,000 events whose 10 feature names each are all distinct (200,000
names). Each distinct name is a column as long as the batch, so before the cap on names it took
over 50 GB; now it prints the time and the peak memory (tracemalloc) of decoding it.
"""

from __future__ import annotations

import io
import os
import platform
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
from fastavro import schemaless_reader

from vigil.wire.batchdecode import decode_predictions
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent

BATCH = 5_000
BATCHES = 4
ROUNDS = 5


def _messages(
    codec: Codec[PredictionEvent], n: int, seed: int, shuffle: bool = False
) -> list[bytes]:
    """Encoded events; ``shuffle``: each with its features in its own order."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, 20)).tolist()
    categories = rng.choice(["a", "b", "c", "d", "unknown"], size=(n, 5)).tolist()
    out = []
    for i in range(n):
        features: dict[str, float | str] = {f"num_{j}": v for j, v in enumerate(numbers[i])}
        features.update({f"cat_{j}": v for j, v in enumerate(categories[i])})
        if shuffle:
            names = list(features)
            rng.shuffle(names)
            features = {name: features[name] for name in names}
        out.append(
            codec.encode_dict(
                {
                    "prediction_id": f"{seed:08x}-{i:010d}-bench",
                    "model_id": "credit-risk",
                    "model_version": "3",
                    "timestamp": 1_790_000_000_000_000 + i,
                    "features": features,
                    "prediction": i % 3 == 0,
                    "score": float(i % 100) / 100,
                    "tags": {"variant": "champion"},
                }
            )
        )
    return out


def _best(work: Callable[[], object]) -> float:
    """The best time of ROUNDS runs, in seconds."""
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def _report(label: str, count: int, seconds: float) -> None:
    print(
        f"  {label:<52} {count / seconds:>12,.0f} events/s  ({seconds / count * 1e6:6.2f} µs each)"
    )


def _hostile(codec: Codec[PredictionEvent], n: int) -> list[bytes]:
    """Events whose feature names are all distinct, as a misbehaving producer might send."""
    return [
        codec.encode_dict(
            {
                "prediction_id": f"hostile-{i}",
                "model_id": "spam",
                "model_version": "1",
                "timestamp": 1_790_000_000_000_000 + i,
                "features": {f"f{i}_{k}": float(k) for k in range(10)},
                "prediction": True,
                "tags": {},
            }
        )
        for i in range(n)
    ]


def _report_hostile(codec: Codec[PredictionEvent]) -> None:
    values = _hostile(codec, 20_000)
    start = time.perf_counter()
    decoded = decode_predictions(values, codec)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    decode_predictions(values, codec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kept = sum(len(b) for b in decoded.batches)
    print(
        f"  hostile batch, 20,000 events x 10 distinct names: {seconds:.2f} s, "
        f"peak {peak / 2**20:,.0f} MiB; {kept:,} decoded, {len(decoded.failures):,} failures"
    )


def main() -> None:
    codec = Codec(PredictionEvent)
    batches = [_messages(codec, BATCH, seed) for seed in range(BATCHES)]
    total = BATCH * BATCHES
    print(
        f"Vigil batch-decode benchmark: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"{BATCHES} batches of {BATCH:,} events (20 numeric + 5 categorical features), "
        f"best of {ROUNDS}"
    )
    decoded = decode_predictions(batches[0], codec)
    assert not decoded.failures and len(decoded.batches[0]) == BATCH

    def batch_decode() -> None:
        for batch in batches:
            decode_predictions(batch, codec)

    shuffled = [_messages(codec, BATCH, seed, shuffle=True) for seed in range(BATCHES)]

    def batch_decode_shuffled() -> None:
        for batch in shuffled:
            decode_predictions(batch, codec)

    schema = codec.schema.parsed

    def fastavro() -> None:
        for batch in batches:
            for message in batch:
                schemaless_reader(io.BytesIO(message[10:]), schema, schema)

    sample = batches[0][:1000]
    _report("vigil.wire.batchdecode (bytes -> columns)", total, _best(batch_decode))
    _report(
        "vigil.wire.batchdecode, feature order varying by event",
        total,
        _best(batch_decode_shuffled),
    )
    _report("fastavro schemaless_reader (bytes -> dict)", total, _best(fastavro))
    _report(
        "Codec.decode (bytes -> validated record)",
        len(sample),
        _best(lambda: [codec.decode(m) for m in sample]),
    )
    _report_hostile(codec)


if __name__ == "__main__":
    main()
