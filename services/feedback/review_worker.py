"""The review queue's candidates consumer: a stage (consumer group ``vigil-feedback-review``)
in the feedback service's process, reading predictions, drift reports and flags into Redis.

- ``vigil.predictions.v1``: each prediction (a hash-chosen share of them at
  ``VIGIL_FEEDBACK_REVIEW_SAMPLE_RATE``) becomes a candidate; a binary model's whose score is
  near 0.5 also a low-confidence one; one from a drifted window a drifted one. The events of
  versions that declare segments are also kept a while to judge by segment
  (``feedback.segment_watch``).
- ``vigil.metrics.v1``: a ``WindowReport`` in which anything drifted marks its window; and the
  window of any report of a version that declares segments is judged group by group, each group
  that drifted marking its predictions in that window (other reports are not for this
  consumer).
- ``vigil.feedback.v1``: each flag (feedback with a ``flag``) is kept for the summary and as
  its item's judgement; an item experts disagree on, or one flagged as wrong, wants a second
  opinion; and it is counted for its version's ``FlagReport`` (``feedback.flag_reports``).

Offsets are committed after Redis took the batch, so Redis can be flushed and rebuilt by
resetting the group's offsets to the start of the topics (within their retention).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from redis.exceptions import RedisError

from feedback import flag_reports
from feedback.config import Settings
from feedback.flag_reports import FlagTally
from feedback.review import Candidate, drift_window, is_sampled, low_confidence_margin, micros
from feedback.review_store import ReviewStore, by_model
from feedback.segment_watch import SegmentWatch, judge_window, watched
from vigil.adapters.ports import Bus, Catalog, Unavailable
from vigil.adapters.stage import Stage, StageConfig
from vigil.adapters.stage_logic import Incoming, Output, StageLogic, TopicPartitionKey
from vigil.adapters.tasks import stop_tasks
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import FeedbackEvent, PredictionEvent, WindowReport

__all__ = ["ReviewCandidates", "ReviewDesk", "start"]

log = logging.getLogger(__name__)
PREDICTIONS = Codec(PredictionEvent)
FEEDBACK = Codec(FeedbackEvent)
REPORTS = Codec(WindowReport)
SKIPPED = Counter(
    "vigil_feedback_review_skipped_total",
    "Records the review queue's consumer could not use, by reason (undecodable: dead-lettered"
    " by the consumers that own the topic; unattributed: a flag naming no model, on an item"
    " the queue did not hand out).",
    ["reason"],
)


@dataclass(frozen=True)
class Topics:
    predictions: str
    metrics: str
    feedback: str


class ReviewCandidates(StageLogic):
    """Turns records into the review queue's Redis state, a flush at a time."""

    def __init__(
        self,
        store: ReviewStore,
        catalog: Catalog,
        topics: Topics,
        settings: Settings,
        tally: FlagTally | None = None,
    ) -> None:
        self.store = store
        self.tally = tally  # counts the flags for flag reports
        self.catalog = catalog
        self.topics = topics
        self.sample_rate = settings.feedback_review_sample_rate
        self.margin = settings.feedback_review_low_confidence_margin
        self.every = settings.feedback_review_flush_seconds
        self.last_flush = 0.0
        self.watch = SegmentWatch(
            settings.feedback_review_segment_rows, settings.feedback_review_segment_settle_seconds
        )
        self._clear()

    def _clear(self) -> None:
        self.predictions: list[tuple[str, tuple[Candidate, float | None]]] = []
        self.windows: list[dict[str, Any]] = []
        self.flags: list[dict[str, Any]] = []
        self.truths: list[tuple[str | None, str, Any]] = []  # model, prediction id, actual

    async def absorb(self, records: Sequence[Incoming]) -> None:
        for record in records:
            if record.topic == self.topics.predictions:
                self._prediction(record.value)
            elif record.topic == self.topics.metrics:
                try:
                    report = REPORTS.decode(record.value)
                except DecodeError:
                    continue  # a traffic or performance report: not this consumer's
                window = drift_window(report.model_dump())
                if window is not None:
                    self.windows.append(report.model_dump())
                key = (report.model_id, report.model_version)
                if watched(self.catalog.get(*key)):
                    start, end = micros(report.window_start), micros(report.window_end)
                    self.watch.reported(key, start, end, time.monotonic())
            elif record.topic == self.topics.feedback:
                self._flag(record.value)

    def _prediction(self, value: bytes | None) -> None:
        try:
            event = PREDICTIONS.decode(value)
        except DecodeError:
            SKIPPED.labels("undecodable").inc()
            return
        version = self.catalog.get(event.model_id, event.model_version)
        groups = self.watch.add(version, event) if version is not None else {}
        if not is_sampled(event.prediction_id, self.sample_rate):
            return
        task = version.task if version is not None else None
        margin = low_confidence_margin(task, event.score, self.margin)
        candidate = Candidate.of(event.model_dump(), groups)
        self.predictions.append((event.model_id, (candidate, margin)))

    def _flag(self, value: bytes | None) -> None:
        try:
            event = FEEDBACK.decode(value)
        except DecodeError:
            SKIPPED.labels("undecodable").inc()
            return
        if event.flag is None:
            if event.actual is not None:  # a true outcome: to measure experts against
                self.truths.append((event.model_id, event.prediction_id, event.actual))
            return
        flag = event.model_dump(include={"feedback_id", "prediction_id", "model_id", "flag"})
        flag.update(
            comment=event.comment,
            reviewer=event.reviewer or "unknown",
            source=event.source,
            actual=event.actual,
            timestamp=micros(event.timestamp),
        )
        self.flags.append(flag)

    def due(self, now: float) -> bool:
        pending = self.predictions or self.windows or self.flags or self.truths
        return bool(pending or self.watch.pending) and now - self.last_flush >= self.every

    async def flush(self) -> Output:
        self.last_flush = time.monotonic()
        try:
            await self._store()
        except RedisError as exc:  # an outage: the stage re-reads and tries again
            raise Unavailable("Redis", f"{type(exc).__name__}: {exc}") from exc
        self._clear()
        return Output()

    async def _store(self) -> None:
        now_us = int(time.time() * 1e6)
        for model_id, found in by_model(self.predictions).items():
            await self.store.add_predictions(model_id, found, now_us)
        for report in self.windows:
            window = drift_window(report)
            if window is not None:
                await self.store.add_drift_window(window)
        await self._judge_segments()
        unnamed = [f["prediction_id"] for f in self.flags if f["model_id"] is None]
        where = await self.store.where(unnamed)
        placed = []
        for flag in self.flags:
            owner: str | None = flag["model_id"] or where.get(flag["prediction_id"])
            if owner is None:
                SKIPPED.labels("unattributed").inc()
                continue
            placed.append((owner, {**flag, "model_id": owner}))
        if self.tally is not None:
            await self.tally.add(placed)
        for model_id, flags in by_model(placed).items():
            await self.store.add_flags(model_id, flags)
        if self.truths:
            await self.store.add_truths(self.truths)

    async def _judge_segments(self) -> None:
        """Judge by segment the reported windows whose events are read (off the event loop:
        a window of many events takes a while)."""
        for pending, rows in self.watch.due(time.monotonic()):
            version = self.catalog.get(*pending.key)
            if not watched(version) or not rows.features:
                continue
            assert version is not None
            found = await asyncio.to_thread(judge_window, version, rows, pending.start, pending.end)
            for window in found:
                await self.store.add_drift_window(window)
            if found:
                log.info(
                    "%s %s: %d segment group(s) drifted in the window from %d",
                    *pending.key,
                    len(found),
                    pending.start,
                )

    def on_revoked(self, partitions: Sequence[TopicPartitionKey]) -> None:
        self._clear()  # not stored yet: read again from the committed offsets
        self.watch.forget()


