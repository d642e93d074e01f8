"""Writer schemas shared on the compacted ``vigil.schemas.v1``, so upgrades work in either order.

A producer registers every schema of its ``schemas/*.avsc`` when it starts (keyed by the
fingerprint in hex, the value the schema's JSON: its full form, since the parsing canonical form
the fingerprint is computed from drops the logical types a reader needs); a reader follows the topic
and hands each schema to ``vigil.wire.avro.register_writer_schema``, so its ``Codec`` reads a
newer producer's records with Avro schema resolution. Registering is idempotent (same key, same
value) and compaction keeps one record per fingerprint.

A record the follower cannot trust is ignored and counted by reason (``ignored`` and
``vigil_schema_records_ignored_total{reason}``): ``invalid_schema`` (not an Avro schema) and
``key_mismatch`` (the key is not the value's fingerprint).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.bus import ensure_topics, new_producer, send_keyed
from vigil.adapters.follower import TopicFollower
from vigil.adapters.kafka_security import Kafka, KafkaConnection, connection
from vigil.wire.avro import AvroSchema, current_schemas, register_writer_schema
from vigil.wire.topics import SCHEMAS

__all__ = [
    "SchemaTopicFollower",
    "join_schema_topic",
    "leave_schema_topic",
    "register_writer_schemas",
]

log = logging.getLogger(__name__)

IGNORED = PrometheusCounter(
    "vigil_schema_records_ignored_total",
    "Records of the schemas topic the schema follower ignored, by reason.",
    ["reason"],
)


async def register_writer_schemas(
    kafka: Kafka, schemas: Iterable[AvroSchema] | None = None, topic: str = SCHEMAS.name
) -> None:
    """Publish writer schemas (default: every current ``schemas/*.avsc``) by fingerprint."""
    if topic == SCHEMAS.name:
        await ensure_topics(kafka, [SCHEMAS])
    messages = [
        (s.fingerprint.hex().encode(), s.json.encode())
        for s in (current_schemas() if schemas is None else schemas)
    ]
    producer = new_producer(kafka, "vigil-schemas")
    await producer.start()
    try:
        await send_keyed(producer, topic, messages)
    finally:
        await producer.stop()


class SchemaTopicFollower(TopicFollower):
    """Reads ``vigil.schemas.v1`` from the beginning into the process's writer schemas."""

    def __init__(self, kafka: Kafka, topic: str = SCHEMAS.name) -> None:
        super().__init__(kafka, topic, "schema-topic", IGNORED)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:  # a tombstone: a schema once known stays readable
            return
        try:
            schema = register_writer_schema(value.decode())
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("ignoring a record of %s: %s", self._tp.topic, exc)
            return self._ignore("invalid_schema")
        if key != schema.fingerprint.hex().encode():
            # Registered anyway: the value's own fingerprint is what decoders look up.
            log.warning("a record of %s is keyed %r, not its fingerprint", self._tp.topic, key)
            self._ignore("key_mismatch")
        return None


# One follower per event loop and connection, shared by every adapter that joins.
_shared: dict[tuple[int, KafkaConnection], tuple[SchemaTopicFollower, int]] = {}
_locks: dict[int, asyncio.Lock] = {}


def _lock() -> asyncio.Lock:
    return _locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())


async def join_schema_topic(kafka: Kafka) -> None:
    """Register this tree's writer schemas and follow everybody's (once per process)."""
    key = (id(asyncio.get_running_loop()), connection(kafka))
    async with _lock():
        if key in _shared:
            follower, users = _shared[key]
            _shared[key] = (follower, users + 1)
            return
        await register_writer_schemas(kafka)
        follower = SchemaTopicFollower(kafka)
        try:
            await follower.start()
        except BaseException:
            await follower.stop()
            raise
        _shared[key] = (follower, 1)


async def leave_schema_topic(kafka: Kafka) -> None:
    """The other half of ``join_schema_topic``: the last to leave stops the follower."""
    key = (id(asyncio.get_running_loop()), connection(kafka))
    async with _lock():
        if key not in _shared:
            return
        follower, users = _shared.pop(key)
        if users > 1:
            _shared[key] = (follower, users - 1)
            return
    await follower.stop()
