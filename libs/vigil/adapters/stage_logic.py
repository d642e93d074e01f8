"""A stream stage's logic and what it hands back, with no Kafka in sight.

A stage (drift profiler, drift merger, archive, feedback joiner) is a small object with plain
methods: it ``absorb``s batches of records, says when it is ``due``, and ``flush``es an
``Output`` (records to send, dead letters, which offsets its work covers). ``vigil.adapters.stage``
runs one against Kafka; ``vigil.adapters.stage_testing`` runs one in memory.

A flush that fails for a reason other than an outage fails again when the same records are
re-read: ``FlushFailures`` counts such failures in a row and, at its limit, asks the logic
which absorbed records are the ``culprits``; those are dead-lettered when next read instead of
absorbed. A logic that cannot tell (returns none) stops the stage with ``StageStuck``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Assigned",
    "DeadLetter",
    "FlushFailures",
    "Incoming",
    "Message",
    "OffsetBook",
    "Outgoing",
    "Output",
    "Restore",
    "SendFailed",
    "StageLogic",
    "StageStuck",
    "TopicPartitionKey",
]

TopicPartitionKey = tuple[str, int]


class Incoming(Protocol):
    """A consumed record (aiokafka's ConsumerRecord is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Message:
    """A record made in memory (tests, the harness, a changelog read back)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None


@dataclass(frozen=True)
class Outgoing:
    """A record to send; ``partition`` None lets the key choose it."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A record the stage cannot process, and why: it goes to ``vigil.deadletter.v1``."""

    record: Incoming
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("vigil.reason", self.reason.encode()),
            ("vigil.source.topic", self.record.topic.encode()),
            ("vigil.source.partition", str(self.record.partition).encode()),
            ("vigil.source.offset", str(self.record.offset).encode()),
        ]


@dataclass
class Output:
    """What one flush produced.

    ``commit``: the next offset to commit per partition; None commits everything absorbed so
    far (a stage that keeps some records for a later flush names what it finished).
    """

    records: list[Outgoing] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    commit: dict[TopicPartitionKey, int] | None = None


# Reads a changelog from its start: batches of records (see ``Assigned.restore``).
Restore = Callable[[], AsyncIterator[Sequence["Incoming"]]]


@dataclass(frozen=True)
class Assigned:
    """Partitions handed to this stage, with what it needs to resume them."""

    partitions: list[TopicPartitionKey]
    committed: dict[TopicPartitionKey, int | None]
    partition_counts: Mapping[str, int]
    # The latest record of every key in the changelog partitions of the same numbers.
    changelog: Sequence[Incoming] = ()
    # Or, for a stage whose changelog is streamed, every record of those partitions (tombstones
    # too), batch by batch in offset order: to be read once.
    restore: Restore | None = None


class StageLogic(ABC):
    """The per-record logic of a stream stage; the adapter calls these under one lock."""

    @abstractmethod
    async def absorb(self, records: Sequence[Incoming]) -> None:
        """Take a batch of new records (never one already absorbed and committed)."""

    @abstractmethod
    def due(self, now: float) -> bool:
        """Whether to flush now (``now``: monotonic seconds)."""

    @abstractmethod
    async def flush(self) -> Output:
        """What to send and commit, all or nothing, for the work absorbed since the last one."""

    def committed(self, output: Output) -> None:
        """The flush that produced ``output`` is durable."""
        return None

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        """Load what the partitions need (e.g. from ``assigned.changelog``); returns records
        of the changelog that could not be read."""
        return []

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        """Forget the partitions' state: their work is committed, or will be redone."""
        return None

    def culprits(self, failed: Outgoing | None, reason: str) -> list[DeadLetter]:
        """The records of the last flush to blame for its repeated failure (``failed``: the
        output record Kafka refused, if known), as dead letters; none if it cannot tell."""
        return []