@dataclass(frozen=True)
class ReviewDesk:
    """The review queue: its store, and the stage that fills it (None when not running)."""

    store: ReviewStore
    stage: Stage | None = None


async def start(
    stack: AsyncExitStack, settings: Settings, catalog: Catalog, bus: Bus | None = None
) -> ReviewDesk:
    """Open the store and run the candidates consumer in a task until ``stack`` closes; with
    a ``bus``, flag reports are counted and published too (``feedback.flag_reports``)."""
    store = await ReviewStore.open(stack, settings)
    tally = None
    if bus is not None and settings.feedback_flag_reports_enabled:
        tally = await flag_reports.start(stack, settings, catalog, bus)
    topics = Topics(
        settings.feedback_review_predictions_topic,
        settings.feedback_review_metrics_topic,
        settings.feedback_review_feedback_topic,
    )
    config = StageConfig(
        name="review",
        kafka=settings.kafka,
        group_id=settings.feedback_review_group_id,
        topics=(topics.predictions, topics.metrics, topics.feedback),
        transactional_id=None,  # its output is Redis, written before offsets are committed
        auto_offset_reset=settings.feedback_review_auto_offset_reset,
        fetch_timeout_ms=500,
    )
    stage = Stage(config, ReviewCandidates(store, catalog, topics, settings, tally))
    await stage.start()
    stack.push_async_callback(stage.stop)
    task = asyncio.create_task(_run(stage), name="review-candidates")

    async def cancel() -> None:
        await stop_tasks([task])

    stack.push_async_callback(cancel)
    return ReviewDesk(store, stage)


async def _run(stage: Stage) -> None:
    """Run the stage until cancelled. Outages are retried inside it; if it stops otherwise,
    the API goes on serving what Redis holds, and the failure is logged."""
    try:
        await stage.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.critical("the review queue's consumer stopped; restart the service", exc_info=True)
