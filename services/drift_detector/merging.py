"""The merger stage's logic: partials in, window reports, state and references out. No Kafka.

The merger owns a share of the model versions (the partitions of ``<app_id>.partials.v1``),
merges every worker's partials into their windows (``drift_detector.windows``), and writes the
reports, the changed versions' state and any production reference it built
(``drift_detector.references``) in one transaction per flush.

A version retired in the registry has its open windows reported at once (their last reports),
then its state dropped, here and from the state topic (a tombstone), so that neither memory
nor a restart keeps it; partials that were under way when it was retired count in those last
reports. A version removed from the registry is dropped without reports. Events that no report
will count are counted in ``evicted["unreported_events"]``.

Beside the window reports, every ``traffic_seconds`` of wall clock it publishes a heartbeat per
live version that had events, profiled or dead-lettered by the profilers
(``drift_detector.traffic``), in the same transactions. A partial that carries nothing but a
count of dead-lettered events goes to the heartbeat only: no window, no state.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime

from prometheus_client import Histogram

from drift_detector.partials import MICROS, Partial, WindowPolicy
from drift_detector.references import ReferencePublisher
from drift_detector.traffic import TrafficCounts
from drift_detector.versions import Key, caught_up, is_live, key_of, raw_key
from drift_detector.windows import ModelWindows
from vigil.adapters.ports import Catalog, RevisionLocks
from vigil.adapters.stage_logic import (
    Assigned,
    DeadLetter,
    Incoming,
    Outgoing,
    Output,
    StageLogic,
    TopicPartitionKey,
)
from vigil.wire.codec import Codec
from vigil.wire.records import ModelVersion, TrafficReport, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS

__all__ = ["MODELS_MAX_BYTES", "Merging"]

log = logging.getLogger(__name__)

REPORT_CODEC = Codec(WindowReport)
TRAFFIC_CODEC = Codec(TrafficReport)
VERSION_CODEC = Codec(ModelVersion)
# The broker's default message.max.bytes: the models topic does not raise it.
MODELS_MAX_BYTES = int(MODELS.config.get("max.message.bytes", 1_048_588))
RECORD_OVERHEAD = 1024  # record batch and record headers, with room to spare
WINDOW_CLOSE_SECONDS = Histogram(
    "vigil_drift_window_close_seconds",
    "From a window's end (event time) to its report being made: the allowed lateness, the"
    " slowest partition's delay and the merger's own delay (a report made again after a"
    " failed flush counts again).",
    buckets=(1, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)


def _report(report: WindowReport) -> Outgoing:
    return Outgoing(METRICS.name, REPORT_CODEC.encode(report), report.key.encode())


def _traffic(report: TrafficReport) -> Outgoing:
    return Outgoing(METRICS.name, TRAFFIC_CODEC.encode(report), report.key.encode())


class Merging(StageLogic):
    """Merges partials into windows for the model versions this worker owns, and judges them.

    One model version never blocks the others: a partial that fails to merge, or a version
    whose flush fails, has its partials of that flush dead-lettered with the reason (counted in
    ``failed``) and the version goes back to its last committed state. A built reference too
    large for the models topic is not published: it is counted and used here only.
    """

    def __init__(
        self,
        versions: Catalog,
        locks: RevisionLocks,
        policy: WindowPolicy,
        state_topic: str,
        clock: Callable[[], float] = time.monotonic,
        max_future_seconds: float = 300.0,
        wall: Callable[[], float] = time.time,
        lock_seconds: float = 30.0,
        traffic_seconds: float = 30.0,
    ) -> None:
        self.versions = versions
        self.policy = policy
        self.state_topic = state_topic
        self.clock = clock
        self.max_future_seconds = max_future_seconds
        self.wall = wall
        self.publisher = ReferencePublisher(versions, locks, clock, lock_seconds)
        self.models: dict[Key, ModelWindows] = {}
        self.partition_of: dict[Key, int] = {}
        self.changed: set[Key] = set()
        self.rejects: list[DeadLetter] = []
        self.published: list[ModelVersion] = []  # references of the flush being committed
        self.reports_published = 0
        self.sources: dict[Key, list[Incoming]] = defaultdict(list)  # since the last flush
        self.flushed: dict[Key, list[Incoming]] = {}  # of the flush being committed
        self.saved: dict[Key, bytes] = {}  # the last committed state of each version
        self.stale: dict[Key, int] = {}  # states of versions gone, to delete: partition
        self.failed: Counter[str] = Counter()
        self.evicted: Counter[str] = Counter()  # versions "retired", "removed"; their events
        # In memory, reset once its reports are committed: a restart starts a new interval.
        self.traffic = TrafficCounts(traffic_seconds, clock(), wall())

    async def absorb(self, records: Sequence[Incoming]) -> None:
        now = self.clock()
        await caught_up(self.versions, {key_of(r.key) for r in records})
        for record in records:
            key = key_of(record.key)
            try:
                reason = self._merge(record, key, now)
            except Exception as exc:  # whatever it is, it would fail again on a re-read
                log.exception("partial of %s/%s failed to merge", *key)
                reason = f"partial not mergeable: {type(exc).__name__}: {exc}"
            if reason is not None:
                self.rejects.append(DeadLetter(record, reason))
                self.failed["partial"] += 1

    def _merge(self, record: Incoming, key: Key, now: float) -> str | None:
        """Merge one partial; the reason it was refused, or None."""
        try:
            partial = Partial.from_bytes(record.value or b"")
        except ValueError as exc:  # DecodeError included
            return f"not a drift partial: {exc}"
        current = self.versions.get(*key)
        if current is None:
            return f"partial for unregistered model version {key[0]}/{key[1]}"
        if (partial.model_id, partial.model_version) != key:
            return (
                f"partial not mergeable: keyed {key[0]}/{key[1]} but counted for model version"
                f" {partial.model_id}/{partial.model_version}"
            )
        try:
            partial.check(int((self.wall() + self.max_future_seconds) * MICROS))
        except ValueError as exc:
            return f"partial not mergeable: {exc}"
        if partial.rejects_only and is_live(current):
            self.traffic.count(key, 0, None, partial.dead_lettered)
            self.sources[key].append(record)
            return None
        windows = self.models.get(key)
        held = 0  # events of a retired version's baseline, which no report will count
        if not is_live(current):
            if windows is None:
                return f"model version {key[0]}/{key[1]} is retired"
            # Counted before the retirement: it goes into the last reports, due this flush.
            if partial.baseline is not None:
                held = len(partial.baseline)
                partial.baseline = None
        elif windows is None:
            windows = self.models[key] = ModelWindows(current, self.policy)
        elif current.updated_at > windows.version.updated_at:
            windows.update_version(current)
        self.partition_of[key] = record.partition
        self.changed.add(key)
        try:
            windows.add(partial, now)  # a corrupt profile: refused before anything is merged
        except ValueError as exc:
            return f"partial not mergeable: {exc}"
        self.evicted["unreported_events"] += held
        self.traffic.count(key, partial.events, partial.newest, partial.dead_lettered)
        self.sources[key].append(record)  # dead-lettered once: not again if the flush fails
        return None

    def due(self, now: float) -> bool:
        # Every poll: windows close, and traffic intervals end, as time passes, with or without
        # new partials.
        return True

    async def flush(self) -> Output:
        """Reports of the windows due, the changed versions' state, any built reference, and
        the traffic reports of the interval if it is over."""
        await self.publisher.release()  # the locks of the last flush, which is over
        now, created = self.clock(), utcnow()
        records = [Outgoing(self.state_topic, None, raw_key(k), p) for k, p in self.stale.items()]
        self.stale = {}
        for key in list(self.models):
            try:
                records += await self._version_outputs(key, now, created)
            except Exception as exc:  # this version's outputs are dropped, the others go
                self._fail(key, exc, now)
        live = self.versions.get
        heartbeats = self.traffic.reports(now, self.wall(), created, lambda k: is_live(live(*k)))
        records += [_traffic(r) for r in heartbeats]
        out = Output(records, self.rejects)
        self.rejects = []
        self.changed.clear()
        self.flushed, self.sources = dict(self.sources), defaultdict(list)
        return out

    async def _version_outputs(self, key: Key, now: float, created: datetime) -> list[Outgoing]:
        """``key``'s outputs: its last ones if it was retired, else its reference (if built
        and publishable now), the reports of its windows due and its state if it changed."""
        current = self.versions.get(*key)
        if not is_live(current):
            return self._evict(key, current is not None, created)
        windows = self.models[key]
        out: list[Outgoing] = []
        record = None
        if windows.built_reference is not None:
            record, out = await self._reference(key, windows, created)
        out += self._outputs(key, now, created)
        if record is not None:  # applied to the catalog once committed (read-your-writes)
            self.published.append(record)
        return out

    def _outputs(self, key: Key, now: float, created: datetime) -> list[Outgoing]:
        """The reports of ``key``'s windows due now, then its state if it changed."""
        windows = self.models[key]
        closed = windows.close_due(now)
        reports = [windows.report(w, created) for w in closed]
        for report in reports:
            WINDOW_CLOSE_SECONDS.observe((created - report.window_end).total_seconds())
        out = [_report(report) for report in reports]
        if closed or key in self.changed:
            self.changed.add(key)
            state = windows.snapshot()
            out.append(Outgoing(self.state_topic, state, raw_key(key), self.partition_of[key]))
        return out

    async def _reference(
        self, key: Key, windows: ModelWindows, created: datetime
    ) -> tuple[ModelVersion | None, list[Outgoing]]:
        """The record with ``windows``' built reference and its message for the models topic,
        if it is to be published now and fits there (see ``drift_detector.references``)."""
        assert windows.built_reference is not None
        decision = await self.publisher.decide(key, windows.built_reference, created)
        record = decision.record
        if record is None or decision.outcome not in ("publish", "adopt"):
            return None, []
        windows.settle_reference(record)
        self.changed.add(key)
        if decision.outcome == "adopt":
            return None, []
        value, raw = VERSION_CODEC.encode(record), record.key.encode()
        if len(value) + len(raw) + RECORD_OVERHEAD <= MODELS_MAX_BYTES:
            return record, [Outgoing(MODELS.name, value, raw)]
        log.error(
            "the production reference of %s is %d bytes, over the models topic's limit of %d:"
            " it is used by this worker only, not published",
            record.key,
            len(value),
            MODELS_MAX_BYTES,
        )
        self.failed["reference_too_large"] += 1
        self.publisher.settle(key)
        return record, []

    def _evict(self, key: Key, retired: bool, created: datetime) -> list[Outgoing]:
        """A retired version's last reports (a removed one has none), then its state deleted."""
        windows = self.models.pop(key)
        self.traffic.drop(key)
        unreported = windows.baseline_events
        out: list[Outgoing] = []
        for w in windows.close_all():
            if not retired:
                unreported += w.events
                continue
            try:
                out.append(_report(windows.report(w, created)))
            except Exception:  # this last report only: the state goes all the same
                log.exception("the last report of a window of %s/%s failed", *key)
                unreported += w.events
        partition = self.partition_of.pop(key, None)
        if partition is not None:
            out.append(Outgoing(self.state_topic, None, raw_key(key), partition))
        self.changed.discard(key)
        self.evicted["retired" if retired else "removed"] += 1
        self.evicted["unreported_events"] += unreported
        log.info(
            "model version %s/%s was %s: %d last window reports, %d events unreported;"
            " its state is deleted",
            *key,
            "retired" if retired else "removed",
            len(out) - (partition is not None),
            unreported,
        )
        return out

    def _fail(self, key: Key, exc: Exception, now: float) -> None:
        """Dead-letter ``key``'s partials of this flush and return it to its committed state."""
        log.exception("model version %s/%s failed; dead-lettering its partials", *key)
        reason = f"model version {key[0]}/{key[1]} failed: {type(exc).__name__}: {exc}"
        self.rejects.extend(DeadLetter(r, reason) for r in self.sources.pop(key, []))
        self.failed["model_version"] += 1
        self.traffic.discard(key)
        self.changed.discard(key)
        self.publisher.settle(key)
        windows, saved = self.models.pop(key, None), self.saved.get(key)
        if windows is not None and saved is not None:
            with contextlib.suppress(ValueError):
                self.models[key] = ModelWindows.restore(saved, windows.version, self.policy, now)

    def culprits(self, failed: Outgoing | None, reason: str) -> list[DeadLetter]:
        """The partials of the flush behind ``failed``: the model version that wrote it."""
        if failed is None or failed.key is None:
            return []
        return [DeadLetter(r, reason) for r in self.flushed.get(key_of(failed.key), [])]

    def committed(self, output: Output) -> None:
        for record in self.published:
            assert record.reference is not None
            log.info(
                "built the production reference of %s from its first %d events",
                record.key,
                record.reference.row_count,
            )
            self.versions.apply(record)
        self.published, self.flushed = [], {}
        self.publisher.settle()
        for r in output.records:
            if r.topic == self.state_topic and r.value is not None:
                self.saved[key_of(r.key)] = r.value
            elif r.topic == self.state_topic:
                self.saved.pop(key_of(r.key), None)
            elif r.topic == MODELS.name:
                self.publisher.counts["published"] += 1
        heartbeats = self.traffic.committed()
        # The metrics topic carries both: the window reports are those that are no heartbeat.
        reports = sum(r.topic == METRICS.name for r in output.records) - heartbeats
        self.reports_published += reports
        if reports or heartbeats:
            log.info("published %d window reports, %d traffic reports", reports, heartbeats)

    async def on_assigned(self, assigned: Assigned) -> list[DeadLetter]:
        """Resume the assigned partitions' model versions from their changelog state; the
        state of a version retired or removed meanwhile is deleted at the next flush."""
        now = self.clock()
        unreadable: list[DeadLetter] = []
        for record in assigned.changelog:
            if record.value is None:  # deleted
                continue
            key = key_of(record.key)
            version = await self.versions.lookup(*key)
            if not is_live(version):
                self.stale[key] = record.partition
                self.evicted["retired" if version else "removed"] += 1
                self.evicted["unreported_events"] += ModelWindows.held_events(record.value)
                continue
            try:
                self.models[key] = self._restore(record.value, version, now)
            except Exception as exc:  # e.g. written by an incompatible release
                log.error("could not restore the state of %s/%s: %s; starting afresh", *key, exc)
                unreadable.append(DeadLetter(record, f"not a drift state: {exc}"))
                continue
            self.partition_of[key] = record.partition
            self.saved[key] = record.value
        log.info(
            "restored %d model versions (%d events in open windows) of partitions %s",
            len(assigned.changelog),
            sum(w.events for m in self.models.values() for w in m.windows.values()),
            sorted(p for _, p in assigned.partitions),
        )
        return unreadable

    def _restore(self, data: bytes, version: ModelVersion, now: float) -> ModelWindows:
        """A version's state from the changelog; ValueError if its marks are in the future."""
        windows = ModelWindows.restore(data, version, self.policy, now)
        if (
            max(windows.marks.values(), default=0)
            > (self.wall() + self.max_future_seconds) * MICROS
        ):
            raise ValueError("its event-time marks are in the future")
        return windows

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        numbers = {p for _, p in partitions}
        for key in [k for k, p in self.partition_of.items() if p in numbers]:
            self.models.pop(key, None)
            self.changed.discard(key)
            self.saved.pop(key, None)
            del self.partition_of[key]
        self.stale = {k: p for k, p in self.stale.items() if p not in numbers}
        self.rejects, self.published = [], []
        self.traffic.rolled_back()
        self.publisher.settle()  # the flush they were for is committed, or will be redone
        self.sources, self.flushed = defaultdict(list), {}
