"""How a stage hands a flush's records to its producer: whole batches per topic partition.

aiokafka's ``send`` costs about 11 µs a record in Python (a coroutine, a serialisation check,
the partitioner and a future each); a ``BatchBuilder`` filled per partition and handed over
with ``send_batch`` costs about 4 µs, 2 of them the partitioner, which records that name their
partition (a changelog's) skip. The partition of a keyed record is the default partitioner's
(murmur2 of the key, as aiokafka's ``send`` and Java clients choose it), so co-partitioned
topics stay co-partitioned. Batches go through the producer's transaction like single sends.

Kafka refuses a whole batch when one record is refused (too large for the topic, say), which
would not say which record it was: after a failed flush the stage sends record by record
(``one_by_one``) until a flush succeeds again, so the culprit is named (``SendFailed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from vigil.adapters.bus import new_producer
from vigil.adapters.kafka_security import Kafka, client_options
from vigil.adapters.stage_logic import DeadLetter, Outgoing, SendFailed
from vigil.wire.topics import DEADLETTER

__all__ = ["DEAD_LETTER_MAX_BYTES", "send_output", "stage_producer"]

# Under the broker's default message.max.bytes (the dead-letter topic does not raise it).
DEAD_LETTER_MAX_BYTES = 1_000_000
_PARTITIONER = DefaultPartitioner()
Future = asyncio.Future[object]


def stage_producer(kafka: Kafka, client_id: str, transactional_id: str | None) -> AIOKafkaProducer:
    """A stage's producer: transactional (idempotent, all replicas) when it has an id."""
    if transactional_id is None:
        return new_producer(kafka, client_id)
    return AIOKafkaProducer(
        **client_options(kafka),
        client_id=client_id,
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=64 * 1024 * 1024,
        transaction_timeout_ms=30_000,
        request_timeout_ms=30_000,
    )


async def send_output(
    producer: AIOKafkaProducer,
    records: Sequence[Outgoing],
    dead_letters: Sequence[DeadLetter],
    one_by_one: bool,
) -> None:
    """Send ``records`` and ``dead_letters`` and wait until Kafka has them (SendFailed names a
    refused record when sent ``one_by_one``)."""
    sends: list[tuple[Outgoing | None, Future]]
    if one_by_one:
        sends = [(r, await _send_one(producer, r)) for r in records]
    else:
        sends = [(None, f) for f in await _send_batches(producer, records)]
    sends += [(None, await _send_dead(producer, d)) for d in dead_letters]
    for record, future in sends:
        try:
            await future
        except KafkaError as exc:
            if record is None:
                raise
            raise SendFailed(record, exc) from exc


async def _send_batches(producer: AIOKafkaProducer, records: Sequence[Outgoing]) -> list[Future]:
    partitions: dict[str, list[int]] = {}
    batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
    futures: list[Future] = []
    for r in records:
        partition = r.partition
        if partition is None:
            known = partitions.get(r.topic)
            if known is None:
                known = partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
            partition = _PARTITIONER(r.key, known, known)
        tp = (r.topic, partition)
        batch = batches.get(tp)
        if batch is None:
            batch = batches[tp] = producer.create_batch()
        if batch.append(key=r.key, value=r.value, timestamp=None) is None:
            futures.append(await producer.send_batch(batch, r.topic, partition=partition))
            batch = batches[tp] = producer.create_batch()
            batch.append(key=r.key, value=r.value, timestamp=None)
    for (topic, partition), batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def _send_one(producer: AIOKafkaProducer, r: Outgoing) -> Future:
    try:
        future: Future = await producer.send(
            r.topic, key=r.key, value=r.value, partition=r.partition
        )
    except KafkaError as exc:  # e.g. over the producer's maximum request size
        raise SendFailed(r, exc) from exc
    return future


async def _send_dead(producer: AIOKafkaProducer, d: DeadLetter) -> Future:
    value, headers = d.record.value, d.headers()
    if value is not None and len(value) > DEAD_LETTER_MAX_BYTES:
        headers.append(("vigil.original.size", str(len(value)).encode()))
        value = value[:DEAD_LETTER_MAX_BYTES]
    future: Future = await producer.send(
        DEADLETTER.name, key=d.record.key, value=value, headers=headers
    )
    return future
