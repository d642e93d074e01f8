"""Against the real broker and Redis: a feature suddenly 30 % missing pages once, a model
that stops receiving traffic pages once (from alerting's clock, nothing arriving), and a model
whose events the drift detector dead-letters (a burst stamped in the future) pages once from the
detector's own traffic reports, each at its risk tier's severity."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient

from alerting.api import create_app
from alerting.config import Settings
from tests.access import SESSION
from tests.drift_workers import DriftWorkers
from tests.kafka_tools import Message, end_offsets, is_traffic_report, private_copy, read_from
from tests.samples import MODEL, PREDICTION, REPORT
from tests.webhook import WebhookInbox, webhook_inbox
from vigil.adapters.bus import new_producer, send_keyed
from vigil.adapters.settings import VigilSettings
from vigil.wire.codec import Codec
from vigil.wire.records import PredictionEvent, Record, TrafficReport, WindowReport, utcnow
from vigil.wire.topics import METRICS, MODELS


async def _publish(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = new_producer(bootstrap, "test")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, key=key.encode(), value=value)
    finally:
        await producer.stop()


def _encoded(record: Record) -> bytes:
    return Codec(type(record)).encode(record)


def test_missing_values_and_silence_each_page_once_at_the_tiers_severity(
    infra: VigilSettings,
) -> None:
    model_id = f"lively-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    # A high-risk version that should see traffic at least every 2 s.
    version = MODEL.model_copy(
        update={"model_id": model_id, "expected_interval": 2.0, "status": "champion"}
    )
    asyncio.run(_publish(infra.kafka_bootstrap, MODELS.name, [(version.key, _encoded(version))]))
    reports = private_copy(infra.kafka_bootstrap, METRICS, model_id)
    settings = Settings(
        alerting_reports_topic=reports.name,
        alerting_group_id=f"test-{model_id}",
        alerting_redis_prefix=f"test:{model_id}",
        alerting_events_topic=f"test.alerts.{model_id}",
        alerting_allowed_networks=["127.0.0.0/8"],
        alerting_group_wait_seconds=0,
        alerting_group_interval_seconds=0.5,
        alerting_liveness_check_seconds=0.5,
    )
    gappy = REPORT.features[0].model_copy(update={"missing": 300, "drifted": False})
    window = WindowReport.model_validate(
        REPORT.model_dump()
        | {
            "report_id": f"{model_id}/1.0.0/0",
            "model_id": model_id,
            "window_start": now - timedelta(minutes=1),
            "window_end": now,
            "features": [gappy],
            "drifted_features": [],
        }
    )
    traffic = TrafficReport(
        report_id=f"{model_id}/1.0.0/traffic/0",
        model_id=model_id,
        model_version="1.0.0",
        window_start=now - timedelta(seconds=30),
        window_end=now,
        event_count=1000,
        created_at=now,
    )
    with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
        made = client.post(
            "/v1/subscriptions",
            json={"name": "oncall", "channel": "webhook", "url": inbox.url, "models": [model_id]},
        )
        assert made.status_code == 201, made.text
        key = f"{model_id}/1.0.0"
        asyncio.run(
            _publish(
                infra.kafka_bootstrap,
                reports.name,
                [(key, _encoded(traffic)), (key, _encoded(window))],
            )
        )

        def rules(alerts: list[dict[str, object]]) -> list[object]:
            return sorted(a["rule"] for a in alerts if a["model_id"] == model_id)

        assert inbox.wait_for(lambda alerts: "model_silent" in rules(alerts), 60), inbox.bodies
        time.sleep(3)  # more silence: no second page
        firing = [a for a in inbox.alerts() if a["status"] == "firing"]
        told = sorted((a["rule"], a["feature"], a["severity"]) for a in firing)
        # Each message lists the group's firing alerts: count the distinct pages per rule.
        pages = {
            (a["rule"], body["delivery_id"])
            for body in inbox.bodies
            for a in body["alerts"]
            if a["status"] == "firing"
        }
        assert sorted({rule for rule, _ in pages}) == ["missing_rate", "model_silent"]
        assert ("missing_rate", "income", "high") in told
        assert ("model_silent", None, "high") in told
        (silent,) = [a for a in firing if a["rule"] == "model_silent"]
        assert "no predictions for" in str(silent["summary"])
        # The silent model inhibits its data-quality alert's repeats; nothing pages twice.
        assert sum(1 for rule, _ in pages if rule == "model_silent") == 1


async def _start_at_the_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group``'s offsets at the end of ``topic``: a consumer of that group reads what
    is written from now on, not the history of every report on this machine."""
    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit(ends)
    finally:
        await consumer.stop()


def _predictions(model_id: str, profiled: int, future: int) -> list[PredictionEvent]:
    """``profiled`` events stamped now and ``future`` (no more) a day ahead, alternately."""
    now = utcnow()
    stamps = [now, now + timedelta(days=1)] * future + [now] * (profiled - future)
    return [
        PREDICTION.model_copy(
            update={
                "prediction_id": uuid.uuid4().hex,
                "model_id": model_id,
                "timestamp": stamp,
                "features": {"income": 52_000.0, "region": "eu"},
            }
        )
        for stamp in stamps
    ]


