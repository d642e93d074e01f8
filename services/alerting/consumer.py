"""Consumes ``vigil.metrics.v1``: evaluates each report, stores, publishes and routes alerts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from alerting.handlers import FEATURE_DRIFT, evaluate, fingerprint, route
from alerting.store import AlertStore
from alerting.webhooks import WebhookSender
from vigil.adapters.bus import dead_letter, publish
from vigil.adapters.catalog import ModelCatalogFollower
from vigil.wire.codec import Codec, DecodeError
from vigil.wire.records import Alert, Severity, WindowReport, utcnow
from vigil.wire.topics import ALERTS, METRICS

log = logging.getLogger(__name__)

REPORTS = Codec(WindowReport)
ALERT_CODEC = Codec(Alert)
UNKNOWN_MODEL_SEVERITY: Severity = "medium"


async def await_dead_letter(*args: Any, **kwargs: Any) -> None:
    await (await dead_letter(*args, **kwargs))


class ReportConsumer:
    """One member of the alerting consumer group; commits a report only once it is handled."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        follower: ModelCatalogFollower,
        store: AlertStore,
        sender: WebhookSender,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.follower = follower
        self.store = store
        self.sender = sender

    async def run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=200)
            for messages in batches.values():
                for message in messages:
                    await self.handle(message)
            if batches:
                await self.consumer.commit()

    async def handle(self, message: ConsumerRecord[bytes, bytes]) -> None:
        try:
            report = REPORTS.decode(message.value)
        except DecodeError as exc:
            log.warning("dead-lettering an unreadable report: %s", exc.reason)
            await await_dead_letter(
                self.producer,
                message.value,
                exc.reason,
                source_topic=METRICS.name,
                key=message.key,
                partition=message.partition,
                offset=message.offset,
            )
            return
        changes = evaluate(
            report, await self._severity(report), await self._current(report), utcnow()
        )
        if not changes:
            return
        for subscription, alerts in route(await self.store.subscriptions(), changes):
            await self.sender.send(subscription, alerts)
        await self.store.save_alerts(changes)
        await publish(self.producer, ALERTS, ALERT_CODEC, changes, lambda a: a.fingerprint)
        for alert in changes:
            log.info("alert %s %s: %s", alert.fingerprint, alert.status, alert.summary)

    async def _severity(self, report: WindowReport) -> Severity:
        version = self.follower.catalog.get(report.model_id, report.model_version)
        if version is None:
            await self.follower.catch_up()
            version = self.follower.catalog.get(report.model_id, report.model_version)
        return version.risk.severity if version else UNKNOWN_MODEL_SEVERITY

    async def _current(self, report: WindowReport) -> dict[str, Alert]:
        fps = [
            fingerprint(report.model_id, report.model_version, FEATURE_DRIFT, f.feature)
            for f in report.features
        ]
        return await self.store.alerts(fps)


async def run_forever(consumer: ReportConsumer) -> None:
    """Run the consumer, logging and restarting the loop after unexpected errors."""
    while True:
        try:
            await consumer.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("report consumer failed; retrying from the last commit in 2 s")
            await asyncio.sleep(2)
            # Reports read since the last commit are handled again, not skipped.
            await consumer.consumer.seek_to_committed()
