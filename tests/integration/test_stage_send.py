"""A stage's output sent in batches per partition, against the real broker: keyed records land
in the partition aiokafka's (and Java's) default partitioner picks, exactly once, in order; a
record the topic refuses fails its whole batch, and the retries go one by one so that the
culprit is named and dead-lettered while every other record still arrives once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.kafka_tools import Message, end_offsets, read_from
from vigil.adapters.bus import ensure_topics, new_producer
from vigil.adapters.settings import VigilSettings
from vigil.adapters.stage import Stage, StageConfig
from vigil.adapters.stage_logic import DeadLetter, Incoming, Outgoing, Output, StageLogic
from vigil.wire.topics import DEADLETTER, Topic

pytestmark = pytest.mark.integration
# The output topic's max.message.bytes: above the stages' 512 KiB batches, below the 1 MiB a
# record can have on its way in.
LIMIT = 768 * 1024


class Echo(StageLogic):
    """Each record read goes out unchanged, keyed alike; blames the record a refusal names."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.pending: list[Incoming] = []
        self.blamed: list[Outgoing | None] = []

    async def absorb(self, records: Sequence[Incoming]) -> None:
        self.pending.extend(records)

    def due(self, now: float) -> bool:
        return bool(self.pending)

    async def flush(self) -> Output:
        return Output([Outgoing(self.out, r.value, r.key) for r in self.pending])

    def committed(self, output: Output) -> None:
        self.pending.clear()

    def on_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.pending.clear()

    def culprits(self, failed: Outgoing | None, reason: str) -> list[DeadLetter]:
        self.blamed.append(failed)
        if failed is None:
            return []
        return [DeadLetter(r, reason) for r in self.pending if r.key == failed.key]


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = new_producer(bootstrap, "test-stage-send")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def _run(infra: VigilSettings, small: int, large_at: int | None) -> None:
    bootstrap = infra.kafka_bootstrap
    tag = uuid.uuid4().hex[:8]
    source, out = f"test.stage-send.in.{tag}", f"test.stage-send.out.{tag}"
    await ensure_topics(
        bootstrap,
        [
            Topic(source, 3, "key", None),
            Topic(out, 4, "key", None, {"max.message.bytes": str(LIMIT)}),
        ],
    )
    records = [(f"k{i}".encode(), f"v{i}".encode() * 20) for i in range(small)]
    if large_at is not None:
        records.insert(large_at, (b"too-large", b"x" * (LIMIT + 65536)))
    out_start = await end_offsets(bootstrap, out)
    dead_start = await end_offsets(bootstrap, DEADLETTER.name)
    await _produce(bootstrap, source, records)

    logic = Echo(out)
    config = StageConfig(
        name="echo",
        kafka=bootstrap,
        group_id=f"test-stage-send-{tag}",
        topics=(source,),
        transactional_id=f"test-stage-send-{tag}",
        max_flush_failures=3,
    )
    stage = Stage(config, logic)
    await stage.start()
    task = asyncio.create_task(stage.run())
    try:
        sent = await read_from(bootstrap, out_start, lambda ms: len(ms) >= small, 60)
        await asyncio.sleep(2)  # a duplicate would show up by now
        sent += await read_from(bootstrap, out_start, lambda ms: False, 0.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stage.stop()
    mine = _dedup_reads(sent)
    keys = [m.key for m in mine]
    assert sorted(keys) == sorted(k for k, _ in records if k != b"too-large")
    assert len(keys) == len(set(keys)), "a record arrived twice"
    partitions = sorted(p.partition for p in out_start)
    partitioner = DefaultPartitioner()
    for m in mine:
        assert m.partition == partitioner(m.key, partitions, partitions)
    by_partition: dict[int, list[int]] = {}
    for m in mine:
        by_partition.setdefault(m.partition, []).append(int(m.key[1:]))
    # Within a partition the records keep the order they were read in (the source's order for
    # keys of one source partition).
    assert sum(len(v) for v in by_partition.values()) == small
    if large_at is not None:
        assert logic.blamed and logic.blamed[-1] is not None
        assert logic.blamed[-1].key == b"too-large"
        letters = await read_from(
            bootstrap, dead_start, lambda ms: any(m.key == b"too-large" for m in ms), 30
        )
        (letter,) = [m for m in letters if m.key == b"too-large"]
        headers = dict(letter.headers)
        assert headers["vigil.source.topic"] == source.encode()
        assert b"flush failed 3 times" in headers["vigil.reason"]


def _dedup_reads(messages: list[Message]) -> list[Message]:
    """Messages read twice by the two reads above (same partition and offset) counted once."""
    seen: dict[tuple[int, int], Message] = {}
    for m in messages:
        seen.setdefault((m.partition, m.offset), m)
    return list(seen.values())


def test_batched_output_lands_once_in_the_default_partitioners_partitions(
    infra: VigilSettings,
) -> None:
    asyncio.run(_run(infra, small=3000, large_at=None))


def test_a_refused_record_is_named_dead_lettered_and_the_rest_sent_once(
    infra: VigilSettings,
) -> None:
    asyncio.run(_run(infra, small=500, large_at=250))
