"""Vigil's own Prometheus metrics: a stage's records in and out and its consumer lag per
partition, set from its fetches; every API's request latency by route template."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from drift_detector.merging import Merging
from tests.unit.test_drift_traffic import REPORTS, Clocks, _merger, _put
from tests.unit.test_stages import PARTIALS, _catalog
from vigil.adapters.http import create_api
from vigil.adapters.metrics import ConsumerLag
from vigil.adapters.stage import Stage, StageConfig
from vigil.adapters.stage_logic import Incoming, Outgoing, Output, StageLogic

IN = "test.metrics.in"
OUT = "test.metrics.out"


class Stop(Exception):
    """Ends ``Stage.run`` after the fetches a test scripted."""


class FakeConsumer:
    """The part of aiokafka's consumer a running stage uses, with scripted fetches and
    per-partition ends (high watermark, last stable offset) as a fetch reports them."""

    def __init__(self, fetches: list[dict[TopicPartition, list[Incoming]]]) -> None:
        self.fetches = fetches
        self.owned = {TopicPartition(IN, 0), TopicPartition(IN, 1), TopicPartition(IN, 2)}
        self.highwaters: dict[TopicPartition, int | None] = {}
        self.stable: dict[TopicPartition, int | None] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.committed: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Incoming]]:
        if not self.fetches:
            raise Stop
        batch = self.fetches.pop(0)
        for tp, records in batch.items():
            self.positions[tp] = records[-1].offset + 1
        return batch

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self.stable.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets)


class FakeBatch:
    def __init__(self) -> None:
        self.values: list[bytes | None] = []

    def append(self, key: bytes | None, value: bytes | None, timestamp: None) -> object:
        self.values.append(value)
        return object()


class FakeProducer:
    """Takes records one by one (``send``) or in batches (``send_batch``), as the stage's
    sender hands them over."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    @staticmethod
    def _done() -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send(self, topic: str, **kwargs: object) -> asyncio.Future[object]:
        self.sent.append((topic, kwargs.get("value")))  # type: ignore[arg-type]
        return self._done()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(
        self, batch: FakeBatch, topic: str, *, partition: int
    ) -> asyncio.Future[object]:
        self.sent.extend((topic, value) for value in batch.values)
        return self._done()


class Relay(StageLogic):
    """Writes one record to ``OUT`` per record absorbed, at every poll."""

    def __init__(self) -> None:
        self.absorbed: list[Incoming] = []

    async def absorb(self, records: Sequence[Incoming]) -> None:
        self.absorbed.extend(records)

    def due(self, now: float) -> bool:
        return True

    async def flush(self) -> Output:
        out = [Outgoing(OUT, r.value, r.key) for r in self.absorbed]
        self.absorbed = []
        return Output(out)


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(IN, partition, offset, 0, 0, b"k", b"v", None, 1, 1, ())


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def running_stage(name: str, consumer: FakeConsumer) -> tuple[Stage, FakeProducer]:
    config = StageConfig(name, "127.0.0.1:1", "test-group", (IN,), transactional_id=None)
    stage = Stage(config, Relay())
    producer = FakeProducer()
    stage.consumer, stage.producer = consumer, producer  # type: ignore[assignment]
    stage.producer_started = True
    for tp in consumer.owned:
        stage.offsets.assign(tp, 0)  # committed before: read from the start
    return stage, producer


