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
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.bus import ensure_topics, new_producer, send_keyed
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
    bootstrap: str, schemas: Iterable[AvroSchema] | None = None, topic: str = SCHEMAS.name
) -> None:
    """Publish writer schemas (default: every current ``schemas/*.avsc``) by fingerprint."""
    if topic == SCHEMAS.name:
        await ensure_topics(bootstrap, [SCHEMAS])
    messages = [
        (s.fingerprint.hex().encode(), s.json.encode())
        for s in (current_schemas() if schemas is None else schemas)
    ]
    producer = new_producer(bootstrap, "vigil-schemas")
    await producer.start()
    try:
        await send_keyed(producer, topic, messages)
    finally:
        await producer.stop()


class SchemaTopicFollower:
    """Reads ``vigil.schemas.v1`` from the beginning into the process's writer schemas."""

    def __init__(self, bootstrap: str, topic: str = SCHEMAS.name) -> None:
        self._tp = TopicPartition(topic, 0)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
        )
        self._task: asyncio.Task[None] | None = None
        self._position = 0
        self._advanced = asyncio.Event()
        self.ignored: Counter[str] = Counter()  # records ignored, by reason

    async def start(self) -> None:
        """Start following and return once every schema registered so far is known."""
        await self._consumer.start()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        self._task = asyncio.create_task(self._follow(), name="schema-topic")
        await self.catch_up()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def catch_up(self) -> None:
        """Wait (up to 10 s) until every schema registered before this call is known."""
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        async with asyncio.timeout(10):
            while self._position < end:
                self._advanced.clear()
                await self._advanced.wait()

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(self._tp, timeout_ms=500)
            for message in batches.get(self._tp, []):
                self._apply(message.key, message.value)
            self._position = await self._consumer.position(self._tp)
            self._advanced.set()

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

    def _ignore(self, reason: str) -> None:
        self.ignored[reason] += 1
        IGNORED.labels(reason).inc()


# One follower per event loop and bootstrap, shared by every adapter that joins.
_shared: dict[tuple[int, str], tuple[SchemaTopicFollower, int]] = {}
_locks: dict[int, asyncio.Lock] = {}


def _lock() -> asyncio.Lock:
    return _locks.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())


async def join_schema_topic(bootstrap: str) -> None:
    """Register this tree's writer schemas and follow everybody's (once per process)."""
    key = (id(asyncio.get_running_loop()), bootstrap)
    async with _lock():
        if key in _shared:
            follower, users = _shared[key]
            _shared[key] = (follower, users + 1)
            return
        await register_writer_schemas(bootstrap)
        follower = SchemaTopicFollower(bootstrap)
        try:
            await follower.start()
        except BaseException:
            await follower.stop()
            raise
        _shared[key] = (follower, 1)


async def leave_schema_topic(bootstrap: str) -> None:
    """The other half of ``join_schema_topic``: the last to leave stops the follower."""
    key = (id(asyncio.get_running_loop()), bootstrap)
    async with _lock():
        if key not in _shared:
            return
        follower, users = _shared.pop(key)
        if users > 1:
            _shared[key] = (follower, users - 1)
            return
    await follower.stop()
