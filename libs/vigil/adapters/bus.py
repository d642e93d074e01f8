"""Kafka adapters shared by every service: the Bus on a producer, topic creation, dead letters."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from vigil.adapters.kafka_security import Kafka, client_options, start_client
from vigil.adapters.ports import Bus, Unavailable, keyed
from vigil.adapters.stage_logic import Incoming
from vigil.wire.codec import Codec
from vigil.wire.partitioning import partitions_for_keys
from vigil.wire.records import Record
from vigil.wire.topics import CATALOGUE, DEADLETTER, Topic

__all__ = [
    "KafkaBus",
    "PerMessageBus",
    "dead_letter",
    "ensure_topics",
    "new_producer",
    "publish",
    "send_encoded",
    "send_encoded_each",
    "send_keyed",
    "started",
]

R = TypeVar("R", bound=Record)
C = TypeVar("C", bound="Startable")


class Startable(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def started(stack: AsyncExitStack, client: C) -> C:
    """Start a Kafka client (or anything with start/stop) and have ``stack`` stop it."""
    await client.start()
    stack.push_async_callback(client.stop)
    return client


log = logging.getLogger(__name__)


def new_producer(
    kafka: Kafka, client_id: str, linger_ms: int = 5, max_batch_size: int = 16_384
) -> AIOKafkaProducer:
    """A producer whose acknowledged writes are on every in-sync replica, without duplicates.

    ``max_batch_size`` bounds the record batches ``send_keyed`` builds too: a bulk writer
    wants them large, one per partition per call.
    """
    return AIOKafkaProducer(
        **client_options(kafka),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        request_timeout_ms=10_000,
    )


async def publish(
    producer: AIOKafkaProducer,
    topic: Topic,
    codec: Codec[R],
    records: Sequence[R],
    key: Callable[[R], str],
) -> None:
    """Write ``records`` and return once Kafka has acknowledged every one of them."""
    await send_keyed(producer, topic.name, keyed(codec, records, key))


async def send_keyed(
    producer: AIOKafkaProducer, topic: str, messages: Sequence[tuple[bytes, bytes]]
) -> None:
    """Write (key, value) messages and return once Kafka has acknowledged every one.

    Messages go out as one record batch per partition (more when one fills up), which costs far
    less per message than one send() each; partitions are chosen as Kafka's default
    partitioner would. The batches are closed when handed over: nothing else can join them,
    so they go out without waiting ``linger_ms``.
    """
    await send_encoded(producer, topic, [k for k, _ in messages], (v for _, v in messages))


async def send_encoded(
    producer: AIOKafkaProducer, topic: str, keys: Sequence[bytes], values: Iterable[bytes]
) -> None:
    """``send_keyed`` with the values apart, taken one at a time as they are appended.

    A lazy ``values`` (``map(encode, records)``) frees each value once it is in its batch, so
    the allocator reuses the same memory instead of holding a whole batch of values: on these
    VMs every fresh page costs a page fault of ~2.5 us.
    """
    if keys:
        batches = await _send_batches(producer, topic, keys, values)
        await asyncio.gather(*(sent for sent, _ in batches))


async def send_encoded_each(
    producer: AIOKafkaProducer, topic: str, keys: Sequence[bytes], values: Iterable[bytes]
) -> list[bool]:
    """``send_encoded``, returning whether Kafka acknowledged each message, in order.

    A write can fail for some partitions' batches and succeed for others: the caller learns
    which messages are stored instead of a single error.
    """
    if not keys:
        return []
    batches = await _send_batches(producer, topic, keys, values)
    outcomes = await asyncio.gather(*(sent for sent, _ in batches), return_exceptions=True)
    stored = [False] * len(keys)
    for outcome, (_, indexes) in zip(outcomes, batches, strict=True):
        if not isinstance(outcome, BaseException):
            for i in indexes:
                stored[i] = True
    return stored


async def _send_batches(
    producer: AIOKafkaProducer, topic: str, keys: Sequence[bytes], values: Iterable[bytes]
) -> list[tuple[asyncio.Future[Any], list[int]]]:
    """Hand the messages over as record batches; each batch's future and message indexes."""
    count = len(await producer.partitions_for(topic))
    open_batches: dict[int, tuple[Any, list[int]]] = {}
    sent = []
    for i, (key, value, partition) in enumerate(
        zip(keys, values, partitions_for_keys(keys, count), strict=True)
    ):
        builder, indexes = open_batches.get(partition) or open_batches.setdefault(
            partition, (producer.create_batch(), [])
        )
        if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it
            sent.append((await producer.send_batch(builder, topic, partition=partition), indexes))
            builder, indexes = open_batches[partition] = (producer.create_batch(), [])
            builder.append(key=key, value=value, timestamp=None)
        indexes.append(i)
    for partition, (builder, indexes) in open_batches.items():
        builder.close()
        sent.append((await producer.send_batch(builder, topic, partition=partition), indexes))
    return sent


