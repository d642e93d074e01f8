"""The SDK's logic without a destination: queueing, sampling, the decorator, delivery policy,
and where each kind of event goes."""

from __future__ import annotations

import asyncio
import gzip
import os
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from vigil.sdk.ids import new_id
from vigil.sdk.logger import _LoggerBase
from vigil.sdk.pipeline import Delivery, DeliveryPolicy
from vigil.sdk.transport import (
    HttpTransport,
    KafkaTransport,
    Rejected,
    by_kind,
    is_feedback,
    transport_for,
)
from vigil.wire.topics import FEEDBACK, PREDICTIONS

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


def test_feedback_queues_a_complete_event_and_returns_its_id() -> None:
    logger = _logger(sample_rate=0.01)  # feedback is never sampled
    fid = logger.feedback("p-1", np.bool_(True), comment="paid back", model_id="m", timestamp=7.0)
    given = logger.feedback("p-2", flag="harmful", feedback_id="f-2", source="sme")
    (truth, flag) = logger._queue
    assert truth == {
        "feedback_id": fid,
        "prediction_id": "p-1",
        "model_id": "m",
        "actual": True,
        "flag": None,
        "comment": "paid back",
        "source": "ground_truth",
        "timestamp": 7.0,
    }
    assert type(truth["actual"]) is bool and len(fid) == 32
    assert (given, flag["flag"], flag["source"]) == ("f-2", "harmful", "sme")
    assert [is_feedback(e) for e in logger._queue] == [True, True]
    predictions = _logger()
    predictions.log("m", "1", {"x": 1.0}, True)
    assert not is_feedback(predictions._queue[0])


def test_feedback_that_says_nothing_or_has_nowhere_to_go_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="actual"):
        _logger().feedback("p-1")
    http = _LoggerBase("http://127.0.0.1:1", spool_max_bytes=0)
    with pytest.raises(ValueError, match="feedback_destination"):
        http.feedback("p-1", 1)
    routed = _LoggerBase(
        "http://127.0.0.1:1", spool_max_bytes=0, feedback_destination="http://127.0.0.1:2"
    )
    assert routed.feedback("p-1", 1)


def _prediction(pid: str) -> dict[str, Any]:
    return {"prediction_id": pid, "model_id": "m", "features": {}}


def _feedback(pid: str) -> dict[str, Any]:
    return {"feedback_id": f"f-{pid}", "prediction_id": pid, "actual": 1}


MIXED = [_prediction("a"), _feedback("a"), _prediction("b"), _feedback("b"), _feedback("c")]


def test_a_batch_splits_by_kind_keeping_the_order() -> None:
    predictions, feedback = by_kind(MIXED)
    assert [e["prediction_id"] for e in predictions] == ["a", "b"]
    assert [e["prediction_id"] for e in feedback] == ["a", "b", "c"]


def test_kafka_sends_each_kind_to_its_topic_keyed_by_prediction_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, list[bytes], list[dict[str, Any]]]] = []

    async def send_encoded(_: Any, topic: str, keys: list[bytes], values: Any) -> None:
        sent.append((topic, keys, [orjson.loads(v) for v in values]))

    monkeypatch.setattr("vigil.sdk.transport.send_encoded", send_encoded)
    transport = transport_for("kafka://127.0.0.1:1")
    assert isinstance(transport, KafkaTransport)
    transport._producer = object()  # never used: the sends are faked
    assert asyncio.run(transport.send(MIXED)) == []
    assert [(topic, keys) for topic, keys, _ in sent] == [
        (PREDICTIONS.name, [b"a", b"b"]),
        (FEEDBACK.name, [b"a", b"b", b"c"]),
    ]
    assert sent[1][2][0] == _feedback("a")


def _http(handler: Any, feedback_url: str | None = "http://feedback:8002") -> HttpTransport:
    transport = HttpTransport("http://logger:8001", api_key="k", feedback_url=feedback_url)
    transport._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return transport


def test_http_posts_each_kind_to_its_service_and_counts_what_one_refuses() -> None:
    posted: list[tuple[str, list[dict[str, Any]]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        lines = gzip.decompress(request.content).splitlines()
        posted.append((str(request.url), [orjson.loads(line) for line in lines]))
        if request.url.path == "/v1/feedback":
            return httpx.Response(422, json={"detail": "bad batch", "errors": []})
        return httpx.Response(200, json={"errors": []})

    refused = asyncio.run(_http(handler).send(MIXED))
    assert [url for url, _ in posted] == [
        "http://logger:8001/v1/predictions?partial=true",
        "http://feedback:8002/v1/feedback?partial=true",
    ]
    assert [len(events) for _, events in posted] == [2, 3]
    # The predictions were delivered: only the feedback is refused, not the batch.
    assert len(refused) == 3 and refused[0].startswith("HTTP 422")
    with pytest.raises(Rejected):  # a batch of one kind, refused whole
        asyncio.run(_http(handler).send(MIXED[1:2]))
    nowhere = asyncio.run(_http(handler, feedback_url=None).send(MIXED[:2]))
    assert nowhere == ["feedback: no feedback destination is configured"]