class SendFailed(Exception):
    """Kafka refused one record of a flush."""

    def __init__(self, record: Outgoing, cause: BaseException) -> None:
        super().__init__(f"sending to {record.topic} failed: {type(cause).__name__}: {cause}")
        self.record = record
        self.cause = cause


class StageStuck(Exception):
    """A flush keeps failing and the logic cannot say which records cause it."""


RecordId = tuple[str, int, int]


class FlushFailures:
    """Flushes that failed in a row for a reason other than an outage, and what to quarantine."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.quarantine: dict[RecordId, str] = {}  # record -> why it is dead-lettered

    def failed(self, logic: StageLogic, exc: Exception, outage: bool) -> None:
        """Count a failed flush; at the limit quarantine the culprits, or raise StageStuck."""
        if outage:
            return
        self.count += 1
        if self.count < self.limit:
            return
        self.count = 0
        cause = exc.cause if isinstance(exc, SendFailed) else exc
        reason = f"flush failed {self.limit} times in a row: {type(cause).__name__}: {cause}"
        culprits = logic.culprits(exc.record if isinstance(exc, SendFailed) else None, reason)
        if not culprits:
            raise StageStuck(f"{reason}; no record to blame, stopping") from exc
        for d in culprits:
            self.quarantine[(d.record.topic, d.record.partition, d.record.offset)] = d.reason

    def screen(self, records: Sequence[Incoming]) -> tuple[list[Incoming], list[DeadLetter]]:
        """The records to absorb, and the quarantined ones to dead-letter instead."""
        if not self.quarantine:
            return list(records), []
        keep: list[Incoming] = []
        dead: list[DeadLetter] = []
        for r in records:
            reason = self.quarantine.get((r.topic, r.partition, r.offset))
            if reason is None:
                keep.append(r)
            else:
                dead.append(DeadLetter(r, reason))
        return keep, dead

    def succeeded(self, dead_letters: Iterable[DeadLetter]) -> None:
        """A flush was committed: the count starts again, the sent culprits are done."""
        self.count = 0
        for d in dead_letters:
            self.quarantine.pop((d.record.topic, d.record.partition, d.record.offset), None)


class OffsetBook:
    """Which offsets a stage expects next, has absorbed and has yet to commit."""

    def __init__(self) -> None:
        # The next offset to absorb of each owned partition; None until known (a group's first
        # read starts wherever the reset policy puts it). Anything below was absorbed already
        # (fetched twice around a rebalance or a rewind) and is skipped.
        self.expected: dict[TopicPartitionKey, int | None] = {}
        self.uncommitted: dict[TopicPartitionKey, int] = {}

    def assign(self, tp: TopicPartitionKey, committed: int | None) -> None:
        self.expected[tp] = committed
        self.uncommitted.pop(tp, None)

    def revoke(self, tp: TopicPartitionKey) -> None:
        self.expected.pop(tp, None)
        self.uncommitted.pop(tp, None)

    def unknown(self) -> list[TopicPartitionKey]:
        return [tp for tp, offset in self.expected.items() if offset is None]

    def fresh(self, batches: Mapping[TopicPartitionKey, Sequence[Incoming]]) -> list[Incoming]:
        """The records not absorbed yet, of owned partitions, in fetch order; marks them taken."""
        taken: list[Incoming] = []
        for tp, records in batches.items():
            if tp not in self.expected:
                continue
            start = self.expected[tp] or 0
            new = [r for r in records if r.offset >= start]
            if new:
                taken.extend(new)
                self.expected[tp] = self.uncommitted[tp] = new[-1].offset + 1
        return taken

    def to_commit(self, output: Output) -> dict[TopicPartitionKey, int]:
        if output.commit is None:
            return dict(self.uncommitted)
        return {tp: o for tp, o in output.commit.items() if tp in self.expected}

    def done(self, commit: Iterable[tuple[TopicPartitionKey, int]]) -> None:
        for tp, offset in commit:
            if self.uncommitted.get(tp, offset + 1) <= offset:
                del self.uncommitted[tp]
