"""Stage two of a drift worker: partials in, one WindowReport per window out.

Owns a share of the model versions (the partitions of ``vigil.drift-partials.v1`` it is
assigned), merges every worker's partials for them, closes and judges windows. Each step
writes the reports, the changed versions' state (to the compacted ``vigil.drift-state.v1``,
same partition as the partials) and the consumed offsets in one transaction; a worker that
takes a partition over first reloads that partition's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from drift_detector.config import Settings
from drift_detector.profiler import Stage, transactional_producer
from drift_detector.windows import ModelWindows, Partial, WindowPolicy
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS

log = logging.getLogger(__name__)

__all__ = ["Merger"]

REPORT_CODEC = Codec(WindowReport)
VERSION_CODEC = Codec(ModelVersion)
Key = tuple[str, str]


def _key(raw: bytes | None) -> Key:
    model_id, _, version = (raw or b"").decode().rpartition("/")
    return model_id, version


class Merger(Stage):
    """Merges partials into windows for the model versions this worker owns."""

    def __init__(
        self, settings: Settings, follower: ModelCatalogFollower, policy: WindowPolicy
    ) -> None:
        super().__init__(settings, follower, policy)
        self.group = f"{settings.drift_app_id}-merge"
        # The next offset to merge of each owned partition: a record below it was merged already
        # (fetched twice around a rebalance or a reload) and is skipped.
        self.expected: dict[TopicPartition, int] = {}
        self.models: dict[Key, ModelWindows] = {}
        self.partition_of: dict[Key, int] = {}
        self.changed: set[Key] = set()
        self.reports_published = 0

    async def start(self) -> None:
        self.producer = transactional_producer(self.settings, "merger")
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group,
            client_id=f"{self.group}-merger",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=64 * 1024 * 1024,
            fetch_max_bytes=128 * 1024 * 1024,
        )
        self.consumer.subscribe([self.partials.name], listener=self)
        await self.consumer.start()

    async def settle(self) -> None:
        await self._step_safely([])

    async def run(self) -> None:
        assert self.consumer is not None
        while True:
            records = await self.consumer.getmany(timeout_ms=500, max_records=500)
            async with self.lock:
                await self._step_safely(
                    [
                        m
                        for tp, ms in records.items()
                        if tp in self.expected
                        for m in ms
                        if m.offset >= self.expected[tp]
                    ]
                )

    async def _step_safely(self, messages: list[ConsumerRecord]) -> None:
        try:
            await self.step(messages)
        except Exception:
            log.exception("merge step failed; reloading state and re-reading partials")
            await self._reload(self.assignment)

    async def _version(self, key: Key) -> ModelVersion | None:
        version = self.follower.catalog.get(*key)
        if version is None:
            await self.follower.catch_up()
            version = self.follower.catalog.get(*key)
        return version

    async def step(self, messages: list[ConsumerRecord]) -> None:
        """Merge ``messages``, close due windows, and commit all of it in one transaction."""
        now = time.monotonic()
        for message in messages:
            key = _key(message.key)
            windows = self.models.get(key)
            current = await self._version(key)
            if current is None:
                log.error("partial for unregistered model version %s/%s dropped", *key)
                continue
            if windows is None:
                windows = self.models[key] = ModelWindows(current, self.policy)
            elif current.updated_at > windows.version.updated_at:
                windows.update_version(current)
            self.partition_of[key] = message.partition
            windows.add(Partial.from_bytes(message.value or b""), now)
            self.changed.add(key)
            tp = TopicPartition(message.topic, message.partition)
            self.offsets[tp] = self.expected[tp] = message.offset + 1
        reports: list[WindowReport] = []
        created = utcnow()
        for key, windows in self.models.items():
            closed = windows.close_due(now)
            if closed:
                self.changed.add(key)
                reports.extend(windows.report(w, created) for w in closed)
        if not self.changed and not self.offsets:
            return
        await self._commit(reports)

    async def _commit(self, reports: list[WindowReport]) -> None:
        assert self.producer is not None
        built = [w for k in self.changed if (w := self.models[k]).built_reference is not None]
        async with self.producer.transaction():
            sends = [
                await self.producer.send(
                    METRICS.name, key=r.key.encode(), value=REPORT_CODEC.encode(r)
                )
                for r in reports
            ]
            for key in self.changed:
                sends.append(
                    await self.producer.send(
                        self.state.name,
                        key=f"{key[0]}/{key[1]}".encode(),
                        value=self.models[key].snapshot(),
                        partition=self.partition_of[key],
                    )
                )
            for windows in built:
                sends.append(
                    await self.producer.send(
                        MODELS.name,
                        key=windows.version.key.encode(),
                        value=VERSION_CODEC.encode(windows.version),
                    )
                )
            await asyncio.gather(*sends)
            if self.offsets:
                await self.producer.send_offsets_to_transaction(dict(self.offsets), self.group)
        for windows in built:
            assert windows.built_reference is not None
            log.info(
                "built the production reference of %s from its first %d events",
                windows.version.key,
                windows.built_reference.row_count,
            )
            self.follower.catalog.apply(windows.version)
            windows.built_reference = None
        for r in reports:
            log.info(
                "published %s: %d events, drifted %s",
                r.report_id,
                r.event_count,
                r.drifted_features,
            )
        self.reports_published += len(reports)
        self.changed.clear()
        self.offsets.clear()

    # -- state hand-over ------------------------------------------------------------------

    async def _reload(self, partitions: Iterable[TopicPartition]) -> None:
        """Replace the state of ``partitions``' model versions with what the changelog holds,
        and read their partials again from the committed offsets."""
        parts = {tp.partition for tp in partitions}
        self._drop(parts)
        self.changed.clear()
        self.offsets.clear()
        if not parts:
            return
        states = await self._read_changelog(parts)
        now = time.monotonic()
        for (key, partition), data in states.items():
            version = await self._version(key)
            if version is None:
                continue
            try:
                self.models[key] = ModelWindows.restore(data, version, self.policy, now)
            except Exception:  # e.g. state written by an incompatible release
                log.exception("could not restore the state of %s/%s; starting it afresh", *key)
                continue
            self.partition_of[key] = partition
        assert self.consumer is not None
        for partition in parts:
            tp = TopicPartition(self.partials.name, partition)
            committed = await self.consumer.committed(tp)
            self.expected[tp] = committed or 0
            self.consumer.seek(tp, committed or 0)
        log.info(
            "restored %d model versions (%d events in open windows) from partitions %s",
            len(states),
            sum(w.events for m in self.models.values() for w in m.windows.values()),
            sorted(parts),
        )

    def _drop(self, parts: set[int]) -> None:
        self.expected = {tp: o for tp, o in self.expected.items() if tp.partition not in parts}
        for key in [k for k, p in self.partition_of.items() if p in parts]:
            self.models.pop(key, None)
            del self.partition_of[key]

    async def _read_changelog(self, parts: set[int]) -> dict[tuple[Key, int], bytes]:
        """The latest committed state of every model version in the changelog ``parts``."""
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
            max_partition_fetch_bytes=64 * 1024 * 1024,
            fetch_max_bytes=128 * 1024 * 1024,
        )
        await reader.start()
        states: dict[tuple[Key, int], bytes] = {}
        try:
            tps = [TopicPartition(self.state.name, p) for p in parts]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            remaining = {tp for tp in tps if ends[tp] > 0}
            while remaining:
                batches = await reader.getmany(*remaining, timeout_ms=1000)
                for tp, messages in batches.items():
                    for m in messages:
                        if m.value is not None:
                            states[(_key(m.key), tp.partition)] = m.value
                for tp in list(remaining):
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await reader.stop()
        return states

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            await self._step_safely([])
            self._drop({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            await self._reload(assigned)
