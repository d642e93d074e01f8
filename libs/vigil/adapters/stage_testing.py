"""Runs a stage's logic in memory, as ``vigil.adapters.stage`` runs it on Kafka (for tests).

In the spirit of faust's ``agent.test_context()``::

    harness = StageHarness(logic, topics={"vigil.predictions.v1": 6})
    await harness.assign([("vigil.predictions.v1", 0)])
    await harness.put("vigil.predictions.v1", 0, [value, ...])
    await harness.flush()
    harness.sent, harness.dead_letters, harness.committed
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence

from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    Incoming,
    Message,
    OffsetBook,
    Outgoing,
    StageLogic,
    TopicPartitionKey,
)

__all__ = ["StageHarness"]


class StageHarness:
    """Feeds records to a ``StageLogic``; collects what it would send, dead-letter and commit.

    Sent records of a ``changelog`` topic are kept (latest per key and partition) and handed
    back on assignment, as Kafka's compacted topic would.
    """

    def __init__(
        self, logic: StageLogic, topics: Mapping[str, int], changelog: str | None = None
    ) -> None:
        self.logic = logic
        self.topics = dict(topics)
        self.changelog_topic = changelog
        self.offsets = OffsetBook()
        self.log: dict[TopicPartitionKey, list[Message]] = defaultdict(list)
        self.sent: list[Outgoing] = []
        self.dead_letters: list[DeadLetter] = []
        self.committed: dict[TopicPartitionKey, int] = {}
        self.changelog: dict[tuple[int, bytes | None], Message] = {}
        self.flushes = 0
        self._pending_dead: list[DeadLetter] = []

    def append(
        self,
        topic: str,
        partition: int,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
    ) -> list[Message]:
        """Write records to the in-memory topic (without ``keys``, keys are None)."""
        log = self.log[(topic, partition)]
        keys = [None] * len(values) if keys is None else keys
        new = [
            Message(topic, partition, len(log) + i, k, v)
            for i, (k, v) in enumerate(zip(keys, values, strict=True))
        ]
        log.extend(new)
        return new

    async def put(
        self,
        topic: str,
        partition: int,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
    ) -> None:
        """Append records and let the stage absorb every new record it owns."""
        self.append(topic, partition, values, keys)
        await self.poll()

    async def poll(self) -> None:
        """One fetch of everything not read yet from the owned partitions."""
        batches = {tp: self.log[tp] for tp in self.offsets.expected}
        records: list[Incoming] = self.offsets.fresh(batches)
        if records:
            await self.logic.absorb(records)

    async def flush(self) -> None:
        """Flush as the adapter does, and keep what would have been committed."""
        output = await self.logic.flush()
        output.dead_letters[:0] = self._pending_dead
        self._pending_dead = []
        commit = self.offsets.to_commit(output)
        self.sent.extend(output.records)
        self.dead_letters.extend(output.dead_letters)
        self.committed.update(commit)
        self.offsets.done(commit.items())
        for r in output.records:
            if r.topic == self.changelog_topic:
                assert r.partition is not None, "changelog records name their partition"
                self.changelog[(r.partition, r.key)] = Message(
                    r.topic, r.partition, len(self.changelog), r.key, r.value
                )
        self.flushes += 1
        self.logic.committed(output)

    async def flush_if_due(self, now: float) -> bool:
        if self.logic.due(now):
            await self.flush()
            return True
        return False

    async def assign(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Hand partitions over: the stage resumes them from the committed offsets."""
        committed = {tp: self.committed.get(tp) for tp in partitions}
        for tp, offset in committed.items():
            self.offsets.assign(tp, offset)
        numbers = {p for _, p in partitions}
        changelog = [m for (p, _), m in sorted(self.changelog.items()) if p in numbers]

        async def restore() -> AsyncIterator[Sequence[Incoming]]:
            yield changelog  # what a compacted topic may still hold: the latest of each key

        assigned = Assigned(list(partitions), committed, self.topics, changelog, restore)
        self._pending_dead.extend(await self.logic.on_assigned(assigned))

    async def revoke(self, partitions: Sequence[TopicPartitionKey], settle: bool = True) -> None:
        """Take partitions away, first committing pending work unless ``settle`` is False
        (the process died: uncommitted work is lost, as after ``kill -9``)."""
        if settle:
            await self.flush()
        self.logic.on_revoked(list(partitions))
        for tp in partitions:
            self.offsets.revoke(tp)
