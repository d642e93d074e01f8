"""Flag reports on the real broker and Redis: experts' flags on a private copy of the feedback
topic become one count per model version and interval, published on a private metrics topic
(a flag sent twice counted once, an old one not at all); alerting pages ``harmful_flag`` once
for a high-tier model."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from alerting.worker import Alerter, decode_report
from feedback import review_worker
from feedback.config import Settings
from tests.kafka_tools import private_copy
from tests.samples import MODEL
from tests.unit.fakes import FakeAlertStore, FakeBus, FakeCatalog, FakeNotifier
from vigil.adapters.bus import KafkaBus, new_producer, publish
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.flag_reports import FlagReport
from vigil.wire.records import FeedbackEvent, utcnow
from vigil.wire.topics import FEEDBACK, METRICS, PREDICTIONS

RUN = uuid.uuid4().hex[:8]
NAME = f"flags-{RUN}"
PREFIX = f"test:flags:{RUN}"
# A high-tier model; flags name the model only, so they count on its champion.
VERSION = MODEL.model_copy(update={"model_id": NAME, "version": "7", "status": "champion"})


def _flag(i: int, kind: str, pid: str | None = None, age: float = 0.0) -> FeedbackEvent:
    return FeedbackEvent(
        feedback_id=f"f-{RUN}-{i}",
        prediction_id=pid or f"p-{RUN}-{i}",
        model_id=NAME,
        flag=kind,
        comment=f"{kind} {i}",
        reviewer="ana",
        timestamp=utcnow() - timedelta(seconds=age),
    )


FLAGS = [
    _flag(0, "harmful"),
    _flag(1, "harmful"),
    _flag(2, "incorrect"),
    _flag(3, "ok"),
    _flag(4, "ok", pid=f"p-{RUN}-3"),  # a second opinion on the same item
    _flag(5, "harmful", age=3600),  # an hour old: read again on a rebuild, not news
]
SENT = [*FLAGS, FLAGS[0]]  # the first one sent twice


async def _reports(bootstrap: str, topic: str, wanted: int) -> list[FlagReport]:
    """The flag reports of the model on ``topic`` until they count ``wanted`` flags."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[FlagReport] = []
    try:
        deadline = time.monotonic() + 60
        while sum(r.event_count for r in found) < wanted:
            assert time.monotonic() < deadline, f"only {found}"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    report = decode_report(record.value)
                    if isinstance(report, FlagReport) and report.model_id == NAME:
                        found.append(report)
        await asyncio.sleep(3)  # nothing more comes (a repeat would show here)
        for records in (await consumer.getmany(timeout_ms=500)).values():
            assert not any(NAME.encode() in (r.key or b"") for r in records)
    finally:
        await consumer.stop()
    return found


async def _run(infra: VigilSettings) -> list[FlagReport]:
    bootstrap = infra.kafka_bootstrap
    feedback = await asyncio.to_thread(private_copy, bootstrap, FEEDBACK, RUN)
    metrics = await asyncio.to_thread(private_copy, bootstrap, METRICS, RUN)
    predictions = await asyncio.to_thread(private_copy, bootstrap, PREDICTIONS, RUN)
    settings = Settings(
        feedback_review_redis_prefix=PREFIX,
        feedback_review_group_id=f"test-flags-{RUN}",
        feedback_review_predictions_topic=predictions.name,
        feedback_review_metrics_topic=metrics.name,
        feedback_review_feedback_topic=feedback.name,
        feedback_review_flush_seconds=0.2,
        feedback_flag_report_seconds=2,
        feedback_flag_report_topic=metrics.name,
    )
    async with AsyncExitStack() as stack:
        bus = await KafkaBus.open(stack, settings.kafka, "test-flags")
        desk = await review_worker.start(stack, settings, FakeCatalog([VERSION]), bus)
        assert desk.stage is not None
        producer = new_producer(bootstrap, "test-flags")
        await producer.start()
        try:
            await publish(producer, feedback, Codec(FeedbackEvent), SENT, lambda f: f.prediction_id)
        finally:
            await producer.stop()
        reports = await _reports(bootstrap, metrics.name, wanted=5)
    redis = Redis.from_url(infra.redis_url, decode_responses=True)
    try:
        assert not await redis.zcard(f"{PREFIX}:flags:open")  # published, then forgotten
        keys = [k async for k in redis.scan_iter(f"{PREFIX}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    return reports


def test_flags_become_one_count_per_interval_and_a_harmful_one_pages_once(
    infra: VigilSettings,
) -> None:
    reports = asyncio.run(_run(infra))
    assert {(r.model_id, r.model_version) for r in reports} == {(NAME, "7")}
    assert len({r.report_id for r in reports}) == len(reports)  # one per interval
    totals: dict[str, int] = {}
    for r in reports:
        assert r.report_id == FlagReport.id_of(NAME, "7", int(r.window_start.timestamp()) * 10**6)
        for kind, n in r.counts.items():
            totals[kind] = totals.get(kind, 0) + n
    assert totals == {"harmful": 2, "incorrect": 1, "ok": 2}
    assert sum(r.judged_items for r in reports) >= 4
    assert sorted(h.comment or "" for r in reports for h in r.harmful) == ["harmful 0", "harmful 1"]

    store = FakeAlertStore()
    alerter = Alerter(FakeBus(), FakeCatalog([VERSION]), store, FakeNotifier())
    changes = []
    for report in sorted(reports, key=lambda r: r.window_start):
        changes += asyncio.run(alerter.handle_report(report))
    paged = [a for a in changes if a.rule == "harmful_flag" and a.status == "firing"]
    assert len(paged) == 1 and paged[0].severity == "high"
