"""The SDK's logic without a destination: queueing, sampling, the decorator, delivery policy."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from vigil.sdk.ids import new_id
from vigil.sdk.logger import _LoggerBase
from vigil.sdk.pipeline import Delivery, DeliveryPolicy
from vigil.sdk.transport import Rejected, transport_for

FAST = DeliveryPolicy(
    batch_size=10, linger_seconds=0, attempts=2, backoff_seconds=0, retry_interval_seconds=0
)


def _logger(**options: Any) -> _LoggerBase:
    """A logger whose delivery is never started: what it queues stays in its queue."""
    return _LoggerBase("kafka://127.0.0.1:1", spool_max_bytes=0, **options)


def test_log_queues_a_complete_event_and_returns_its_id() -> None:
    logger = _logger()
    pid = logger.log(
        "m", "1", {"x": 1.0}, True, score=0.9, tags={"variant": "shadow"}, timestamp=5.0
    )
    (event,) = logger._queue
    assert event == {
        "prediction_id": pid,
        "model_id": "m",
        "model_version": "1",
        "timestamp": 5.0,
        "features": {"x": 1.0},
        "prediction": True,
        "score": 0.9,
        "tags": {"variant": "shadow"},
        "sample_rate": None,
    }
    assert logger.stats().queued == 1


def test_generated_ids_are_unique_uuid4_hex() -> None:
    logger = _logger()
    ids = [logger.log("m", "1", {"x": 1.0}, True) for _ in range(3000)]  # several id pools
    assert len(set(ids)) == 3000
    for pid in ids:
        parsed = uuid.UUID(hex=pid)
        assert (parsed.hex, parsed.version, parsed.variant) == (pid, 4, uuid.RFC_4122)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent has a pool
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, "".join(new_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    theirs = {text[i : i + 32] for i in range(0, len(text), 32)}
    assert len(theirs) == 10
    assert theirs.isdisjoint(new_id() for _ in range(10))


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    logger = _logger(queue_size=3)
    for i in range(5):
        logger.log("m", "1", {"x": i}, 0)
    assert (len(logger._queue), logger.stats().dropped) == (3, 2)


def test_sampling_keeps_about_the_rate_and_records_it() -> None:
    logger = _logger(sample_rate=0.25)
    for i in range(8000):
        logger.log("m", "1", {"x": i}, 0)
    kept = len(logger._queue)
    assert 1800 < kept < 2200
    assert logger.stats().sampled_out == 8000 - kept
    assert {e["sample_rate"] for e in logger._queue} == {0.25}
    with pytest.raises(ValueError, match="sample_rate"):
        _logger(sample_rate=0)


def test_monitor_logs_single_and_batched_calls_and_never_changes_the_result() -> None:
    logger = _logger()

    @logger.monitor("m", "1")
    def predict_one(features: dict[str, float]) -> float:
        return features["a"] * 2

    class Model:
        @logger.monitor("m", "2", features="X", feature_names=["a", "b"])
        def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
            return X[:, 0] > threshold

    assert predict_one({"a": 2.0}) == 4.0
    assert Model().predict(np.array([[0.1, 1.0], [0.9, 2.0]])).tolist() == [False, True]
    events = list(logger._queue)
    assert [(e["model_version"], e["features"], e["prediction"]) for e in events] == [
        ("1", {"a": 2.0}, 4.0),
        ("2", {"a": 0.1, "b": 1.0}, False),
        ("2", {"a": 0.9, "b": 2.0}, True),
    ]
    assert all(type(e["prediction"]) in (bool, float) for e in events)

    @logger.monitor("m", "3")
    def broken_shape(rows: list[dict[str, float]]) -> list[int]:
        return [1]

    assert broken_shape([{"a": 1.0}, {"a": 2.0}]) == [1]  # the app still gets its answer
    assert "2 input rows but 1 predictions" in (logger.stats().last_error or "")


class FlakyTransport:
    """Fails ``failures`` sends, then records every batch; subclass of nothing but the port."""

    def __init__(self, failures: int = 0, reject: bool = False) -> None:
        self.failures = failures
        self.reject = reject
        self.batches: list[list[dict[str, Any]]] = []

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        if self.reject:
            raise Rejected("HTTP 422: bad feature")
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker down")
        self.batches.append(list(events))
        return [f"[{i}] bad" for i, e in enumerate(events) if e.get("bad")]

    async def stop(self) -> None:
        pass


def _deliver(transport: FlakyTransport, n: int) -> Delivery:
    queue: deque[dict[str, Any]] = deque({"prediction_id": str(i)} for i in range(n))
    delivery = Delivery(transport, queue, None, FAST)
    delivery.stopping = True
    asyncio.run(delivery.run())
    return delivery


def test_delivery_batches_and_retries_a_failed_send() -> None:
    transport = FlakyTransport(failures=1)
    delivery = _deliver(transport, 25)
    assert [len(b) for b in transport.batches] == [10, 10, 5]
    assert (delivery.sent, delivery.dropped, delivery.last_error) == (
        25,
        0,
        "ConnectionError: broker down",
    )


def test_events_refused_one_by_one_are_counted_and_the_rest_sent() -> None:
    queue: deque[dict[str, Any]] = deque([{"prediction_id": "1"}, {"prediction_id": "2", "bad": 1}])
    delivery = Delivery(FlakyTransport(), queue, None, FAST)
    delivery.stopping = True
    asyncio.run(delivery.run())
    assert (delivery.sent, delivery.dropped) == (1, 1)
    assert delivery.last_error == "1 refused by the destination: [1] bad"


def test_without_a_spool_an_unreachable_destination_drops_and_counts() -> None:
    delivery = _deliver(FlakyTransport(failures=100), 5)
    assert (delivery.sent, delivery.dropped) == (0, 5)


def test_a_refused_batch_is_dropped_not_retried_forever() -> None:
    delivery = _deliver(FlakyTransport(reject=True), 3)
    assert delivery.dropped == 3
    assert "rejected by the destination" in (delivery.last_error or "")


def test_destinations_are_chosen_by_url() -> None:
    assert type(transport_for("kafka://a:9092,b:9092")).__name__ == "KafkaTransport"
    assert type(transport_for("https://vigil.example/")).__name__ == "HttpTransport"
    with pytest.raises(ValueError, match="expected kafka://"):
        transport_for("redis://nope")