async def test_a_fetch_sets_the_lag_of_each_partition_and_counts_records_in_and_out() -> None:
    p0, p1 = TopicPartition(IN, 0), TopicPartition(IN, 1)
    consumer = FakeConsumer([{p0: [record(0, o) for o in range(3)], p1: [record(1, 0)]}])
    # Partition 0: 10 records on the log, the last transaction's marker past them (read
    # committed: its last stable offset is the end). Partition 1: an older broker, no last
    # stable offset. Partition 2: nothing fetched from it yet.
    consumer.highwaters = {p0: 11, p1: 5}
    consumer.stable = {p0: 10, p1: None}
    stage, producer = running_stage("lagging", consumer)

    with pytest.raises(Stop):
        await stage.run()

    assert sample("vigil_stage_consumer_lag", stage="lagging", topic=IN, partition="0") == 7
    assert sample("vigil_stage_consumer_lag", stage="lagging", topic=IN, partition="1") == 4
    assert sample("vigil_stage_consumer_lag", stage="lagging", topic=IN, partition="2") is None
    assert sample("vigil_stage_records_in_total", stage="lagging", topic=IN) == 4
    assert len(producer.sent) == 4 and consumer.committed == [{p0: 3, p1: 1}]
    assert sample("vigil_stage_records_out_total", stage="lagging", topic=OUT) == 4


async def test_the_lag_follows_later_fetches_and_a_revoked_partition_loses_its_series() -> None:
    p0 = TopicPartition(IN, 0)
    consumer = FakeConsumer([{p0: [record(0, 0)]}, {p0: [record(0, o) for o in range(1, 9)]}])
    consumer.highwaters = {p0: 9}
    stage, _ = running_stage("catching-up", consumer)
    seen: list[float | None] = []
    fetch = consumer.getmany

    async def noted(timeout_ms: int = 0, max_records: int | None = None) -> object:
        seen.append(
            sample("vigil_stage_consumer_lag", stage="catching-up", topic=IN, partition="0")
        )
        return await fetch(timeout_ms, max_records)

    consumer.getmany = noted  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await stage.run()
    assert seen[1:] == [8, 0]  # after the first fetch, then after the second

    await stage.on_partitions_revoked([p0])
    assert sample("vigil_stage_consumer_lag", stage="catching-up", topic=IN, partition="0") is None


def test_consumer_lag_is_never_negative() -> None:
    lag = ConsumerLag("ahead")
    assert lag.set(IN, 0, end=5, position=6) == 0
    assert sample("vigil_stage_consumer_lag", stage="ahead", topic=IN, partition="0") == 0


async def _no_adapters(_: AsyncExitStack) -> object:
    return object()


def test_every_api_times_its_requests_by_route_template_not_by_path() -> None:
    app = create_api("t", "timed", _no_adapters, adapters=object())

    def count(route: str, status: str) -> float:
        value = sample("vigil_http_request_seconds_count", method="GET", route=route, status=status)
        return value or 0.0

    before_health, before_unrouted = count("/healthz", "200"), count("<unrouted>", "404")
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/no/such/path/123").status_code == 404
        assert client.get("/no/such/path/456").status_code == 404
    assert count("/healthz", "200") == before_health + 1
    assert count("<unrouted>", "404") == before_unrouted + 2
    assert (
        sample(
            "vigil_http_request_seconds_count",
            method="GET",
            route="/no/such/path/123",
            status="404",
        )
        is None
    )


async def test_a_closed_window_observes_how_long_after_its_end_its_report_was_made() -> None:
    def histogram() -> tuple[float, float]:
        count = sample("vigil_drift_window_close_seconds_count") or 0.0
        return count, sample("vigil_drift_window_close_seconds_sum") or 0.0

    catalog, clocks = _catalog(), Clocks()
    harness = _merger(catalog, clocks)
    await harness.assign([(PARTIALS, 0)])
    await _put(harness, catalog, ("m", 300))
    logic = harness.logic
    assert isinstance(logic, Merging)
    before = histogram()
    assert not [r for r in (await logic.flush()).records if r.topic == "vigil.metrics.v1"]
    assert histogram() == before  # no window closed: nothing observed
    clocks.at(30)  # the window went idle: it closes
    output = await logic.flush()
    window = REPORTS.decode(output.records[0].value)
    count, total = histogram()
    assert count == before[0] + 1
    expected = (window.created_at - window.window_end).total_seconds()
    assert total - before[1] == pytest.approx(expected)
