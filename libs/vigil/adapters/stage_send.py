"""How a stage hands a flush's records to its producer: whole batches per topic partition.

aiokafka's ``send`` costs about 11 µs a record in Python (a coroutine, a serialisation check,
the partitioner and a future each); a ``BatchBuilder`` filled per partition and handed over
with ``send_batch`` costs about 2 µs. The partition of a keyed record that names none (a
changelog's do) is the default partitioner's (murmur2 of the key, as aiokafka's ``send`` and
Java clients choose it), so co-partitioned topics stay co-partitioned; it is computed over a
flush's keys at once (``vigil.wire.partitioning``, ~0.3 µs a key where aiokafka's partitioner
takes ~2 µs). Batches go through the producer's transaction like single sends.

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
from vigil.wire.partitioning import partitions_for_keys
from vigil.wire.topics import DEADLETTER

__all__ = ["DEAD_LETTER_MAX_BYTES", "send_output", "stage_producer"]

# Under the broker's default message.max.bytes (the dead-letter topic does not raise it).
DEAD_LETTER_MAX_BYTES = 1_000_000
# A record batch's size (the stage producer's ``max_batch_size``): a flush goes out in few
# batches per partition, a send_batch and a future each (16 KiB batches held one worker of the
# joiner to ~45k predictions/s, these to ~80k). A topic a stage writes must take batches this
# large: the broker's default max.message.bytes (1 MiB) does, and so does every topic of the
# catalogue.
BATCH_BYTES = 512 * 1024
_PARTITIONER = DefaultPartitioner()
Future = asyncio.Future[object]


def stage_producer(kafka: Kafka, client_id: str, transactional_id: str | None) -> AIOKafkaProducer:
    """A stage's producer: transactional (idempotent, all replicas) when it has an id."""
    if transactional_id is None:
        return new_producer(kafka, client_id, max_batch_size=BATCH_BYTES)
    return AIOKafkaProducer(
        **client_options(kafka),
        client_id=client_id,
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=BATCH_BYTES,
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
    batches: dict[tuple[str, int], Any] = {}  # aiokafka's BatchBuilder
    futures: list[Future] = []
    for r, partition in zip(records, await _partitions(producer, records), strict=True):
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


async def _partitions(producer: AIOKafkaProducer, records: Sequence[Outgoing]) -> list[int]:
    """Each record's partition: the one it names, else the default partitioner's (murmur2 of
    the key, over all the keys of a topic at once; a record without a key, one at random)."""
    chosen = [r.partition for r in records]
    unnamed: dict[str, list[int]] = {}
    for i, partition in enumerate(chosen):
        if partition is None:
            unnamed.setdefault(records[i].topic, []).append(i)
    for topic, at in unnamed.items():
        known = sorted(await producer.partitions_for(topic))
        keyed = [(i, key) for i in at if (key := records[i].key) is not None]
        hashed = partitions_for_keys([key for _, key in keyed], len(known)) if keyed else []
        for (i, _), index in zip(keyed, hashed, strict=True):
            chosen[i] = known[index]
        for i in at:
            if chosen[i] is None:
                chosen[i] = _PARTITIONER(None, known, known)
    return [p for p in chosen if p is not None]


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
