"""Codec and profile throughput: the per-event costs every Vigil service pays.

Prints events/s for a PredictionEvent with 20 numeric and 5 categorical features:
Avro single-object encode, decode (to dict, and to a validated record), JSON decode, and
window-profile counting in micro-batches of 1,000.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

from vigil.drift.reference import build_reference
from vigil.drift.window import WindowProfile
from vigil.wire.codec import Codec
from vigil.wire.records import FeatureSpec, PredictionEvent, utcnow

N = 20_000


def _features(rng: np.random.Generator) -> dict[str, float | str]:
    row: dict[str, float | str] = {f"num_{i}": float(rng.normal()) for i in range(20)}
    row.update({f"cat_{i}": str(rng.choice(["a", "b", "c", "d"])) for i in range(5)})
    return row


def _rate(label: str, count: int, work: Callable[[], object]) -> None:
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    print(
        f"  {label:<44} {count / elapsed:>12,.0f} events/s  ({elapsed / count * 1e6:6.1f} µs each)"
    )


def main() -> None:
    rng = np.random.default_rng(0)
    print(
        f"Vigil codec benchmark: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, {N:,} events"
    )
    events = [
        PredictionEvent(
            prediction_id=f"p{i}",
            model_id="m",
            model_version="1",
            timestamp=utcnow(),
            features=_features(rng),
            prediction=True,
            score=0.5,
        )
        for i in range(N)
    ]
    codec = Codec(PredictionEvent)
    dicts = [e.model_dump() for e in events]
    avro = [codec.encode(e) for e in events]
    json = [e.model_dump_json().encode() for e in events]
    _rate(
        "Avro encode (dict -> single-object bytes)",
        N,
        lambda: [codec.encode_dict(d) for d in dicts],
    )
    _rate("Avro encode (record -> bytes)", N, lambda: [codec.encode(e) for e in events])
    _rate("Avro decode (bytes -> dict)", N, lambda: [codec.decode_dict(b) for b in avro])
    _rate("Avro decode (bytes -> validated record)", N, lambda: [codec.decode(b) for b in avro])
    _rate("JSON decode (bytes -> validated record)", N, lambda: [codec.decode(b) for b in json])

    spec = [FeatureSpec(name=f"num_{i}", type="numeric") for i in range(20)]
    spec += [FeatureSpec(name=f"cat_{i}", type="categorical") for i in range(5)]
    rows = [e.features for e in events]
    reference = build_reference(spec, rows[:5000], "uploaded", utcnow())

    def count() -> None:
        window = WindowProfile(reference, spec)
        for i in range(0, N, 1000):
            window.add_rows(rows[i : i + 1000])

    _rate("window profile from dicts, micro-batches of 1,000", N, count)


if __name__ == "__main__":
    main()