async def ensure_topics(kafka: Kafka, topics: Iterable[Topic] = CATALOGUE) -> list[str]:
    """Create the catalogue's missing topics; returns the names created. Safe to run twice.

    Every service calls it first: a client Kafka refuses fails here, saying why.
    """
    admin = AIOKafkaAdminClient(**client_options(kafka), client_id="vigil-topics")
    await start_client(admin, kafka)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(t.name, t.partitions, 1, topic_configs=dict(t.config)) for t in missing]
            )
            # 36 = TOPIC_ALREADY_EXISTS: another process created it meanwhile.
            failures = [
                f"{name}: error {code} {message}"
                for name, code, message in response.topic_errors
                if code not in (0, 36)
            ]
            if failures:
                raise RuntimeError("could not create topics: " + "; ".join(failures))
        return [t.name for t in missing]
    finally:
        await admin.close()


async def dead_letter(
    producer: AIOKafkaProducer,
    value: bytes | None,
    reason: str,
    *,
    source_topic: str,
    key: bytes | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> asyncio.Future[Any]:
    """Queue undecodable or invalid bytes, untouched, for the dead-letter topic with the reason.

    Returns the send's future: await it (or gather many) for Kafka's acknowledgement.
    """
    headers = [
        ("vigil.reason", reason.encode()),
        ("vigil.source.topic", source_topic.encode()),
    ]
    if partition is not None:
        headers.append(("vigil.source.partition", str(partition).encode()))
    if offset is not None:
        headers.append(("vigil.source.offset", str(offset).encode()))
    log.debug("dead-lettering a message from %s: %s", source_topic, reason)
    future: asyncio.Future[Any] = await producer.send(
        DEADLETTER.name, value=value, key=key, headers=headers
    )
    return future


@contextmanager
def _kafka_unavailable() -> Iterator[None]:
    try:
        yield
    except KafkaError as exc:
        raise Unavailable("Kafka", type(exc).__name__) from exc


class PerMessageBus(Bus):
    """A Bus that also says which messages of a write were stored, when only some were."""

    @abstractmethod
    async def send_each(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> list[bool]:
        """Write (key, value) messages; whether each is stored, in order.

        Raises Unavailable only when none was handed to Kafka.
        """


class KafkaBus(PerMessageBus):
    """The Bus on one Kafka producer: a write returns once every in-sync replica has it."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    @classmethod
    async def open(
        cls, stack: AsyncExitStack, kafka: Kafka, client_id: str, max_batch_size: int = 16_384
    ) -> KafkaBus:
        """A bus on a new producer, started now and stopped when ``stack`` closes."""
        # Imported here: the schema topic's adapter writes with this module's producer.
        from vigil.adapters.schema_topic import join_schema_topic, leave_schema_topic

        # Before anything is written or read: our schemas registered, newer ones followed.
        await join_schema_topic(kafka)
        stack.push_async_callback(leave_schema_topic, kafka)
        producer = new_producer(kafka, client_id, max_batch_size=max_batch_size)
        return cls(await started(stack, producer))

    async def send(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        with _kafka_unavailable():
            await send_keyed(self.producer, topic, messages)

    async def send_each(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> list[bool]:
        with _kafka_unavailable():
            keys = [k for k, _ in messages]
            return await send_encoded_each(self.producer, topic, keys, (v for _, v in messages))

    async def dead_letter(self, message: Incoming, reason: str) -> None:
        with _kafka_unavailable():
            sent = await dead_letter(
                self.producer,
                message.value,
                reason,
                source_topic=message.topic,
                key=message.key,
                partition=message.partition,
                offset=message.offset,
            )
            await sent

    async def ping(self) -> None:
        await self.producer.client.fetch_all_metadata()


async def _main() -> None:
    from vigil.adapters.settings import VigilSettings

    settings = VigilSettings()
    for attempt in range(30):
        try:
            created = await ensure_topics(settings.kafka)
            break
        except Exception as exc:  # the broker may still be electing its controller
            if attempt == 29:
                raise
            log.info("topics not created yet (%s); retrying", exc)
            await asyncio.sleep(1)
    for topic in CATALOGUE:
        state = "created" if topic.name in created else "exists"
        print(f"topic {topic.name:<24} partitions={topic.partitions}  {state}")


if __name__ == "__main__":
    asyncio.run(_main())
