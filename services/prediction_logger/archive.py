"""``python -m prediction_logger.archive``: predictions from Kafka into Parquet files.

Offsets are committed only after the files holding them are durably written, and files are
named after their offsets (see archive_files), so a crash and restart leave neither gaps nor
duplicate rows.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from prediction_logger.archive_files import ArchiveFiles, Row
from prediction_logger.config import ArchiveSettings
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import PredictionEvent

log = logging.getLogger("prediction_logger.archive")
CODEC = Codec(PredictionEvent)


class Archiver(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, consumer: AIOKafkaConsumer, files: ArchiveFiles, settings: ArchiveSettings
    ) -> None:
        self.consumer = consumer
        self.files = files
        self.settings = settings
        self.rows: dict[TopicPartition, list[Row]] = {}
        self.opened: dict[TopicPartition, float] = {}
        self.next_offset: dict[TopicPartition, int] = {}
        self.cut_at: dict[TopicPartition, int] = {}
        self.undecodable = 0

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Unwritten rows are read again by the partition's next owner.
        for tp in revoked:
            self.rows.pop(tp, None)
            self.opened.pop(tp, None)
            self.next_offset.pop(tp, None)
            self.cut_at.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            committed = await self.consumer.committed(tp) or 0
            end = self.files.pending_chunk_end(tp.topic, tp.partition, committed)
            if end is not None:
                log.info("%s: rewriting the interrupted chunk ending at offset %d", tp, end)
                self.cut_at[tp] = end

    async def run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=20_000)
            for tp, messages in batches.items():
                for message in messages:
                    self._add(tp, message.offset, message.value)
                    if tp in self.cut_at and message.offset >= self.cut_at[tp]:
                        del self.cut_at[tp]
                        await self.flush(tp)
            now = time.monotonic()
            for tp in list(self.next_offset):
                if tp not in self.cut_at and self._due(tp, now):
                    await self.flush(tp)

    def _add(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        self.next_offset[tp] = offset + 1
        self.opened.setdefault(tp, time.monotonic())
        try:
            self.rows.setdefault(tp, []).append(Row(CODEC.decode(value), tp.partition, offset))
        except DecodeError as exc:  # the drift detector dead-letters these; here they are counted
            self.undecodable += 1
            log.warning("%s offset %d not archived: %s", tp, offset, exc.reason)

    def _due(self, tp: TopicPartition, now: float) -> bool:
        return (
            len(self.rows.get(tp, ())) >= self.settings.archive_max_rows
            or now - self.opened.get(tp, now) >= self.settings.archive_max_seconds
        )

    async def flush(self, tp: TopicPartition) -> None:
        """Write the partition's buffered rows, then commit past them."""
        rows = self.rows.pop(tp, [])
        self.opened.pop(tp, None)
        if rows:
            paths = await asyncio.to_thread(self.files.write_chunk, tp.topic, tp.partition, rows)
            log.info(
                "%s: archived offsets %d..%d in %d file(s)",
                tp,
                rows[0].offset,
                rows[-1].offset,
                len(paths),
            )
        await self.consumer.commit({tp: self.next_offset.pop(tp)})


async def main(settings: ArchiveSettings) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.archive_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    archiver = Archiver(consumer, ArchiveFiles(settings.archive_url), settings)
    consumer.subscribe([settings.archive_topic], listener=archiver)
    await consumer.start()
    try:
        await archiver.run()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    config = ArchiveSettings()
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(main(config))
