"""One consumer of ``vigil.metrics.v1`` feeding every index of its reports.

The metrics topic carries the drift detector's ``WindowReport``s and ``TrafficReport``s and the
feedback joiner's ``PerformanceReport``s. Each index declares the record it keeps; the feed
(consumer group ``VIGIL_REGISTRY_METRICS_GROUP``, from the start of the topic, committed after
each batch is indexed) tells the records apart by their writer schema's fingerprint, without
decoding, and hands each to its index. Every index writes idempotently, so a replay (offsets
reset after Redis was flushed) or several registry replicas are harmless.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from aiokafka import AIOKafkaConsumer

from vigil.adapters.kafka_security import Kafka, client_options, start_client
from vigil.wire.avro import known_writer_schemas
from vigil.wire.base import Record
from vigil.wire.codec import Codec, DecodeError

__all__ = ["ReportIndex", "index_reports", "indexer", "is_record"]

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Record)
_MAGIC = b"\xc3\x01"


class ReportIndex(ABC, Generic[R]):
    """An index of one kind of record of the metrics topic."""

    record: ClassVar[type[Record]]

    @abstractmethod
    async def put(self, report: R) -> bool:
        """Keep ``report`` unless as new a one is kept; whether it was kept."""


def is_record(value: bytes | None, record: type[Record]) -> bool:
    """Whether a record of the metrics topic is a ``record`` (read without decoding)."""
    return (
        value is not None
        and value[:2] == _MAGIC
        and value[2:10] in known_writer_schemas(record.__name__)
    )


class _Route:
    def __init__(self, index: ReportIndex[Any]) -> None:
        self.index = index
        self.codec = Codec(index.record)
        self.fingerprints = frozenset(known_writer_schemas(index.record.__name__))


async def _deliver(routes: list[_Route], value: bytes | None, offset: int) -> None:
    if value is None or value[:2] != _MAGIC:
        return
    route = next((r for r in routes if value[2:10] in r.fingerprints), None)
    if route is None:
        return  # another kind of report
    try:
        report = route.codec.decode(value)
    except DecodeError as exc:
        log.warning("%s at %d ignored: %s", route.index.record.__name__, offset, exc)
        return
    await route.index.put(report)


async def indexer(kafka: Kafka, group: str, *topics: str) -> AIOKafkaConsumer:
    """A started consumer for one of the registry's indexes: its own group, from the start of
    the topics, committed records only (offsets committed by the caller)."""
    consumer = AIOKafkaConsumer(
        *topics,
        **client_options(kafka),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await start_client(consumer, kafka)
    return consumer


async def index_reports(kafka: Kafka, topic: str, group: str, *indexes: ReportIndex[Any]) -> None:
    """Keep ``indexes`` up to date with the reports of ``topic``, until cancelled."""
    routes = [_Route(index) for index in indexes]
    consumer = await indexer(kafka, group, topic)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    await _deliver(routes, record.value, record.offset)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