async def _produce(bootstrap: str, topic: str, events: list[PredictionEvent]) -> None:
    codec = Codec(PredictionEvent)
    producer = new_producer(bootstrap, "test-dead-letters")
    await producer.start()
    try:
        await send_keyed(
            producer, topic, [(e.prediction_id.encode(), codec.encode(e)) for e in events]
        )
    finally:
        await producer.stop()


def _send_until(done: Callable[[], object], send: Callable[[], Coroutine[None, None, None]]) -> int:
    """Call ``send`` every 2 s until ``done()`` holds; how many times it sent (0: it did not
    hold within 30 sends)."""
    for sent in range(1, 31):
        asyncio.run(send())
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if done():
                return sent
            time.sleep(0.2)
    return 0


def _traffic(
    bootstrap: str, start: dict[TopicPartition, int], model_id: str, events: int
) -> list[TrafficReport]:
    """``model_id``'s traffic reports after ``start``, once they count ``events`` in all."""
    codec = Codec(TrafficReport)

    def mine(messages: list[Message]) -> list[TrafficReport]:
        reports = [codec.decode(m.value) for m in messages if is_traffic_report(m.value)]
        return [r for r in reports if r.model_id == model_id]

    def counted(messages: list[Message]) -> bool:
        return sum(r.event_count + r.dead_lettered for r in mine(messages)) >= events

    return mine(asyncio.run(read_from(bootstrap, start, counted, 30)))


def _pages(inbox: WebhookInbox, model_id: str, status: str) -> set[tuple[str, str]]:
    """(rule, delivery) of every notification telling ``model_id``'s alerts in ``status``."""
    return {
        (a["rule"], body["delivery_id"])
        for body in inbox.bodies
        for a in body["alerts"]
        if a["status"] == status and a["model_id"] == model_id
    }


def test_a_burst_of_events_from_the_future_pages_dead_letter_rate_once(
    infra: VigilSettings, tmp_path: Path
) -> None:
    bootstrap = infra.kafka_bootstrap
    model_id = f"rejects-{uuid.uuid4().hex[:8]}"
    version = MODEL.model_copy(update={"model_id": model_id, "status": "champion"})  # high risk
    asyncio.run(_publish(bootstrap, MODELS.name, [(version.key, _encoded(version))]))
    group = f"test-{model_id}"
    asyncio.run(_start_at_the_end(bootstrap, group, METRICS.name))
    metrics_start = asyncio.run(end_offsets(bootstrap, METRICS.name))
    settings = Settings(
        alerting_group_id=group,  # reads the drift detector's reports on vigil.metrics.v1
        alerting_redis_prefix=f"test:{model_id}",
        alerting_events_topic=f"test.alerts.{model_id}",
        alerting_allowed_networks=["127.0.0.0/8"],
        alerting_group_wait_seconds=0,
        alerting_group_interval_seconds=0.5,
    )
    workers = DriftWorkers(
        tmp_path, {"VIGIL_DRIFT_FLUSH_SECONDS": "0.3", "VIGIL_DRIFT_TRAFFIC_SECONDS": "1"}
    )
    try:
        workers.start("w0")
        workers.wait_ready("w0")
        with webhook_inbox() as inbox, TestClient(create_app(settings), headers=SESSION) as client:
            made = client.post(
                "/v1/subscriptions",
                json={
                    "name": "oncall",
                    "channel": "webhook",
                    "url": inbox.url,
                    "models": [model_id],
                },
            )
            assert made.status_code == 201, made.text
            # Half of every batch is from the future until it pages (after three traffic
            # intervals at least); then none, until the alert resolves.
            bursts = _send_until(
                lambda: _pages(inbox, model_id, "firing"),
                lambda: _produce(bootstrap, workers.predictions, _predictions(model_id, 20, 20)),
            )
            assert bursts, workers.tail("w0")
            calm = _send_until(
                lambda: _pages(inbox, model_id, "resolved"),
                lambda: _produce(bootstrap, workers.predictions, _predictions(model_id, 40, 0)),
            )
            assert calm, inbox.bodies
            time.sleep(3)  # a second page, were there one, would have come by now
            quarantined = workers.status("w0")["quarantined_events"]
            # The traffic reports it was judged on count every event once, profiled or not.
            traffic = _traffic(bootstrap, metrics_start, model_id, 40 * (bursts + calm))
    finally:
        workers.stop()
    assert quarantined == 20 * bursts
    assert sum(r.dead_lettered for r in traffic) == 20 * bursts
    assert sum(r.event_count for r in traffic) == 20 * bursts + 40 * calm
    assert {rule for rule, _ in _pages(inbox, model_id, "firing")} == {"dead_letter_rate"}
    assert len(_pages(inbox, model_id, "firing")) == 1  # one page for the whole burst
    assert {rule for rule, _ in _pages(inbox, model_id, "resolved")} == {"dead_letter_rate"}
    (alert,) = [a for a in inbox.alerts() if a["status"] == "firing"]
    assert (alert["severity"], alert["feature"]) == ("high", None)
    assert alert["details"]["signal"] == "dead_letter_rate"
    assert float(alert["details"]["value"]) > 0.02  # the high tier's threshold
